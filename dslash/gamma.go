package dslash

import "fmt"

// Every γ_μ here has the chiral block form
//
//	γ_μ = [[0, A_μ], [A_μ†, 0]]
//
// with A_μ a unitary (Ns/2)×(Ns/2) monomial matrix (one non-zero entry per row,
// a phase ±1 or ±i), and γ5 = diag(1, …, 1, −1, …, −1).
//
//	2D (Ns = 2):  γ_0 = σ_x  (A_0 = 1),   γ_1 = σ_y  (A_1 = −i),   γ5 = σ_z.
//	4D (Ns = 4):  γ_0 = [[0, 1], [1, 0]]                (A_0 = 1, time)
//	              γ_k = [[0, −iσ_k], [iσ_k, 0]], k = 1, 2, 3 (A_k = −iσ_k)
//	              γ5 = diag(1, 1, −1, −1) = −γ_0γ_1γ_2γ_3... (tested: see TestGammaAlgebra)
//
// The projector (1 + sγ_μ), s = ±1, has rank Ns/2: with the half spinor
// h = ψ_up + s A_μ ψ_dn,
//
//	(1 + sγ_μ)ψ = (h, s A_μ† h).
//
// The Wilson hop sends and multiplies h only (half the colour vectors).

// monomial is a half×half monomial matrix: row i has entry phase[i] in column col[i].
type monomial struct {
	col   [2]int
	phase [2]complex128
}

// spinBasis holds the γ matrices of one dimension.
type spinBasis struct {
	nd, ns, half int
	a            [4]monomial // A_μ
}

func basisFor(nd int) (*spinBasis, error) {
	switch nd {
	case 2:
		return &spinBasis{nd: 2, ns: 2, half: 1, a: [4]monomial{
			{col: [2]int{0}, phase: [2]complex128{1}},   // σ_x
			{col: [2]int{0}, phase: [2]complex128{-1i}}, // σ_y
		}}, nil
	case 4:
		return &spinBasis{nd: 4, ns: 4, half: 2, a: [4]monomial{
			{col: [2]int{0, 1}, phase: [2]complex128{1, 1}},     // 1
			{col: [2]int{1, 0}, phase: [2]complex128{-1i, -1i}}, // −iσ_x
			{col: [2]int{1, 0}, phase: [2]complex128{-1, 1}},    // −iσ_y
			{col: [2]int{0, 1}, phase: [2]complex128{-1i, 1i}},  // −iσ_z
		}}, nil
	}
	return nil, fmt.Errorf("dslash: Wilson fermions are defined here in 2 and 4 dimensions, not %d", nd)
}

// gammaDense returns γ_μ as a dense ns×ns row-major matrix (for references
// and tests).
func (b *spinBasis) gammaDense(mu int) []complex128 {
	g := make([]complex128, b.ns*b.ns)
	a := b.a[mu]
	for i := 0; i < b.half; i++ {
		j := a.col[i]
		g[i*b.ns+b.half+j] = a.phase[i]                                     // upper-right A
		g[(b.half+j)*b.ns+i] = complex(real(a.phase[i]), -imag(a.phase[i])) // lower-left A†
	}
	return g
}

// gamma5Sign is γ5 on spin component a: +1 upper, −1 lower.
func (b *spinBasis) gamma5Sign(a int) float64 {
	if a < b.half {
		return 1
	}
	return -1
}
