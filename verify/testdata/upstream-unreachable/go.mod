module example.com/fixtures/upstream-unreachable

go 1.22
