module example.com/fixtures/unsafe-declared

go 1.22
