package vmath

import "pfmpi/gemm"

// asmFuncs sets the assembly kernels of f's family.
func asmFuncs[T gemm.Float](f *Funcs[T]) {
	var z T
	_, f32 := any(z).(float32)
	var tanh, elu, tanhGrad, eluGrad any
	switch {
	case f.arch == gemm.AVX512 && f32:
		tanh, elu, tanhGrad, eluGrad, f.lanes = tanhF32AVX512, eluF32AVX512, tanhGradF32AVX512, eluGradF32AVX512, 16
	case f.arch == gemm.AVX512:
		tanh, elu, tanhGrad, eluGrad, f.lanes = tanhF64AVX512, eluF64AVX512, tanhGradF64AVX512, eluGradF64AVX512, 8
	case f32:
		tanh, elu, tanhGrad, eluGrad, f.lanes = tanhF32AVX2, eluF32AVX2, tanhGradF32AVX2, eluGradF32AVX2, 8
	default:
		tanh, elu, tanhGrad, eluGrad, f.lanes = tanhF64AVX2, eluF64AVX2, tanhGradF64AVX2, eluGradF64AVX2, 4
	}
	f.tanh = actFunc[T](tanh.(func(*T, *T, *T, int)))
	f.elu = actFunc[T](elu.(func(*T, *T, *T, int)))
	f.tanhGrad = gradFunc[T](tanhGrad.(func(*T, *T, int)))
	f.eluGrad = gradFunc[T](eluGrad.(func(*T, *T, int)))
}
