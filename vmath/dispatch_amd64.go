package vmath

import (
	"unsafe"

	"golang.org/x/sys/cpu"

	"pfmpi/gemm"
)

// convAVX2 reports whether the conversions run in assembly.
var convAVX2 = cpu.X86.HasAVX2

// The assembly kernels of a family and precision.
const (
	noKernels = iota
	f64AVX512
	f64AVX2
	f32AVX512
	f32AVX2
)

// asmFuncs sets the assembly kernels of f's family.
func asmFuncs[T gemm.Float](f *Funcs[T]) {
	var z T
	_, f32 := any(z).(float32)
	switch {
	case f.arch == gemm.AVX512 && f32:
		f.kernels, f.lanes = f32AVX512, 16
	case f.arch == gemm.AVX512:
		f.kernels, f.lanes = f64AVX512, 8
	case f32:
		f.kernels, f.lanes = f32AVX2, 8
	default:
		f.kernels, f.lanes = f64AVX2, 4
	}
}

// act calls the activation kernel op (tanh or elu) of f's family directly
// (the kernels do not keep their pointers, so the caller's arrays stay on
// its stack).
func (f *Funcs[T]) act(op int, dst, src, bias *T, n int) {
	d, s, b := unsafe.Pointer(dst), unsafe.Pointer(src), unsafe.Pointer(bias)
	d64, s64, b64 := (*float64)(d), (*float64)(s), (*float64)(b)
	d32, s32, b32 := (*float32)(d), (*float32)(s), (*float32)(b)
	switch f.kernels<<1 | op {
	case f64AVX512<<1 | opTanh:
		tanhF64AVX512(d64, s64, b64, n)
	case f64AVX512<<1 | opELU:
		eluF64AVX512(d64, s64, b64, n)
	case f64AVX2<<1 | opTanh:
		tanhF64AVX2(d64, s64, b64, n)
	case f64AVX2<<1 | opELU:
		eluF64AVX2(d64, s64, b64, n)
	case f32AVX512<<1 | opTanh:
		tanhF32AVX512(d32, s32, b32, n)
	case f32AVX512<<1 | opELU:
		eluF32AVX512(d32, s32, b32, n)
	case f32AVX2<<1 | opTanh:
		tanhF32AVX2(d32, s32, b32, n)
	case f32AVX2<<1 | opELU:
		eluF32AVX2(d32, s32, b32, n)
	}
}

// actRows calls the row-block activation kernel op of f's family.
func (f *Funcs[T]) actRows(op int, dst, src, bias *T, n, rows, ldd, lds int) {
	d, s, b := unsafe.Pointer(dst), unsafe.Pointer(src), unsafe.Pointer(bias)
	d64, s64, b64 := (*float64)(d), (*float64)(s), (*float64)(b)
	d32, s32, b32 := (*float32)(d), (*float32)(s), (*float32)(b)
	switch f.kernels<<1 | op {
	case f64AVX512<<1 | opTanh:
		tanhRowsF64AVX512(d64, s64, b64, n, rows, ldd, lds)
	case f64AVX512<<1 | opELU:
		eluRowsF64AVX512(d64, s64, b64, n, rows, ldd, lds)
	case f64AVX2<<1 | opTanh:
		tanhRowsF64AVX2(d64, s64, b64, n, rows, ldd, lds)
	case f64AVX2<<1 | opELU:
		eluRowsF64AVX2(d64, s64, b64, n, rows, ldd, lds)
	case f32AVX512<<1 | opTanh:
		tanhRowsF32AVX512(d32, s32, b32, n, rows, ldd, lds)
	case f32AVX512<<1 | opELU:
		eluRowsF32AVX512(d32, s32, b32, n, rows, ldd, lds)
	case f32AVX2<<1 | opTanh:
		tanhRowsF32AVX2(d32, s32, b32, n, rows, ldd, lds)
	case f32AVX2<<1 | opELU:
		eluRowsF32AVX2(d32, s32, b32, n, rows, ldd, lds)
	}
}

// gradRowsAsm calls the row-block derivative kernel op of f's family.
func (f *Funcs[T]) gradRowsAsm(op int, dst, g, y *T, n, rows, ldd, lds int) {
	d, gp, yp := unsafe.Pointer(dst), unsafe.Pointer(g), unsafe.Pointer(y)
	d64, g64, y64 := (*float64)(d), (*float64)(gp), (*float64)(yp)
	d32, g32, y32 := (*float32)(d), (*float32)(gp), (*float32)(yp)
	switch f.kernels<<1 | op {
	case f64AVX512<<1 | opTanh:
		tanhGradRowsF64AVX512(d64, g64, y64, n, rows, ldd, lds)
	case f64AVX512<<1 | opELU:
		eluGradRowsF64AVX512(d64, g64, y64, n, rows, ldd, lds)
	case f64AVX2<<1 | opTanh:
		tanhGradRowsF64AVX2(d64, g64, y64, n, rows, ldd, lds)
	case f64AVX2<<1 | opELU:
		eluGradRowsF64AVX2(d64, g64, y64, n, rows, ldd, lds)
	case f32AVX512<<1 | opTanh:
		tanhGradRowsF32AVX512(d32, g32, y32, n, rows, ldd, lds)
	case f32AVX512<<1 | opELU:
		eluGradRowsF32AVX512(d32, g32, y32, n, rows, ldd, lds)
	case f32AVX2<<1 | opTanh:
		tanhGradRowsF32AVX2(d32, g32, y32, n, rows, ldd, lds)
	case f32AVX2<<1 | opELU:
		eluGradRowsF32AVX2(d32, g32, y32, n, rows, ldd, lds)
	}
}

// grad calls the derivative kernel op of f's family directly.
func (f *Funcs[T]) grad(op int, g, y *T, n int) {
	gp, yp := unsafe.Pointer(g), unsafe.Pointer(y)
	g64, y64 := (*float64)(gp), (*float64)(yp)
	g32, y32 := (*float32)(gp), (*float32)(yp)
	switch f.kernels<<1 | op {
	case f64AVX512<<1 | opTanh:
		tanhGradF64AVX512(g64, y64, n)
	case f64AVX512<<1 | opELU:
		eluGradF64AVX512(g64, y64, n)
	case f64AVX2<<1 | opTanh:
		tanhGradF64AVX2(g64, y64, n)
	case f64AVX2<<1 | opELU:
		eluGradF64AVX2(g64, y64, n)
	case f32AVX512<<1 | opTanh:
		tanhGradF32AVX512(g32, y32, n)
	case f32AVX512<<1 | opELU:
		eluGradF32AVX512(g32, y32, n)
	case f32AVX2<<1 | opTanh:
		tanhGradF32AVX2(g32, y32, n)
	case f32AVX2<<1 | opELU:
		eluGradF32AVX2(g32, y32, n)
	}
}
