module example.com/fixtures/no-manifest

go 1.22
