module example.com/fixtures/stdlib-slices

go 1.22
