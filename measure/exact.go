package measure

import (
	"fmt"
	"math"
)

// besselI returns I_n(x) for n ≥ 0 by its power series
// Σ_k (x/2)^{2k+n} / (k! (k+n)!), to full precision for the moderate x of
// lattice couplings (x ≲ 50).
func besselI(n int, x float64) float64 {
	half := x / 2
	term := 1.0
	for k := 1; k <= n; k++ {
		term *= half / float64(k)
	}
	sum := term
	for k := 1; k < 1000; k++ {
		term *= half * half / (float64(k) * float64(k+n))
		sum += term
		if term < 1e-17*sum {
			break
		}
	}
	return sum
}

// U1Plaquette is the exact ⟨cos θ_P⟩ of 2D U(1) pure gauge theory with the
// action −β Σ cos θ_P on a periodic lattice of V plaquettes (sites):
//
//	⟨cos θ_P⟩ = Σ_n I_n'(β) I_n(β)^{V−1} / Σ_n I_n(β)^V,   n ∈ ℤ,
//
// from the character expansion Z = Σ_n I_n(β)^V, with I_n' = (I_{n−1} +
// I_{n+1})/2 and I_{−n} = I_n. The sums run until the terms are below
// rounding.
func U1Plaquette(beta float64, v int) (float64, error) {
	if !(beta > 0) || beta > 50 || v < 1 {
		return 0, fmt.Errorf("measure: exact U(1) plaquette needs 0 < β ≤ 50 and V ≥ 1, got β = %g, V = %d", beta, v)
	}
	i0 := besselI(0, beta)
	ratio := func(n int) float64 { return besselI(n, beta) / i0 }
	// Work with t_n = I_n/I_0 ≤ 1 so that the powers do not overflow.
	num := ratio(1) // n = 0: I_0' = I_1
	den := 1.0
	for n := 1; ; n++ {
		tn := ratio(n)
		dn := (ratio(n-1) + ratio(n+1)) / 2
		p := math.Pow(tn, float64(v-1))
		num += 2 * dn * p
		den += 2 * tn * p
		if 2*dn*p < 1e-18*num || n > 200 {
			break
		}
	}
	return num / den, nil
}

// U1LogPartition returns log Z = log Σ_n I_n(β)^V, the partition function
// ∫ Π dU e^{β Σ cos θ_P} of 2D U(1) pure gauge theory on a periodic lattice
// of V plaquettes with normalised Haar measure per link.
func U1LogPartition(beta float64, v int) (float64, error) {
	if !(beta >= 0) || beta > 50 || v < 1 {
		return 0, fmt.Errorf("measure: U(1) partition function needs 0 ≤ β ≤ 50 and V ≥ 1, got β = %g, V = %d", beta, v)
	}
	if beta == 0 {
		return 0, nil
	}
	i0 := besselI(0, beta)
	sum := 1.0
	for n := 1; n < 200; n++ {
		term := 2 * math.Pow(besselI(n, beta)/i0, float64(v))
		sum += term
		if term < 1e-18*sum {
			break
		}
	}
	return float64(v)*math.Log(i0) + math.Log(sum), nil
}
