module example.com/hostile/forge

go 1.22
