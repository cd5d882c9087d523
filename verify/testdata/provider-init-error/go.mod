module example.com/fixtures/provider-init-error

go 1.22
