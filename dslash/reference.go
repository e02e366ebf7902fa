package dslash

import (
	"math/cmplx"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/halo"
)

// Reference is a plain implementation of the Wilson operator, kept for tests:
// whole spinors travel through halo/ with the boundary phase, the spin
// matrices (1 ∓ γ_μ) are applied as dense Ns×Ns matrices, and the link
// U_μ(x−μ̂) is read from the gauge field's own halo. It shares nothing with
// the fast kernel but the γ matrices, which the tests check separately.
type Reference struct {
	u       *gauge.Field
	kappa   float64
	basis   *spinBasis
	zone    *decomp.Zone
	full    *halo.Halo[complex128]
	scratch []complex128
	n       int
}

// NewReference returns the reference operator.
func NewReference(u *gauge.Field, kappa float64) (*Reference, error) {
	sp := u.Space()
	basis, err := basisFor(sp.Nd())
	if err != nil {
		return nil, err
	}
	zone, err := sp.Layout().NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
	if err != nil {
		return nil, err
	}
	n := basis.ns * sp.Nc()
	full, err := halo.New[complex128](sp.Comm(), zone, n, HaloPhases(sp.Nd()))
	if err != nil {
		return nil, err
	}
	return &Reference{u: u, kappa: kappa, basis: basis, zone: zone, full: full, scratch: make([]complex128, zone.Len()*n), n: n}, nil
}

// Close releases the halo exchange.
func (r *Reference) Close() { r.full.Close() }

// M sets out = D in; Mdag sets out = D† in (full vectors).
func (r *Reference) M(out, in []complex128)    { r.apply(out, in, false) }
func (r *Reference) Mdag(out, in []complex128) { r.apply(out, in, true) }

func (r *Reference) apply(out, in []complex128, dag bool) {
	sp := r.u.Space()
	nc, ns, n, nd := sp.Nc(), r.basis.ns, r.n, sp.Nd()
	copy(r.scratch, in)
	r.full.Exchange(r.scratch, decomp.All)
	r.u.Exchange()
	gz := sp.Zone()
	// (1 + sγ) as dense matrices: forward s = −1 (D) or +1 (D†).
	sF := -1.0
	if dag {
		sF = 1
	}
	proj := func(mu int, s float64) []complex128 {
		g := r.basis.gammaDense(mu)
		for i := range g {
			g[i] *= complex(s, 0)
		}
		for a := 0; a < ns; a++ {
			g[a*ns+a] += 1
		}
		return g
	}
	tmp := make([]complex128, n)
	for y := 0; y < sp.Layout().Volume(); y++ {
		acc := make([]complex128, n)
		for mu := 0; mu < nd; mu++ {
			for _, hop := range []struct {
				nbr  int
				link []complex128
				adj  bool
				s    float64
			}{
				{int(r.zone.Up(mu)[y]), r.u.Link(y, mu), false, sF},
				{int(r.zone.Dn(mu)[y]), r.u.Link(int(gz.Dn(mu)[y]), mu), true, -sF},
			} {
				psi := r.scratch[hop.nbr*n : (hop.nbr+1)*n]
				// colour: tmp_{a,i} = Σ_j U_ij ψ_{a,j} (or U†)
				for a := 0; a < ns; a++ {
					for i := 0; i < nc; i++ {
						var s complex128
						for j := 0; j < nc; j++ {
							if hop.adj {
								s += cmplx.Conj(hop.link[j*nc+i]) * psi[a*nc+j]
							} else {
								s += hop.link[i*nc+j] * psi[a*nc+j]
							}
						}
						tmp[a*nc+i] = s
					}
				}
				p := proj(mu, hop.s)
				for a := 0; a < ns; a++ {
					for b := 0; b < ns; b++ {
						for i := 0; i < nc; i++ {
							acc[a*nc+i] += p[a*ns+b] * tmp[b*nc+i]
						}
					}
				}
			}
		}
		for i := 0; i < n; i++ {
			out[y*n+i] = in[y*n+i] - complex(r.kappa, 0)*acc[i]
		}
	}
}
