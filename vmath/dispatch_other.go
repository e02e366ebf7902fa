//go:build !amd64

package vmath

import "pfmpi/gemm"

func asmFuncs[T gemm.Float](*Funcs[T]) { panic("vmath: no assembly kernels on this architecture") }
