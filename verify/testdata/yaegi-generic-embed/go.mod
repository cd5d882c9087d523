module example.com/fixtures/yaegi-generic-embed

go 1.22
