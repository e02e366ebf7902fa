//go:build !(goexperiment.simd && amd64)

package dslash

// simdKernels is false: this build has no SIMD kernels (build with
// GOEXPERIMENT=simd on amd64 to get them).
const simdKernels = false

func (w *Wilson) hop4D3SIMD(out []complex128, outLo int, sites []int32, in []complex128, inLo int, sF float64, x []complex128, kappa float64) {
	panic("dslash: SIMD kernel called in a build without SIMD")
}
