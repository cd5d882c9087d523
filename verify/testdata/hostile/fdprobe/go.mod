module example.com/hostile/fdprobe

go 1.22
