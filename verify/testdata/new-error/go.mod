module example.com/fixtures/new-error

go 1.22
