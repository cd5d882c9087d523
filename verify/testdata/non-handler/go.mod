module example.com/fixtures/non-handler

go 1.22
