module example.com/fixtures/cgo

go 1.22
