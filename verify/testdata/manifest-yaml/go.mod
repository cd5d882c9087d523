module example.com/fixtures/manifest-yaml

go 1.22
