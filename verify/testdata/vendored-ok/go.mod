module example.com/fixtures/vendored-ok

go 1.22

require (
	github.com/example/headerlib v1.0.0
	github.com/example/testonly v1.0.0
)
