module example.com/fixtures/provider-ok

go 1.22
