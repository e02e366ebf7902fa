package solver_test

import (
	"math"
	"math/cmplx"
	"strings"
	"testing"

	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
)

// dense is a Hermitian matrix applied in float64, or with single rounding
// of its output when float32 is set (an operator that loses precision).
type dense struct {
	n       int
	a       []complex128
	float32 bool
}

func (d dense) Apply(out, in []complex128) {
	for i := range d.n {
		var s complex128
		for j := range d.n {
			s += d.a[i*d.n+j] * in[j]
		}
		if d.float32 {
			s = complex128(complex64(s))
		}
		out[i] = s
	}
}

// illConditioned returns Q† diag(λ) Q with Q a random unitary and λ from 1
// down to 10^−decades, and a random right-hand side.
func illConditioned(n int, decades float64, seed uint64) (dense, []complex128) {
	st := rng.New(seed, "ill-conditioned").Stream(uint64(n))
	q := make([]complex128, n*n)
	for i := range q {
		q[i] = st.ComplexNormal()
	}
	for i := range n { // Gram–Schmidt on the rows
		for k := range i {
			var dot complex128
			for j := range n {
				dot += cmplx.Conj(q[k*n+j]) * q[i*n+j]
			}
			for j := range n {
				q[i*n+j] -= dot * q[k*n+j]
			}
		}
		nn := 0.0
		for j := range n {
			nn += real(q[i*n+j] * cmplx.Conj(q[i*n+j]))
		}
		for j := range n {
			q[i*n+j] /= complex(math.Sqrt(nn), 0)
		}
	}
	a := make([]complex128, n*n)
	for k := range n {
		lam := complex(math.Pow(10, -decades*float64(k)/float64(n-1)), 0)
		for i := range n {
			for j := range n {
				a[i*n+j] += lam * cmplx.Conj(q[k*n+i]) * q[k*n+j]
			}
		}
	}
	b := make([]complex128, n)
	for i := range b {
		b[i] = st.ComplexNormal()
	}
	return dense{n: n, a: a}, b
}

// TestCGAtThePrecisionFloor: on matrices of condition number 10⁶–10¹⁰ the
// true residual of CG stops far above a tolerance of 10⁻¹² (it cannot fall
// below about u·cond); CG accepts such solves because x is a backward-stable
// solution — its normwise backward error |b − Ax|/(|A||x| + |b|), computed
// here with the exact |A| = 1, is within 1000 rounding units — and so does
// multi-shift CG. An operator that rounds its output to float32 leaves a
// backward error of ~10⁻⁸, and that solve is still an error.
func TestCGAtThePrecisionFloor(t *testing.T) {
	const tol = 1e-12
	for _, n := range []int{16, 48} {
		for _, decades := range []float64{6, 8, 10} {
			a, b := illConditioned(n, decades, 7)
			x := make([]complex128, n)
			res, err := solver.NewCG(mpi.Self(), n).Solve(a, x, b, tol, 100000)
			if err != nil {
				t.Fatalf("n %d cond 1e%g: %v", n, decades, err)
			}
			r := make([]complex128, n)
			a.Apply(r, x)
			for i := range r {
				r[i] = b[i] - r[i]
			}
			eta := math.Sqrt(solver.Norm2(mpi.Self(), r)) / (math.Sqrt(solver.Norm2(mpi.Self(), x)) + math.Sqrt(solver.Norm2(mpi.Self(), b)))
			if eta > 1e3*0x1p-53 {
				t.Errorf("n %d cond 1e%g: backward error %.3g (residual %.3g) accepted", n, decades, eta, res.Residual)
			}
			if decades >= 8 && res.Residual <= 10*tol {
				t.Errorf("n %d cond 1e%g: residual %.3g: the case does not reach the floor it tests", n, decades, res.Residual)
			}
			if res.Residual > 10*tol && (res.BackwardError == 0 || res.BackwardError < eta) {
				t.Errorf("n %d cond 1e%g: reported backward error %.3g, not an upper bound of %.3g", n, decades, res.BackwardError, eta)
			}
			xs := [][]complex128{make([]complex128, n), make([]complex128, n)}
			if _, err := solver.NewMultiShiftCG(mpi.Self(), n).Solve(a, []float64{0, 1e-9}, xs, b, tol, 100000); err != nil {
				t.Errorf("n %d cond 1e%g: multi-shift: %v", n, decades, err)
			}
		}
	}
	a, b := illConditioned(16, 2, 7)
	a.float32 = true
	x := make([]complex128, 16)
	_, err := solver.NewCG(mpi.Self(), 16).Solve(a, x, b, 1e-10, 100000)
	if err == nil || !strings.Contains(err.Error(), "backward error") {
		t.Errorf("operator rounding to float32, tolerance 1e-10: %v", err)
	}
}
