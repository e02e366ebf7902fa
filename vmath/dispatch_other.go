//go:build !amd64

package vmath

import "pfmpi/gemm"

const noKernels = 0

func asmFuncs[T gemm.Float](*Funcs[T]) { panic("vmath: no assembly kernels on this architecture") }

func (f *Funcs[T]) act(int, *T, *T, *T, int) {
	panic("vmath: no assembly kernels on this architecture")
}

func (f *Funcs[T]) actRows(int, *T, *T, *T, int, int, int, int) {
	panic("vmath: no assembly kernels on this architecture")
}

func (f *Funcs[T]) gradRowsAsm(int, *T, *T, *T, int, int, int, int) {
	panic("vmath: no assembly kernels on this architecture")
}

func (f *Funcs[T]) grad(int, *T, *T, int) { panic("vmath: no assembly kernels on this architecture") }

// convAVX2 is false off amd64: the conversions run in Go.
const convAVX2 = false

func narrowAVX2(*float32, *float64, int)   { panic("vmath: no assembly kernels on this architecture") }
func widenAVX2(*float64, *float32, int)    { panic("vmath: no assembly kernels on this architecture") }
func addWidenAVX2(*float64, *float32, int) { panic("vmath: no assembly kernels on this architecture") }
func addAVX2(*float64, *float64, int)      { panic("vmath: no assembly kernels on this architecture") }
