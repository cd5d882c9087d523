module example.com/fixtures/yaegi-max-builtin

go 1.22
