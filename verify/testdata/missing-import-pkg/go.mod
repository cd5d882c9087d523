module example.com/fixtures/missing-import-pkg

go 1.22
