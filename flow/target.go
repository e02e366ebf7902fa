package flow

import (
	"fmt"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/nnlayers"
	"pfmpi/su3"
)

// Target is a distribution p(U) ∝ e^{−S(U)} of 2D U(1) or SU(3) gauge fields, S the
// sum of monomials (package action) bound to one gauge field of the domain.
// It evaluates the members of a batch one at a time on that field.
type Target struct {
	u         *gauge.Field
	monomials []action.Monomial
	force     *gauge.Algebra
	angles    []float64
	pf        *Pseudofermions
	marginal  action.Monomial
}

// NewTarget returns the target S = Σ monomials, all bound to u.
func NewTarget(u *gauge.Field, monomials ...action.Monomial) (*Target, error) {
	if sp := u.Space(); sp.Nd() != 2 {
		return nil, fmt.Errorf("flow: targets are 2D fields, not %dD %s", sp.Nd(), sp.Group().Title())
	}
	return &Target{u: u, monomials: monomials, force: u.Space().NewAlgebra(),
		angles: make([]float64, u.Space().Layout().Volume()*2)}, nil
}

// Field is the gauge field the target evaluates on (after Evaluate: member b).
func (t *Target) Field() *gauge.Field { return t.u }

// Load sets the field to member b of the flow's output: V × B × 2 angles
// for U(1), a links tensor (V × B × 36) for SU(3).
func (t *Target) Load(theta *nnlayers.Tensor, b int) {
	if !t.u.Space().Group().Abelian() {
		for s := 0; s < theta.V; s++ {
			base := theta.At(s, b, 0)
			for mu := range t.u.Space().Nd() {
				m := su3.FromReals(theta.Data[base+su3.Reals*mu:])
				copy(t.u.Link(s, mu), m[:])
			}
		}
		return
	}
	for s := 0; s < theta.V; s++ {
		t.angles[2*s] = theta.Data[theta.At(s, b, 0)]
		t.angles[2*s+1] = theta.Data[theta.At(s, b, 1)]
	}
	t.u.SetAngles(t.angles)
}

// Evaluate loads member b and returns S (collective over the domain). With
// a gradient buffer on theta it adds scale·∂S/∂θ to theta.Grad of member b.
func (t *Target) Evaluate(theta *nnlayers.Tensor, b int, scale float64) (float64, error) {
	t.Load(theta, b)
	s := 0.0
	for _, m := range t.monomials {
		v, err := m.Action()
		if err != nil {
			return 0, err
		}
		s += v
	}
	if theta.Grad == nil || scale == 0 {
		return s, nil
	}
	t.force.Zero()
	for _, m := range t.monomials {
		if err := m.AddForce(t.force); err != nil {
			return 0, err
		}
	}
	t.addForce(theta, b, scale)
	return s, nil
}

// addForce adds scale·(the force in t.force) to theta.Grad of member b.
func (t *Target) addForce(theta *nnlayers.Tensor, b int, scale float64) {
	if !t.u.Space().Group().Abelian() {
		// SU(3): with F = Σ_a F_a T_a, F_a = ∂S/∂x_a for U → e^{x_a T_a}U,
		// the complex-matrix gradient G = 2FU satisfies Re Tr(G† T_a U) = F_a.
		var f, u su3.Matrix
		for s := 0; s < theta.V; s++ {
			base := theta.At(s, b, 0)
			for mu := range t.u.Space().Nd() {
				copy(f[:], t.force.At(s, mu))
				copy(u[:], t.u.Link(s, mu))
				g := f.Mul(u)
				g.AddReals(theta.Grad[base+su3.Reals*mu:], 2*scale)
			}
		}
		return
	}
	// U(1): the algebra coordinate x of X = ix moves θ by x.
	nd := t.u.Space().Nd()
	for site := 0; site < theta.V; site++ {
		for mu := range nd {
			theta.Grad[theta.At(site, b, mu)] += scale * imag(t.force.At(site, mu)[0])
		}
	}
}

// Pseudofermions are the pseudofermion monomials of a joint target
// p(U, φ_1 … φ_N) ∝ e^{−S_g(U) − Σ_i S_i(U, φ_i)} (Eqs. 18–19, 37–40),
// bound to the target's gauge field: Train (with the training regulator)
// for the loss, Sample (without) for weights and observables.
type Pseudofermions struct {
	Train, Sample []*action.Pseudofermion
	vec, kvec     []complex128
	sites         int // sites the pseudofermion lives on (the first of the layout)
	perSite       int
}

// SetPseudofermions makes t a joint target with the given monomials
// (len(train) == len(sample), built on an operator on t's field).
func (t *Target) SetPseudofermions(train, sample []*action.Pseudofermion) error {
	if len(train) != len(sample) || len(train) == 0 {
		return fmt.Errorf("flow: %d training and %d sampling pseudofermion monomials", len(train), len(sample))
	}
	ly := t.u.Space().Layout()
	sites := ly.Volume()
	if train[0].EvenOdd() {
		lo, hi := ly.Sites(decomp.Even)
		if lo != 0 {
			return fmt.Errorf("flow: even sites do not come first in the layout")
		}
		sites = hi
	}
	n := train[0].Len()
	if n%sites != 0 {
		return fmt.Errorf("flow: a pseudofermion of %d values on %d sites", n, sites)
	}
	t.pf = &Pseudofermions{Train: train, Sample: sample, vec: make([]complex128, n), kvec: make([]complex128, n), sites: sites, perSite: n / sites}
	return nil
}

// Monomials is the number of pseudofermion monomials (0: a gauge target).
func (t *Target) Monomials() int {
	if t.pf == nil {
		return 0
	}
	return len(t.pf.Train)
}

// SetMarginal sets the monomial that turns the gauge action into the
// marginal action S_g − log det M (the exact determinant; small lattices),
// evaluated by [Target.Marginal] for the marginal ESS.
func (t *Target) SetMarginal(m action.Monomial) { t.marginal = m }

// Marginal returns the marginal monomial's action at the loaded field
// (ok false without one).
func (t *Target) Marginal() (float64, bool, error) {
	if t.marginal == nil {
		return 0, false, nil
	}
	s, err := t.marginal.Action()
	return s, true, err
}

// PseudofermionString is monomial i as a formula.
func (t *Target) PseudofermionString(i int, train bool) string {
	if train {
		return t.pf.Train[i].String()
	}
	return t.pf.Sample[i].String()
}

// Pseudofermion returns S_i(φ_b) of monomial i at the loaded field (the
// training monomial with train, else the sampling one). With scale ≠ 0 it
// adds scale·∂S/∂φ (2Kφ) to phi.Grad and scale·∂S/∂θ to theta.Grad of
// member b.
func (t *Target) Pseudofermion(i int, train bool, phi, theta *nnlayers.Tensor, b int, scale float64) (float64, error) {
	pf := t.pf
	m := pf.Sample[i]
	if train {
		m = pf.Train[i]
	}
	per := pf.perSite
	for s := 0; s < pf.sites; s++ {
		base := phi.At(s, b, 0)
		for c := range per {
			pf.vec[s*per+c] = complex(phi.Data[base+2*c], phi.Data[base+2*c+1])
		}
	}
	if scale == 0 || phi.Grad == nil {
		return m.ActionOf(pf.vec)
	}
	t.force.Zero()
	s, err := m.Derivatives(pf.vec, pf.kvec, t.force, 1)
	if err != nil {
		return 0, err
	}
	for x := 0; x < pf.sites; x++ {
		base := phi.At(x, b, 0)
		for c := range per {
			z := pf.kvec[x*per+c]
			phi.Grad[base+2*c] += 2 * scale * real(z)
			phi.Grad[base+2*c+1] += 2 * scale * imag(z)
		}
	}
	if theta.Grad != nil {
		t.addForce(theta, b, scale)
	}
	return s, nil
}
