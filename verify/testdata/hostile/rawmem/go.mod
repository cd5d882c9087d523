module example.com/hostile/rawmem

go 1.22
