package measure

import (
	"fmt"
	"math"
	"math/cmplx"
)

// SU3Plaquette is the exact ⟨(1/3) Re Tr P⟩ of 2D SU(3) pure gauge theory
// with the Wilson action −(β/3) Σ Re Tr P on a periodic lattice of V
// plaquettes (V = 0: infinite volume, one independent plaquette).
//
// On the torus Z = Σ_r (c_r/d_r)^V over the irreducible representations r
// = (p, q) of dimension d_r, c_r = ∫dU χ_r(U) e^{(β/3) Re Tr U}, so
//
//	⟨P⟩ = Σ_r (c_r/d_r)^{V−1} c′_r/d_r / Σ_r (c_r/d_r)^V,   c′_r = ∫dU χ_r (1/3)Re Tr U e^{…}.
//
// The class-function integrals use the Weyl integration formula,
// ∫dU f = (1/(6·4π²)) ∫dθ₁dθ₂ |Δ(e^{iθ})|² f(θ₁, θ₂, −θ₁−θ₂), on an n × n
// trapezoid grid (exponentially accurate for these periodic integrands) and
// the Weyl character formula χ_λ = det[e^{i(λ_j+3−j)θ_k}]/Δ with λ = (p+q,
// q, 0); representations with p + q ≤ 12 are kept (their weights fall as
// (c_r/(d_r c_0))^V; the largest neglected one is reported by
// SU3PlaquetteCorrection).
func SU3Plaquette(beta float64, v int) (float64, error) {
	reps, err := su3Characters(beta)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return reps[0].cp / reps[0].c, nil
	}
	// Normalise by the trivial representation to avoid overflow.
	num, den := 0.0, 0.0
	for _, r := range reps {
		x := r.c / r.d / reps[0].c
		if x <= 0 {
			// A negative ratio enters with its sign; |x|^V is what matters.
			num += math.Pow(x, float64(v-1)) * r.cp / r.d / reps[0].c
			den += math.Pow(x, float64(v))
			continue
		}
		num += math.Exp(float64(v-1)*math.Log(x)) * r.cp / r.d / reps[0].c
		den += math.Exp(float64(v) * math.Log(x))
	}
	return num / den, nil
}

// SU3PlaquetteCorrection returns max over non-trivial representations of
// |c_r/(d_r c_0)|^V: the relative size of the finite-volume corrections to
// the infinite-volume plaquette on a torus of V plaquettes.
func SU3PlaquetteCorrection(beta float64, v int) (float64, error) {
	reps, err := su3Characters(beta)
	if err != nil {
		return 0, err
	}
	worst := 0.0
	for _, r := range reps[1:] {
		worst = max(worst, math.Pow(math.Abs(r.c/r.d/reps[0].c), float64(v)))
	}
	return worst, nil
}

type su3Rep struct {
	p, q     int
	d, c, cp float64
}

// su3Characters returns c_r and c′_r for the representations with p + q ≤
// 12, the trivial one first.
func su3Characters(beta float64) ([]su3Rep, error) {
	if beta < 0 || math.IsNaN(beta) || beta > 60 {
		return nil, fmt.Errorf("measure: SU(3) plaquette for β = %g: need 0 ≤ β ≤ 60", beta)
	}
	const n = 192
	const maxRep = 12
	var reps []su3Rep
	for s := 0; s <= maxRep; s++ {
		for q := 0; q <= s; q++ {
			p := s - q
			reps = append(reps, su3Rep{p: p, q: q, d: float64((p+1)*(q+1)*(p+q+2)) / 2})
		}
	}
	h := 2 * math.Pi / n
	var th [3]float64
	var z [3]complex128
	var pw [3][maxRep + 3]complex128
	for i := range n {
		th[0] = -math.Pi + float64(i)*h
		for j := range n {
			th[1] = -math.Pi + float64(j)*h
			th[2] = -th[0] - th[1]
			re := 0.0
			for k := range 3 {
				z[k] = cmplx.Exp(complex(0, th[k]))
				re += math.Cos(th[k])
			}
			// Integer powers z_k^e, e ≤ maxRep + 2.
			for k := range 3 {
				pw[k][0] = 1
				for e := 1; e < len(pw[k]); e++ {
					pw[k][e] = pw[k][e-1] * z[k]
				}
			}
			// Δ = Π_{j<k} (z_j − z_k), the Weyl denominator up to a phase.
			delta := (z[0] - z[1]) * (z[0] - z[2]) * (z[1] - z[2])
			w := math.Exp(beta / 3 * re)
			for ri := range reps {
				r := &reps[ri]
				l := [3]int{r.p + r.q + 2, r.q + 1, 0}
				// det[z_k^{l_j}] for j, k = 0, 1, 2.
				var m [3][3]complex128
				for a := range 3 {
					for b := range 3 {
						m[a][b] = pw[b][l[a]]
					}
				}
				num := m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) - m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) + m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
				// χ |Δ|² = num · conj(Δ) (real up to rounding).
				chiW := real(num * cmplx.Conj(delta))
				r.c += chiW * w
				r.cp += chiW * w * re / 3
			}
		}
	}
	norm := h * h / (6 * 4 * math.Pi * math.Pi)
	for ri := range reps {
		reps[ri].c *= norm
		reps[ri].cp *= norm
	}
	return reps, nil
}

// SU3LogPartition returns log Z = log Σ_r (c_r/d_r)^V of 2D SU(3) pure
// gauge theory on a torus of V plaquettes with normalised Haar measure per
// link (V log c_0 up to the weights of SU3PlaquetteCorrection).
func SU3LogPartition(beta float64, v int) (float64, error) {
	reps, err := su3Characters(beta)
	if err != nil {
		return 0, err
	}
	if v < 1 {
		return 0, fmt.Errorf("measure: SU(3) partition function needs V ≥ 1, got %d", v)
	}
	sum := 0.0
	for _, r := range reps {
		x := r.c / r.d / reps[0].c
		sum += math.Pow(x, float64(v))
	}
	return float64(v)*math.Log(reps[0].c) + math.Log(sum), nil
}
