package group

import (
	"fmt"
	"math/cmplx"
	"strings"

	"pfmpi/rng"
	"pfmpi/su3"
	"pfmpi/u1"
)

// Group is a gauge group; its value is the number of colours Nc.
type Group int

// The gauge groups pfmpi implements.
const (
	U1  Group = 1 // U(1): compact QED, the Schwinger model in 2D
	SU3 Group = 3 // SU(3): QCD
)

// Of returns the group of nc colours.
func Of(nc int) (Group, error) {
	switch Group(nc) {
	case U1, SU3:
		return Group(nc), nil
	}
	return 0, fmt.Errorf("group: Nc = %d; pfmpi implements U(1) (Nc = 1) and SU(3) (Nc = 3)", nc)
}

// Groups lists the groups pfmpi implements.
func Groups() []Group { return []Group{U1, SU3} }

// Parse returns the group of a run-file name ([Group.String]: "u1", "su3").
func Parse(name string) (Group, error) {
	var names []string
	for _, g := range Groups() {
		if g.String() == name {
			return g, nil
		}
		names = append(names, g.String())
	}
	return 0, fmt.Errorf("group: unknown gauge group %q; use one of %s", name, strings.Join(names, ", "))
}

// Nc is the number of colours.
func (g Group) Nc() int { return int(g) }

// String is the group's name in run files: "u1" or "su3".
func (g Group) String() string {
	switch g {
	case U1:
		return "u1"
	case SU3:
		return "su3"
	}
	return fmt.Sprintf("Group(%d)", int(g))
}

// Title is the group's name in text: "U(1)" or "SU(3)".
func (g Group) Title() string {
	if g == U1 {
		return "U(1)"
	}
	return fmt.Sprintf("SU(%d)", int(g))
}

// Abelian reports whether the group is U(1).
func (g Group) Abelian() bool { return g == U1 }

// LinkValues is the number of complex values of one link, Nc².
func (g Group) LinkValues() int { return int(g) * int(g) }

// LinkReals is the number of reals of one link in the networks' layout, 2Nc².
func (g Group) LinkReals() int { return 2 * g.LinkValues() }

// AlgebraDim is the dimension of the Lie algebra: 1 for U(1), Nc² − 1 for SU(Nc).
func (g Group) AlgebraDim() int {
	if g == U1 {
		return 1
	}
	return g.LinkValues() - 1
}

func m3(s []complex128) *su3.Matrix { return (*su3.Matrix)(s[:9]) }

// Mul sets dst = a·b.
func (g Group) Mul(dst, a, b []complex128) {
	if g == U1 {
		dst[0] = a[0] * b[0]
		return
	}
	*m3(dst) = m3(a).Mul(*m3(b))
}

// MulAdj sets dst = a·b†.
func (g Group) MulAdj(dst, a, b []complex128) {
	if g == U1 {
		dst[0] = a[0] * cmplx.Conj(b[0])
		return
	}
	*m3(dst) = m3(a).MulAdj(*m3(b))
}

// AdjMul sets dst = a†·b.
func (g Group) AdjMul(dst, a, b []complex128) {
	if g == U1 {
		dst[0] = cmplx.Conj(a[0]) * b[0]
		return
	}
	*m3(dst) = m3(a).AdjMul(*m3(b))
}

// MulVec sets dst = u·v for a colour vector v.
func (g Group) MulVec(dst, u, v []complex128) {
	if g == U1 {
		dst[0] = u[0] * v[0]
		return
	}
	v0, v1, v2 := v[0], v[1], v[2]
	dst[0] = u[0]*v0 + u[1]*v1 + u[2]*v2
	dst[1] = u[3]*v0 + u[4]*v1 + u[5]*v2
	dst[2] = u[6]*v0 + u[7]*v1 + u[8]*v2
}

// AdjMulVec sets dst = u†·v.
func (g Group) AdjMulVec(dst, u, v []complex128) {
	if g == U1 {
		dst[0] = cmplx.Conj(u[0]) * v[0]
		return
	}
	v0, v1, v2 := v[0], v[1], v[2]
	dst[0] = cmplx.Conj(u[0])*v0 + cmplx.Conj(u[3])*v1 + cmplx.Conj(u[6])*v2
	dst[1] = cmplx.Conj(u[1])*v0 + cmplx.Conj(u[4])*v1 + cmplx.Conj(u[7])*v2
	dst[2] = cmplx.Conj(u[2])*v0 + cmplx.Conj(u[5])*v1 + cmplx.Conj(u[8])*v2
}

// Trace returns Tr a.
func (g Group) Trace(a []complex128) complex128 {
	if g == U1 {
		return a[0]
	}
	return a[0] + a[4] + a[8]
}

// SetIdentity sets dst = 1.
func (g Group) SetIdentity(dst []complex128) {
	if g == U1 {
		dst[0] = 1
		return
	}
	*m3(dst) = su3.Identity()
}

// Dual sets dst = Σ_a T_a Re Tr(T_a m): −i Im m for U(1), −TA(m)/2 for SU(3).
func (g Group) Dual(dst, m []complex128) {
	if g == U1 {
		dst[0] = complex(0, -imag(m[0]))
		return
	}
	*m3(dst) = m3(m).TA().Scale(-0.5)
}

// AddDual adds scale·Σ_a T_a Re Tr(T_a m) to dst (the accumulation of a
// force from the matrix m of a link's derivative).
func (g Group) AddDual(dst, m []complex128, scale complex128) {
	if g == U1 {
		dst[0] += scale * complex(0, -imag(m[0]))
		return
	}
	// −TA(m)/2 = −[(m − m†)/2 − Tr(m − m†)/6]/2
	var tr complex128
	for i := 0; i < 3; i++ {
		tr += m[4*i] - cmplx.Conj(m[4*i])
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			v := (m[3*i+j] - cmplx.Conj(m[3*j+i])) / 2
			if i == j {
				v -= tr / 6
			}
			dst[3*i+j] += scale * (-v / 2)
		}
	}
}

// Exp sets dst = exp(x) for x in the algebra.
func (g Group) Exp(dst, x []complex128) {
	if g == U1 {
		dst[0] = u1.Exp(x[0])
		return
	}
	*m3(dst) = su3.Exp(*m3(x))
}

// AlgebraDot returns Σ_a x_a y_a for x = Σ x_a T_a, y = Σ y_a T_a.
func (g Group) AlgebraDot(x, y []complex128) float64 {
	if g == U1 {
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

// Haar sets dst to a Haar-random element.
func (g Group) Haar(dst []complex128, s *rng.Stream) {
	if g == U1 {
		dst[0] = u1.Haar(s)
		return
	}
	*m3(dst) = su3.Haar(s)
}

// RandomAlgebra sets dst = Σ_a ω_a T_a with ω_a standard normal.
func (g Group) RandomAlgebra(dst []complex128, s *rng.Stream) {
	if g == U1 {
		dst[0] = complex(0, s.Normal())
		return
	}
	*m3(dst) = su3.RandomAlgebra(s)
}

// Distance returns how far a is from the group: |a a† − 1| for U(1); for
// SU(3) the largest entry of a a† − 1 or |det a − 1|.
func (g Group) Distance(a []complex128) float64 {
	if g == U1 {
		return cmplx.Abs(a[0]*cmplx.Conj(a[0]) - 1)
	}
	return m3(a).DistanceFromSU3()
}

// Project moves a back onto the group in place (it drifts by rounding over
// many updates): U(1) to the unit circle, SU(3) by Gram–Schmidt with the
// determinant fixed to 1.
func (g Group) Project(a []complex128) {
	if g == U1 {
		a[0] = u1.Project(a[0])
		return
	}
	*m3(a) = m3(a).Unitarize()
}

// Adj sets dst = a† (dst and a must not alias).
func (g Group) Adj(dst, a []complex128) {
	if g == U1 {
		dst[0] = cmplx.Conj(a[0])
		return
	}
	*m3(dst) = m3(a).Adj()
}
