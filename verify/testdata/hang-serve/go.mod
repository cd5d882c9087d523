module example.com/fixtures/hang-serve

go 1.22
