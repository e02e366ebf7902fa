//go:build !(goexperiment.simd && amd64)

package nnlayers

// Without GOEXPERIMENT=simd on amd64 there are no vector kernels.
const simdKernels = false

func simdGemmNN(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	panic("nnlayers: no SIMD kernels in this build")
}

func simdGemmTN(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	panic("nnlayers: no SIMD kernels in this build")
}
