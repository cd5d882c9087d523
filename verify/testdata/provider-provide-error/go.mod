module example.com/fixtures/provider-provide-error

go 1.22
