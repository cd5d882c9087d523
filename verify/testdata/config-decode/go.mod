module example.com/fixtures/config-decode

go 1.22
