module example.com/fixtures/serve-panic

go 1.22
