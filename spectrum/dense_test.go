package spectrum

import (
	"math/cmplx"
	"testing"

	"pfmpi/rng"
)

// TestInverse checks A·A⁻¹ = 1 for a random complex matrix.
func TestInverse(t *testing.T) {
	const n = 7
	d := &Dense{N: n, A: make([]complex128, n*n)}
	st := rng.New(3, "inverse").Stream(0)
	for i := range d.A {
		d.A[i] = st.ComplexNormal()
	}
	inv := d.Inverse()
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s complex128
			for k := 0; k < n; k++ {
				s += d.A[i*n+k] * inv[k*n+j]
			}
			if i == j {
				s--
			}
			if cmplx.Abs(s) > 1e-12 {
				t.Fatalf("(A A⁻¹ − 1)[%d][%d] = %v", i, j, s)
			}
		}
	}
}
