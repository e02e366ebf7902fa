module pfmpi

go 1.26
