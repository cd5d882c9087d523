module example.com/fixtures/stdlib-slog

go 1.22
