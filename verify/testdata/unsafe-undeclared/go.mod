module example.com/fixtures/unsafe-undeclared

go 1.22
