module example.com/fixtures/new-panic

go 1.22
