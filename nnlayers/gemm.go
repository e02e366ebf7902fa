package nnlayers

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemm sets C = alpha·op(A)·op(B) + beta·C (row-major, leading dimensions
// lda, ldb, ldc) with gonum's serial kernel: the product is cut into
// pieces of at most 192 rows × 64 columns of C, below the size at which
// gonum would start goroutines of its own (and allocate). The worker pool
// is the only parallelism.
func gemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
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
