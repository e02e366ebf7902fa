package su3

import (
	"math"
	"math/cmplx"

	"pfmpi/rng"
)

// Matrix is a 3×3 complex matrix, row-major.
type Matrix [9]complex128

// Reals is the number of float64 values a Matrix occupies in a real tensor
// (the links tensors of the flows): the nine entries in row-major order,
// each as its real and imaginary part.
const Reals = 18

// FromReals reads a Matrix stored as Reals values from x.
func FromReals(x []float64) Matrix {
	var m Matrix
	_ = x[Reals-1]
	for i := range m {
		m[i] = complex(x[2*i], x[2*i+1])
	}
	return m
}

// PutReals stores m as Reals values in x.
func (m *Matrix) PutReals(x []float64) {
	_ = x[Reals-1]
	for i, z := range m {
		x[2*i], x[2*i+1] = real(z), imag(z)
	}
}

// AddReals adds c·m, stored as Reals values, to x.
func (m *Matrix) AddReals(x []float64, c float64) {
	_ = x[Reals-1]
	for i, z := range m {
		x[2*i] += c * real(z)
		x[2*i+1] += c * imag(z)
	}
}

// Identity returns the unit matrix.
func Identity() Matrix { return Matrix{1, 0, 0, 0, 1, 0, 0, 0, 1} }

// Mul returns a·b.
func (a Matrix) Mul(b Matrix) Matrix {
	var c Matrix
	for i := 0; i < 3; i++ {
		a0, a1, a2 := a[3*i], a[3*i+1], a[3*i+2]
		c[3*i] = a0*b[0] + a1*b[3] + a2*b[6]
		c[3*i+1] = a0*b[1] + a1*b[4] + a2*b[7]
		c[3*i+2] = a0*b[2] + a1*b[5] + a2*b[8]
	}
	return c
}

// MulAdj returns a·b†.
func (a Matrix) MulAdj(b Matrix) Matrix {
	var c Matrix
	for i := 0; i < 3; i++ {
		a0, a1, a2 := a[3*i], a[3*i+1], a[3*i+2]
		for j := 0; j < 3; j++ {
			c[3*i+j] = a0*cmplx.Conj(b[3*j]) + a1*cmplx.Conj(b[3*j+1]) + a2*cmplx.Conj(b[3*j+2])
		}
	}
	return c
}

// AdjMul returns a†·b.
func (a Matrix) AdjMul(b Matrix) Matrix {
	var c Matrix
	for i := 0; i < 3; i++ {
		a0, a1, a2 := cmplx.Conj(a[i]), cmplx.Conj(a[3+i]), cmplx.Conj(a[6+i])
		c[3*i] = a0*b[0] + a1*b[3] + a2*b[6]
		c[3*i+1] = a0*b[1] + a1*b[4] + a2*b[7]
		c[3*i+2] = a0*b[2] + a1*b[5] + a2*b[8]
	}
	return c
}

// Adj returns the conjugate transpose a†.
func (a Matrix) Adj() Matrix {
	return Matrix{
		cmplx.Conj(a[0]), cmplx.Conj(a[3]), cmplx.Conj(a[6]),
		cmplx.Conj(a[1]), cmplx.Conj(a[4]), cmplx.Conj(a[7]),
		cmplx.Conj(a[2]), cmplx.Conj(a[5]), cmplx.Conj(a[8]),
	}
}

// Add returns a + b.
func (a Matrix) Add(b Matrix) Matrix {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// Sub returns a − b.
func (a Matrix) Sub(b Matrix) Matrix {
	for i := range a {
		a[i] -= b[i]
	}
	return a
}

// Scale returns z·a.
func (a Matrix) Scale(z complex128) Matrix {
	for i := range a {
		a[i] *= z
	}
	return a
}

// Trace returns Tr a.
func (a Matrix) Trace() complex128 { return a[0] + a[4] + a[8] }

// ReTr returns Re Tr a.
func (a Matrix) ReTr() float64 { return real(a[0]) + real(a[4]) + real(a[8]) }

// Det returns det a.
func (a Matrix) Det() complex128 {
	return a[0]*(a[4]*a[8]-a[5]*a[7]) - a[1]*(a[3]*a[8]-a[5]*a[6]) + a[2]*(a[3]*a[7]-a[4]*a[6])
}

// TA returns the traceless anti-Hermitian part (a − a†)/2 − Tr(a − a†)/6.
func (a Matrix) TA() Matrix {
	var t Matrix
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			t[3*i+j] = (a[3*i+j] - cmplx.Conj(a[3*j+i])) / 2
		}
	}
	tr := t.Trace() / 3
	t[0] -= tr
	t[4] -= tr
	t[8] -= tr
	return t
}

// MaxAbs returns the largest modulus of an element.
func (a Matrix) MaxAbs() float64 {
	m := 0.0
	for _, z := range a {
		m = max(m, cmplx.Abs(z))
	}
	return m
}

// DistanceFromSU3 returns max(max|a a† − 1|, |det a − 1|): zero for SU(3)
// up to rounding.
func (a Matrix) DistanceFromSU3() float64 {
	return max(a.MulAdj(a).Sub(Identity()).MaxAbs(), cmplx.Abs(a.Det()-1))
}

// Unitarize returns the projection of a onto SU(3): Gram–Schmidt on rows 0 and
// 1, row 2 the conjugated cross product of the two.
func (a Matrix) Unitarize() Matrix {
	var u Matrix
	n0 := 1 / math.Sqrt(norm2(a[0])+norm2(a[1])+norm2(a[2]))
	u[0], u[1], u[2] = a[0]*complex(n0, 0), a[1]*complex(n0, 0), a[2]*complex(n0, 0)
	// r1 − ⟨r0, r1⟩ r0
	d := cmplx.Conj(u[0])*a[3] + cmplx.Conj(u[1])*a[4] + cmplx.Conj(u[2])*a[5]
	v3, v4, v5 := a[3]-d*u[0], a[4]-d*u[1], a[5]-d*u[2]
	n1 := 1 / math.Sqrt(norm2(v3)+norm2(v4)+norm2(v5))
	u[3], u[4], u[5] = v3*complex(n1, 0), v4*complex(n1, 0), v5*complex(n1, 0)
	u[6] = cmplx.Conj(u[1]*u[5] - u[2]*u[4])
	u[7] = cmplx.Conj(u[2]*u[3] - u[0]*u[5])
	u[8] = cmplx.Conj(u[0]*u[4] - u[1]*u[3])
	return u
}

func norm2(z complex128) float64 { return real(z)*real(z) + imag(z)*imag(z) }

// generators are T_a = i λ_a / 2.
var generators = func() [8]Matrix {
	h := complex(0, 0.5)
	r3 := complex(0, 0.5/math.Sqrt(3))
	return [8]Matrix{
		{0, h, 0, h, 0, 0, 0, 0, 0},         // λ1
		{0, 0.5, 0, -0.5, 0, 0, 0, 0, 0},    // λ2: i·(−i) = 1
		{h, 0, 0, 0, -h, 0, 0, 0, 0},        // λ3
		{0, 0, h, 0, 0, 0, h, 0, 0},         // λ4
		{0, 0, 0.5, 0, 0, 0, -0.5, 0, 0},    // λ5
		{0, 0, 0, 0, 0, h, 0, h, 0},         // λ6
		{0, 0, 0, 0, 0, 0.5, 0, -0.5, 0},    // λ7
		{r3, 0, 0, 0, r3, 0, 0, 0, -2 * r3}, // λ8
	}
}()

// Generator returns T_a = i λ_a / 2 for a = 0…7 (λ₁…λ₈).
func Generator(a int) Matrix { return generators[a] }

// Components returns the coordinates x_a = −2 Re Tr(T_a X) of X in the basis
// T_a; for X in su(3), X = Σ_a x_a T_a.
func Components(x Matrix) [8]float64 {
	// Written out from the Gell-Mann matrices: −2 Re Tr(T_a X) = Im Tr(λ_a X).
	return [8]float64{
		imag(x[1] + x[3]),
		real(x[1] - x[3]),
		imag(x[0] - x[4]),
		imag(x[2] + x[6]),
		real(x[2] - x[6]),
		imag(x[5] + x[7]),
		real(x[5] - x[7]),
		imag(x[0]+x[4]-2*x[8]) / math.Sqrt(3),
	}
}

// FromComponents returns Σ_a x_a T_a.
func FromComponents(x [8]float64) Matrix {
	var m Matrix
	for a, g := range generators {
		for i := range m {
			m[i] += complex(x[a], 0) * g[i]
		}
	}
	return m
}

// Exp returns exp(x) for x in su(3) (traceless anti-Hermitian), an SU(3)
// matrix, by the Cayley–Hamilton theorem.
func Exp(x Matrix) Matrix {
	q := x.Scale(-1i) // Hermitian, traceless
	q2 := q.Mul(q)
	c1 := real(q2.Trace()) / 2
	if c1 == 0 {
		return Identity().Add(x)
	}
	c0 := real(q.Mul(q2).Trace()) / 3
	neg := c0 < 0
	if neg {
		c0 = -c0
	}
	c0max := 2 * math.Pow(c1/3, 1.5)
	r := min(c0/c0max, 1)
	theta := math.Acos(r)
	u := math.Sqrt(c1/3) * math.Cos(theta/3)
	w := math.Sqrt(c1) * math.Sin(theta/3)
	u2, w2 := u*u, w*w
	var xi0 float64 // sin(w)/w
	if w < 0.05 {
		xi0 = 1 - w2/6*(1-w2/20*(1-w2/42*(1-w2/72)))
	} else {
		xi0 = math.Sin(w) / w
	}
	cw := math.Cos(w)
	e2iu := cmplx.Exp(complex(0, 2*u))
	emiu := cmplx.Exp(complex(0, -u))
	h0 := complex(u2-w2, 0)*e2iu + emiu*complex(8*u2*cw, 2*u*(3*u2+w2)*xi0)
	h1 := complex(2*u, 0)*e2iu - emiu*complex(2*u*cw, -(3*u2-w2)*xi0)
	h2 := e2iu - emiu*complex(cw, 3*u*xi0)
	den := complex(1/(9*u2-w2), 0)
	f0, f1, f2 := h0*den, h1*den, h2*den
	if neg {
		f0, f1, f2 = cmplx.Conj(f0), -cmplx.Conj(f1), cmplx.Conj(f2)
	}
	var e Matrix
	for i := range e {
		e[i] = f1*q[i] + f2*q2[i]
	}
	e[0] += f0
	e[4] += f0
	e[8] += f0
	return e
}

// RandomAlgebra returns Σ_a ω_a T_a with ω_a standard normal.
func RandomAlgebra(s *rng.Stream) Matrix {
	var w [8]float64
	for a := range w {
		w[a] = s.Normal()
	}
	return FromComponents(w)
}

// NearIdentity returns exp(ε Σ_a ω_a T_a) with ω_a standard normal.
func NearIdentity(s *rng.Stream, eps float64) Matrix {
	return Exp(RandomAlgebra(s).Scale(complex(eps, 0)))
}

// Haar returns a Haar-random SU(3) matrix.
func Haar(s *rng.Stream) Matrix {
	var u Matrix
	s.Unitary(u[:], 3)
	// Divide by a cube root of the determinant (a unit complex number).
	return u.Scale(cmplx.Rect(1, -cmplx.Phase(u.Det())/3))
}
