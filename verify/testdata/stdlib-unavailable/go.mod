module example.com/fixtures/stdlib-unavailable

go 1.22
