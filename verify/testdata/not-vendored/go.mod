module example.com/fixtures/not-vendored

go 1.22

require github.com/example/headerlib v1.0.0
