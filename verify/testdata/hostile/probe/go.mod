module example.com/hostile/probe

go 1.22
