module example.com/fixtures/hang-init

go 1.22
