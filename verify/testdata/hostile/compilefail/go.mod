module example.com/hostile/compilefail

go 1.22
