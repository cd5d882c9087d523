module example.com/hostile/heapdump

go 1.22
