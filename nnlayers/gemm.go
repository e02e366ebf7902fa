package nnlayers

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemm sets C += op(A)·B (row-major, leading dimensions lda, ldb, ldc; op
// is the transpose with tA): with the AVX2 kernels where the build has them
// and simd is set — on the first n − n mod 4 columns, the rest with gonum —
// otherwise with gonum.

func gemm(simd, tA bool, m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	n4 := n - n%4
	if simd && simdKernels && n4 > 0 {
		if tA {
			simdGemmTN(m, n4, k, a, lda, b, ldb, c, ldc)
		} else {
			simdGemmNN(m, n4, k, a, lda, b, ldb, c, ldc)
		}
		if n4 == n {
			return
		}
		// The last n mod 4 columns of C.
		gonumGemm(tA, false, m, n-n4, k, 1, a, lda, b[n4:], ldb, 1, c[n4:], ldc)
		return
	}
	gonumGemm(tA, false, m, n, k, 1, a, lda, b, ldb, 1, c, ldc)
}

// gonumGemm sets C = alpha·op(A)·op(B) + beta·C with gonum's serial
// kernel: the product is cut into pieces of at most 192 rows × 64 columns
// of C, below the size at which gonum would start goroutines of its own
// (and allocate). The worker pool is the only parallelism.
func gonumGemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	const mStep, nStep = 192, 64
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	var impl gonum.Implementation
	for i := 0; i < m; i += mStep {
		mi := min(mStep, m-i)
		// Row i of op(A): row i of A, or column i of A when transposed.
		aOff := i * lda
		if tA {
			aOff = i
		}
		for j := 0; j < n; j += nStep {
			nj := min(nStep, n-j)
			// Column j of op(B): column j of B, or row j when transposed.
			bOff := j
			if tB {
				bOff = j * ldb
			}
			impl.Dgemm(ta, tb, mi, nj, k, alpha, a[aOff:], lda, b[bOff:], ldb, beta, c[i*ldc+j:], ldc)
		}
	}
}
