package su3

import (
	"math"
	"math/cmplx"
)

// Eigen returns the eigenvalues λ and a unitary V whose columns are the
// eigenvectors of the unitary (more generally normal) matrix u:
// u = V diag(λ) V†. Order and eigenvector phases are arbitrary.
func Eigen(u Matrix) (lambda [3]complex128, v Matrix) {
	// 1. Diagonalise the Hermitian part H = (u + u†)/2 by Jacobi rotations.
	h := u.Add(u.Adj()).Scale(0.5)
	v = jacobiHermitian(h)
	m := v.AdjMul(u).Mul(v)
	// 2. In that basis u is block diagonal up to rounding, the blocks being
	// the (nearly) degenerate eigenspaces of H. Finish with rotations that
	// diagonalise each 2×2 block exactly as a normal matrix (Schur form).
	scale := u.MaxAbs()
	for sweep := 0; sweep < 8 && offDiagonal2(m) > 1e-30*scale*scale; sweep++ {
		for _, pq := range [3][2]int{{0, 1}, {0, 2}, {1, 2}} {
			p, q := pq[0], pq[1]
			if a, b, c, d, ok := schur2(m, p, q, scale); ok {
				m.conjugateBy(p, q, a, b, c, d)
				v.rotateColumns(p, q, a, b, c, d)
			}
		}
	}
	return [3]complex128{m[0], m[4], m[8]}, v
}

// Phases returns the eigenphases of a unitary matrix in (−π, π] and its
// eigenvectors (columns of v).
func Phases(u Matrix) (theta [3]float64, v Matrix) {
	lambda, v := Eigen(u)
	for i, l := range lambda {
		theta[i] = cmplx.Phase(l)
	}
	return theta, v
}

// offDiagonal2 is the largest squared modulus off the diagonal of m.
func offDiagonal2(m Matrix) float64 {
	return max(norm2(m[1]), norm2(m[2]), norm2(m[3]), norm2(m[5]), norm2(m[6]), norm2(m[7]))
}

// The rotations below are the 2×2 unitary G = [[a, b], [c, d]] embedded in
// rows and columns p, q of the identity; they touch only those rows and
// columns.

// rotateColumns sets m ← m G.
func (m *Matrix) rotateColumns(p, q int, a, b, c, d complex128) {
	for r := range 3 {
		x, y := m[3*r+p], m[3*r+q]
		m[3*r+p], m[3*r+q] = x*a+y*c, x*b+y*d
	}
}

// conjugateBy sets m ← G† m G.
func (m *Matrix) conjugateBy(p, q int, a, b, c, d complex128) {
	m.rotateColumns(p, q, a, b, c, d)
	ac, bc, cc, dc := cmplx.Conj(a), cmplx.Conj(b), cmplx.Conj(c), cmplx.Conj(d)
	for k := range 3 {
		x, y := m[3*p+k], m[3*q+k]
		m[3*p+k], m[3*q+k] = ac*x+cc*y, bc*x+dc*y
	}
}

// jacobiHermitian returns the unitary V with V† h V diagonal for Hermitian h
// (cyclic Jacobi rotations, each making one off-diagonal pair exactly zero).
func jacobiHermitian(h Matrix) Matrix {
	v := Identity()
	scale := h.MaxAbs()
	for sweep := 0; sweep < 50; sweep++ {
		if offDiagonal2(h) <= 1e-34*scale*scale {
			break
		}
		for _, pq := range [3][2]int{{0, 1}, {0, 2}, {1, 2}} {
			p, q := pq[0], pq[1]
			z := h[3*p+q]
			r := math.Sqrt(norm2(z))
			if r == 0 {
				continue
			}
			// Remove the phase of h_pq, then the real symmetric rotation.
			phase := z / complex(r, 0)
			a, b := real(h[3*p+p]), real(h[3*q+q])
			tau := (b - a) / (2 * r)
			t := 1 / (math.Abs(tau) + math.Sqrt(1+tau*tau))
			if tau < 0 {
				t = -t
			}
			c := 1 / math.Sqrt(1+t*t)
			s := t * c
			ph := cmplx.Conj(phase)
			ga, gb, gc, gd := complex(c, 0), complex(s, 0), complex(-s, 0)*ph, complex(c, 0)*ph
			h.conjugateBy(p, q, ga, gb, gc, gd)
			h[3*p+q], h[3*q+p] = 0, 0
			v.rotateColumns(p, q, ga, gb, gc, gd)
		}
	}
	return v
}

// schur2 returns the rotation [[a, b], [c, d]] in rows/columns p, q whose first column is an
// eigenvector of the 2×2 block [[m_pp, m_pq], [m_qp, m_qq]]: it zeroes m_qp,
// and for a normal block also m_pq. ok is false when the block is already
// diagonal or a multiple of the identity to rounding.
func schur2(m Matrix, p, q int, scale float64) (a, b, c, d complex128, ok bool) {
	beta, gamma := m[3*p+q], m[3*q+p]
	if tiny := 1e-32 * scale * scale; norm2(beta) <= tiny && norm2(gamma) <= tiny {
		return 0, 0, 0, 0, false
	}
	alpha := (m[3*p+p] - m[3*q+q]) / 2
	mu := cmplx.Sqrt(alpha*alpha + beta*gamma)
	if cmplx.Abs(alpha-mu) > cmplx.Abs(alpha+mu) {
		mu = -mu
	}
	// (α + μ, γ) solves the second row of (B − (t + μ)) x = 0.
	x0, x1 := alpha+mu, gamma
	n := math.Sqrt(norm2(x0) + norm2(x1))
	if n <= 1e-300 {
		return 0, 0, 0, 0, false
	}
	x0, x1 = x0/complex(n, 0), x1/complex(n, 0)
	return x0, -cmplx.Conj(x1), x1, cmplx.Conj(x0), true
}
