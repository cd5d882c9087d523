module example.com/fixtures/memory-blowup

go 1.22
