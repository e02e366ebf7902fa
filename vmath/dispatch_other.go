//go:build !amd64

package vmath

import "pfmpi/gemm"

const noKernels = 0

func asmFuncs[T gemm.Float](*Funcs[T]) { panic("vmath: no assembly kernels on this architecture") }

func (f *Funcs[T]) act(int, *T, *T, *T, int) {
	panic("vmath: no assembly kernels on this architecture")
}

func (f *Funcs[T]) grad(int, *T, *T, int) { panic("vmath: no assembly kernels on this architecture") }
