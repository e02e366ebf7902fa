//go:build goexperiment.simd && amd64

package nnlayers

import "simd/archsimd"

// The AVX2+FMA matrix kernels, built with GOEXPERIMENT=simd: C += A·B and
// C += Aᵀ·B for row-major matrices whose C rows are a multiple of 4 long.
// Rows of C are computed in blocks of 16 columns (four 256-bit registers
// per row) with the sum over k in registers.

type f4 = archsimd.Float64x4

var simdKernels = archsimd.X86.AVX2() && archsimd.X86.FMA()

func ld(s []float64) f4 { return archsimd.LoadFloat64x4Slice(s) }

// simdGemmNN sets C(m×n) += A(m×k)·B(k×n); n must be a multiple of 4.
func simdGemmNN(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	i := 0
	for ; i+1 < m; i += 2 {
		a0, a1 := a[i*lda:i*lda+k], a[(i+1)*lda:(i+1)*lda+k]
		c0, c1 := c[i*ldc:], c[(i+1)*ldc:]
		j := 0
		for ; j+16 <= n; j += 16 {
			x0, x1, x2, x3 := ld(c0[j:]), ld(c0[j+4:]), ld(c0[j+8:]), ld(c0[j+12:])
			y0, y1, y2, y3 := ld(c1[j:]), ld(c1[j+4:]), ld(c1[j+8:]), ld(c1[j+12:])
			for kk := range k {
				bk := b[kk*ldb+j : kk*ldb+j+16]
				b0, b1, b2, b3 := ld(bk), ld(bk[4:]), ld(bk[8:]), ld(bk[12:])
				p := archsimd.BroadcastFloat64x4(a0[kk])
				q := archsimd.BroadcastFloat64x4(a1[kk])
				x0, x1, x2, x3 = p.MulAdd(b0, x0), p.MulAdd(b1, x1), p.MulAdd(b2, x2), p.MulAdd(b3, x3)
				y0, y1, y2, y3 = q.MulAdd(b0, y0), q.MulAdd(b1, y1), q.MulAdd(b2, y2), q.MulAdd(b3, y3)
			}
			x0.StoreSlice(c0[j:])
			x1.StoreSlice(c0[j+4:])
			x2.StoreSlice(c0[j+8:])
			x3.StoreSlice(c0[j+12:])
			y0.StoreSlice(c1[j:])
			y1.StoreSlice(c1[j+4:])
			y2.StoreSlice(c1[j+8:])
			y3.StoreSlice(c1[j+12:])
		}
		for ; j < n; j += 4 {
			x, y := ld(c0[j:]), ld(c1[j:])
			for kk := range k {
				bv := ld(b[kk*ldb+j:])
				x = archsimd.BroadcastFloat64x4(a0[kk]).MulAdd(bv, x)
				y = archsimd.BroadcastFloat64x4(a1[kk]).MulAdd(bv, y)
			}
			x.StoreSlice(c0[j:])
			y.StoreSlice(c1[j:])
		}
	}
	for ; i < m; i++ {
		ai, ci := a[i*lda:i*lda+k], c[i*ldc:]
		for j := 0; j < n; j += 4 {
			x := ld(ci[j:])
			for kk := range k {
				x = archsimd.BroadcastFloat64x4(ai[kk]).MulAdd(ld(b[kk*ldb+j:]), x)
			}
			x.StoreSlice(ci[j:])
		}
	}
}

// simdGemmTN sets C(m×n) += Aᵀ·B with A (k×m), B (k×n); n must be a
// multiple of 4.
func simdGemmTN(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	for i := range m {
		ci := c[i*ldc:]
		j := 0
		for ; j+16 <= n; j += 16 {
			x0, x1, x2, x3 := ld(ci[j:]), ld(ci[j+4:]), ld(ci[j+8:]), ld(ci[j+12:])
			for kk := range k {
				bk := b[kk*ldb+j : kk*ldb+j+16]
				p := archsimd.BroadcastFloat64x4(a[kk*lda+i])
				x0, x1 = p.MulAdd(ld(bk), x0), p.MulAdd(ld(bk[4:]), x1)
				x2, x3 = p.MulAdd(ld(bk[8:]), x2), p.MulAdd(ld(bk[12:]), x3)
			}
			x0.StoreSlice(ci[j:])
			x1.StoreSlice(ci[j+4:])
			x2.StoreSlice(ci[j+8:])
			x3.StoreSlice(ci[j+12:])
		}
		for ; j < n; j += 4 {
			x := ld(ci[j:])
			for kk := range k {
				x = archsimd.BroadcastFloat64x4(a[kk*lda+i]).MulAdd(ld(b[kk*ldb+j:]), x)
			}
			x.StoreSlice(ci[j:])
		}
	}
}
