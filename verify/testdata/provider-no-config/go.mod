module example.com/fixtures/provider-no-config

go 1.22
