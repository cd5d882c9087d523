module example.com/fixtures/nested-module

go 1.22
