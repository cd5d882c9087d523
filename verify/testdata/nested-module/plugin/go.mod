module example.com/fixtures/nested-module/plugin

go 1.22
