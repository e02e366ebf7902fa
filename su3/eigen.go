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
	for sweep := 0; sweep < 8 && offDiagonal(m) > 1e-15*scale; sweep++ {
		for _, pq := range [3][2]int{{0, 1}, {0, 2}, {1, 2}} {
			if g, ok := schur2(m, pq[0], pq[1], scale); ok {
				m = g.AdjMul(m).Mul(g)
				v = v.Mul(g)
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

func offDiagonal(m Matrix) float64 {
	return max(cmplx.Abs(m[1]), cmplx.Abs(m[2]), cmplx.Abs(m[3]), cmplx.Abs(m[5]), cmplx.Abs(m[6]), cmplx.Abs(m[7]))
}

// rotation embeds the 2×2 unitary [[a, b], [c, d]] in rows/columns p, q.
func rotation(p, q int, a, b, c, d complex128) Matrix {
	g := Identity()
	g[3*p+p], g[3*p+q], g[3*q+p], g[3*q+q] = a, b, c, d
	return g
}

// jacobiHermitian returns the unitary V with V† h V diagonal for Hermitian h
// (cyclic Jacobi rotations, each making one off-diagonal pair exactly zero).
func jacobiHermitian(h Matrix) Matrix {
	v := Identity()
	scale := h.MaxAbs()
	for sweep := 0; sweep < 50; sweep++ {
		if offDiagonal(h) <= 1e-17*scale {
			break
		}
		for _, pq := range [3][2]int{{0, 1}, {0, 2}, {1, 2}} {
			p, q := pq[0], pq[1]
			z := h[3*p+q]
			r := cmplx.Abs(z)
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
			g := rotation(p, q, complex(c, 0), complex(s, 0), complex(-s, 0)*ph, complex(c, 0)*ph)
			h = g.AdjMul(h).Mul(g)
			h[3*p+q], h[3*q+p] = 0, 0
			v = v.Mul(g)
		}
	}
	return v
}

// schur2 returns the rotation in rows/columns p, q whose first column is an
// eigenvector of the 2×2 block [[m_pp, m_pq], [m_qp, m_qq]]: it zeroes m_qp,
// and for a normal block also m_pq. ok is false when the block is already
// diagonal or a multiple of the identity to rounding.
func schur2(m Matrix, p, q int, scale float64) (g Matrix, ok bool) {
	beta, gamma := m[3*p+q], m[3*q+p]
	if cmplx.Abs(beta) <= 1e-16*scale && cmplx.Abs(gamma) <= 1e-16*scale {
		return g, false
	}
	alpha := (m[3*p+p] - m[3*q+q]) / 2
	mu := cmplx.Sqrt(alpha*alpha + beta*gamma)
	if cmplx.Abs(alpha-mu) > cmplx.Abs(alpha+mu) {
		mu = -mu
	}
	// (α + μ, γ) solves the second row of (B − (t + μ)) x = 0.
	x0, x1 := alpha+mu, gamma
	n := math.Hypot(cmplx.Abs(x0), cmplx.Abs(x1))
	if n <= 1e-300 {
		return g, false
	}
	x0, x1 = x0/complex(n, 0), x1/complex(n, 0)
	return rotation(p, q, x0, -cmplx.Conj(x1), x1, cmplx.Conj(x0)), true
}
