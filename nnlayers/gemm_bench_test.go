package nnlayers

import (
	"fmt"
	"testing"
)

// BenchmarkGemm compares the kernels of the convolution's matrix products
// (rows × k·C_in times k·C_in × C_out, per site and batch chunk).
func BenchmarkGemm(b *testing.B) {
	for _, simd := range []bool{false, true} {
		if simd && !simdKernels {
			continue
		}
		for _, tA := range []bool{false, true} {
			m, n, k := ChunkSize, 32, 288
			if tA {
				m, n, k = 288, 32, siteGroup*ChunkSize
			}
			b.Run(fmt.Sprintf("simd=%v/transA=%v", simd, tA), func(b *testing.B) {
				a := make([]float64, m*k)
				bm := make([]float64, k*n)
				c := make([]float64, m*n)
				for i := range a {
					a[i] = float64(i%7) * 0.1
				}
				for i := range bm {
					bm[i] = float64(i%5) * 0.1
				}
				lda := k
				if tA {
					lda = m
				}
				for range b.N {
					if simd {
						if tA {
							simdGemmTN(m, n, k, a, lda, bm, n, c, n)
						} else {
							simdGemmNN(m, n, k, a, lda, bm, n, c, n)
						}
					} else {
						gonumGemm(tA, false, m, n, k, 1, a, lda, bm, n, 1, c, n)
					}
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
