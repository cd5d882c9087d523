module example.com/fixtures/crash-goroutine

go 1.22
