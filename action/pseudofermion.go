package action

import (
	"fmt"
	"math"
	"strconv"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/field"
	"pfmpi/gauge"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
)

// Fermions describes the pseudofermion monomials of Nf = 2 Wilson fermions.
type Fermions struct {
	EvenOdd bool      // A = D_sc on the even sites instead of D
	Shifts  []float64 // Hasenbusch shifts μ_1 < … < μ_N (Eq. 38); none: one monomial
	// Regulator μ₀ ≥ 0 replaces M by M + μ₀ in every monomial (the paper
	// trains its flows on DD† + μ₀ with μ₀ = 10⁻⁵ and samples without).
	Regulator float64
	Solves    Solves
}

// Pseudofermion is one monomial S = c₀ φ†φ + c₁ φ†(M + σ)⁻¹φ with its
// pseudofermion Phi (see the package documentation).
type Pseudofermion struct {
	name       string
	comm       mpi.Comm
	op         dslash.Operator
	a          dslash.Matrix // D or D_sc
	eo         bool
	c0, c1     float64
	sigma      float64 // shift of the kernel
	ratio      bool
	lo, hi     float64 // ratio: heat bath A_lo A_hi† (M + hi)⁻¹; last: A_σ
	kernel     *dslash.Normal
	upper      *dslash.Normal // M + hi (ratio heat bath)
	cg         *solver.CG
	solves     Solves
	iterations int
	n          int

	// Phi is the pseudofermion: an even vector with even/odd
	// preconditioning, a full vector without.
	Phi []complex128

	x, y, t, eta, g5 []complex128 // n values
	chi, psi         []complex128 // full vectors (even/odd force)
}

// NewPseudofermions returns the monomials of Eq. (38) on op, whose links may
// change between calls: N ratio monomials "pf0" … and the last one, or the
// single monomial "pf" without shifts. comm is op's domain communicator.
func NewPseudofermions(comm mpi.Comm, op dslash.Operator, spec Fermions) ([]*Pseudofermion, error) {
	prev := 0.0
	for i, mu := range spec.Shifts {
		if !(mu > prev) || math.IsInf(mu, 0) {
			return nil, fmt.Errorf("action: Hasenbusch shifts must increase from 0: μ_%d = %g after %g", i+1, mu, prev)
		}
		prev = mu
	}
	if spec.Solves.MD <= 0 || spec.Solves.Action <= 0 || spec.Solves.MaxIter <= 0 {
		return nil, fmt.Errorf("action: solver tolerances %+v must be positive", spec.Solves)
	}
	ly := op.Layout()
	var a dslash.Matrix = op
	n := ly.Volume() * op.PerSite()
	if spec.EvenOdd {
		for mu, l := range ly.Lattice().Dims() {
			if l%2 != 0 {
				return nil, fmt.Errorf("action: even/odd preconditioning needs even extents, direction %d has %d", mu, l)
			}
		}
		s := dslash.NewSchur(op)
		a, n = s, s.Len()
	}
	if spec.Regulator < 0 {
		return nil, fmt.Errorf("action: the regulator μ₀ = %g must not be negative", spec.Regulator)
	}
	cg := solver.NewCG(comm, n)
	mus := append([]float64{0}, spec.Shifts...)
	for i := range mus {
		mus[i] += spec.Regulator
	}
	var out []*Pseudofermion
	for i := range mus {
		p := &Pseudofermion{
			comm: comm, op: op, a: a, eo: spec.EvenOdd, cg: cg, solves: spec.Solves, n: n,
			Phi: make([]complex128, n),
			x:   make([]complex128, n), y: make([]complex128, n), t: make([]complex128, n), eta: make([]complex128, n), g5: make([]complex128, n),
		}
		if i < len(mus)-1 {
			p.ratio = true
			p.c0, p.c1, p.sigma = 1, mus[i+1]-mus[i], mus[i]
			p.lo, p.hi = mus[i], mus[i+1]
			p.upper = dslash.NewNormal(a, p.hi, n)
		} else {
			p.c0, p.c1, p.sigma = 0, 1, mus[i]
			p.lo = mus[i]
		}
		p.kernel = dslash.NewNormal(a, p.sigma, n)
		if spec.EvenOdd {
			p.chi = make([]complex128, ly.Volume()*op.PerSite())
			p.psi = make([]complex128, len(p.chi))
		}
		p.name = "pf"
		if len(mus) > 1 {
			p.name = "pf" + strconv.Itoa(i)
		}
		out = append(out, p)
	}
	return out, nil
}

func (p *Pseudofermion) Name() string { return p.name }

// Len is the number of local values of the pseudofermion.
func (p *Pseudofermion) Len() int { return p.n }

// parity is the sites the pseudofermion lives on.
func (p *Pseudofermion) parity() decomp.Parity {
	if p.eo {
		return decomp.Even
	}
	return decomp.All
}

// EvenOdd reports whether the pseudofermion lives on the even sites.
func (p *Pseudofermion) EvenOdd() bool { return p.eo }

// Iterations is the number of CG iterations spent so far.
func (p *Pseudofermion) Iterations() int { return p.iterations }

// Coefficients returns (c₀, c₁, σ) of S = c₀ φ†φ + c₁ φ†(M + σ)⁻¹φ.
func (p *Pseudofermion) Coefficients() (c0, c1, sigma float64) { return p.c0, p.c1, p.sigma }

// String is the monomial as a formula.
func (p *Pseudofermion) String() string {
	m := "DD†"
	if p.eo {
		m = "DscDsc†"
	}
	if p.ratio {
		inner := m
		if p.lo != 0 {
			inner = fmt.Sprintf("%s + %.10g", m, p.lo)
		}
		return fmt.Sprintf("%s: φ†(1 + (%.10g − %.10g)(%s)⁻¹)φ", p.name, p.hi, p.lo, inner)
	}
	if p.sigma == 0 {
		return fmt.Sprintf("%s: φ†(%s)⁻¹φ", p.name, m)
	}
	return fmt.Sprintf("%s: φ†(%s + %.10g)⁻¹φ", p.name, m, p.sigma)
}

// Condition returns the condition number of the kernel K given the
// extreme eigenvalues of M: (λmax + σ)/(λmin + σ) for (M + σ)⁻¹, and for a
// ratio, whose eigenvalues (λ + μ_{i+1})/(λ + μ_i) fall with λ,
// [(λmin + μ_{i+1})/(λmin + μ_i)] / [(λmax + μ_{i+1})/(λmax + μ_i)].
func (p *Pseudofermion) Condition(lmin, lmax float64) float64 {
	if p.ratio {
		return ((lmin + p.hi) / (lmin + p.lo)) / ((lmax + p.hi) / (lmax + p.lo))
	}
	return (lmax + p.sigma) / (lmin + p.sigma)
}

func (p *Pseudofermion) solve(m *dslash.Normal, x, b []complex128, tol float64) error {
	clear(x)
	res, err := p.cg.Solve(m, x, b, tol, p.solves.MaxIter)
	p.iterations += res.Iterations
	if err != nil {
		return fmt.Errorf("action: %s: %w", p.name, err)
	}
	return nil
}

// applyShifted sets out = (A + i√μ γ5) in, or (A† − i√μ γ5) in with dag.
func (p *Pseudofermion) applyShifted(out, in []complex128, mu float64, dag bool) {
	if dag {
		p.a.Mdag(out, in)
	} else {
		p.a.M(out, in)
	}
	if mu == 0 {
		return
	}
	copy(p.g5, in)
	p.op.Gamma5(p.g5)
	c := complex(0, math.Sqrt(mu))
	if dag {
		c = -c
	}
	for i := range out {
		out[i] += c * p.g5[i]
	}
}

// Draw sets phi to an exact sample of exp(−S) from eta, a complex normal
// vector of density exp(−η†η): S(phi) = η†η. phi and eta must not alias.
func (p *Pseudofermion) Draw(phi, eta []complex128) error {
	p.checkLen("Draw φ", phi)
	p.checkLen("Draw η", eta)
	if !p.ratio {
		p.applyShifted(phi, eta, p.lo, false)
		return nil
	}
	if err := p.solve(p.upper, p.t, eta, p.solves.Action); err != nil {
		return err
	}
	p.applyShifted(p.y, p.t, p.hi, true)
	p.applyShifted(phi, p.y, p.lo, false)
	return nil
}

// Refresh draws Phi from exp(−S) with η from key, one stream per global
// site, so that the draw does not depend on the process grid.
func (p *Pseudofermion) Refresh(key rng.Key) error {
	field.FillComplexNormalSites(p.eta, p.op.Layout(), p.parity(), p.op.PerSite(), key)
	return p.Draw(p.Phi, p.eta)
}

// ActionOf returns S(φ) at the current links.
func (p *Pseudofermion) ActionOf(phi []complex128) (float64, error) {
	p.checkLen("ActionOf φ", phi)
	if err := p.solve(p.kernel, p.x, phi, p.solves.Action); err != nil {
		return 0, err
	}
	s := p.c1 * real(solver.Dot(p.comm, phi, p.x))
	if p.c0 != 0 {
		s += p.c0 * solver.Norm2(p.comm, phi)
	}
	return s, nil
}

// Action returns S(Phi).
func (p *Pseudofermion) Action() (float64, error) { return p.ActionOf(p.Phi) }

// Kernel sets out = Kφ = c₀φ + c₁(M + σ)⁻¹φ, the gradient of S with respect
// to φ†.
func (p *Pseudofermion) Kernel(out, phi []complex128) error {
	p.checkLen("Kernel out", out)
	p.checkLen("Kernel φ", phi)
	if err := p.solve(p.kernel, p.x, phi, p.solves.Action); err != nil {
		return err
	}
	c0, c1 := complex(p.c0, 0), complex(p.c1, 0)
	for i := range out {
		out[i] = c0*phi[i] + c1*p.x[i]
	}
	return nil
}

// ForceOf adds coeff·∂S(φ)/∂x_a to f.
func (p *Pseudofermion) ForceOf(f *gauge.Algebra, phi []complex128, coeff float64) error {
	p.checkLen("ForceOf φ", phi)
	if err := p.solve(p.kernel, p.x, phi, p.solves.MD); err != nil {
		return err
	}
	p.forceFromX(f, coeff)
	return nil
}

// Derivatives returns S(φ), sets kphi = Kφ (S = φ†Kφ, so the gradient with
// respect to Re φ + i Im φ is 2Kφ) and adds coeff·∂S/∂x_a to f, all from one
// solve at the action tolerance. It is what a flow trained on S needs.
func (p *Pseudofermion) Derivatives(phi, kphi []complex128, f *gauge.Algebra, coeff float64) (float64, error) {
	p.checkLen("Derivatives Kφ", kphi)
	s, err := p.ActionOf(phi) // leaves X = (M + σ)⁻¹φ in p.x
	if err != nil {
		return 0, err
	}
	c0, c1 := complex(p.c0, 0), complex(p.c1, 0)
	for i := range kphi {
		kphi[i] = c0*phi[i] + c1*p.x[i]
	}
	if f != nil && coeff != 0 {
		p.forceFromX(f, coeff)
	}
	return s, nil
}

// forceFromX adds coeff·∂S/∂x_a to f given X = (M + σ)⁻¹φ in p.x.
func (p *Pseudofermion) forceFromX(f *gauge.Algebra, coeff float64) {
	p.a.Mdag(p.y, p.x)
	if !p.eo {
		p.op.MDeriv(f, p.x, p.y, -2*p.c1*coeff)
		return
	}
	ne := p.n
	copy(p.chi[:ne], p.x)
	p.op.Moe(p.chi[ne:], p.x, true)
	copy(p.psi[:ne], p.y)
	p.op.Moe(p.psi[ne:], p.y, false)
	p.op.MDeriv(f, p.chi, p.psi, 2*p.c1*coeff)
}

// AddForce adds ∂S(Phi)/∂x_a to f.
func (p *Pseudofermion) AddForce(f *gauge.Algebra) error { return p.ForceOf(f, p.Phi, 1) }

func (p *Pseudofermion) checkLen(what string, x []complex128) {
	if len(x) != p.n {
		panic(fmt.Sprintf("action: %s %s has %d values, want %d", p.name, what, len(x), p.n))
	}
}
