module example.com/fixtures/yaegi-range-int

go 1.22
