module example.com/fixtures/bad-manifest

go 1.22
