package gauge

import (
	"fmt"
	"math/cmplx"

	"pfmpi/rng"
	"pfmpi/su3"
	"pfmpi/u1"
)

// The group arithmetic on Nc×Nc row-major matrices stored in slices: U(1)
// (Nc = 1) and SU(3) (Nc = 3). Each helper switches on Nc once and then runs
// the group's own code; no helper allocates.

func checkNc(nc int) error {
	if nc != 1 && nc != 3 {
		return fmt.Errorf("gauge: Nc = %d; pfmpi supports U(1) (Nc = 1) and SU(3) (Nc = 3)", nc)
	}
	return nil
}

func m3(s []complex128) *su3.Matrix { return (*su3.Matrix)(s[:9]) }

// mul sets dst = a·b.
func mul(dst, a, b []complex128, nc int) {
	if nc == 1 {
		dst[0] = a[0] * b[0]
		return
	}
	*m3(dst) = m3(a).Mul(*m3(b))
}

// mulAdj sets dst = a·b†.
func mulAdj(dst, a, b []complex128, nc int) {
	if nc == 1 {
		dst[0] = a[0] * cmplx.Conj(b[0])
		return
	}
	*m3(dst) = m3(a).MulAdj(*m3(b))
}

// adjMul sets dst = a†·b.
func adjMul(dst, a, b []complex128, nc int) {
	if nc == 1 {
		dst[0] = cmplx.Conj(a[0]) * b[0]
		return
	}
	*m3(dst) = m3(a).AdjMul(*m3(b))
}

// trace returns Tr a.
func trace(a []complex128, nc int) complex128 {
	if nc == 1 {
		return a[0]
	}
	return a[0] + a[4] + a[8]
}

// setIdentity sets dst = 1.
func setIdentity(dst []complex128, nc int) {
	if nc == 1 {
		dst[0] = 1
		return
	}
	*m3(dst) = su3.Identity()
}

// dual sets dst = Σ_a T_a Re Tr(T_a m): U(1) (T = i): −i Im m;
// SU(3) (T_a = iλ_a/2): −TA(m)/2.
func dual(dst, m []complex128, nc int) {
	if nc == 1 {
		dst[0] = complex(0, -imag(m[0]))
		return
	}
	*m3(dst) = m3(m).TA().Scale(-0.5)
}

// expAlg sets dst = exp(x) for x in the algebra.
func expAlg(dst, x []complex128, nc int) {
	if nc == 1 {
		dst[0] = u1.Exp(x[0])
		return
	}
	*m3(dst) = su3.Exp(*m3(x))
}

// algDot returns Σ_a x_a y_a for x = Σ x_a T_a, y = Σ y_a T_a.
func algDot(x, y []complex128, nc int) float64 {
	if nc == 1 {
		return imag(x[0]) * imag(y[0])
	}
	// −2 Re Tr(XY) = Σ_a x_a y_a for the normalisation Tr(T_a T_b) = −δ_ab/2.
	var tr complex128
	for i := 0; i < 3; i++ {
		for k := 0; k < 3; k++ {
			tr += x[3*i+k] * y[3*k+i]
		}
	}
	return -2 * real(tr)
}

// haar sets dst to a Haar-random element.
func haar(dst []complex128, s *rng.Stream, nc int) {
	if nc == 1 {
		dst[0] = u1.Haar(s)
		return
	}
	*m3(dst) = su3.Haar(s)
}

// randomAlgebra sets dst = Σ_a ω_a T_a with ω_a standard normal.
func randomAlgebra(dst []complex128, s *rng.Stream, nc int) {
	if nc == 1 {
		dst[0] = complex(0, s.Normal())
		return
	}
	*m3(dst) = su3.RandomAlgebra(s)
}

// distance returns how far a is from the group: max|a a† − 1| and, for
// SU(3), |det a − 1|.
func distance(a []complex128, nc int) float64 {
	if nc == 1 {
		return cmplx.Abs(a[0]*cmplx.Conj(a[0]) - 1)
	}
	return m3(a).DistanceFromSU3()
}
