package flow

import (
	"fmt"

	"pfmpi/action"
	"pfmpi/gauge"
	"pfmpi/nnlayers"
)

// Target is a distribution p(U) ∝ e^{−S(U)} of 2D U(1) gauge fields, S the
// sum of monomials (package action) bound to one gauge field of the domain.
// It evaluates the members of a batch one at a time on that field.
type Target struct {
	u         *gauge.Field
	monomials []action.Monomial
	force     *gauge.Algebra
	angles    []float64
}

// NewTarget returns the target S = Σ monomials, all bound to u.
func NewTarget(u *gauge.Field, monomials ...action.Monomial) (*Target, error) {
	if u.Space().Nc() != 1 || u.Space().Nd() != 2 {
		return nil, fmt.Errorf("flow: the U(1) target needs a 2D U(1) field")
	}
	return &Target{u: u, monomials: monomials, force: u.Space().NewAlgebra(),
		angles: make([]float64, u.Space().Layout().Volume()*2)}, nil
}

// Field is the gauge field the target evaluates on (after Evaluate: member b).
func (t *Target) Field() *gauge.Field { return t.u }

// Load sets the field to member b of theta (V × B × 2 angles).
func (t *Target) Load(theta *nnlayers.Tensor, b int) {
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
	// U(1): the algebra coordinate x of X = ix moves θ by x.
	for site := 0; site < theta.V; site++ {
		for mu := range 2 {
			theta.Grad[theta.At(site, b, mu)] += scale * imag(t.force.At(site, mu)[0])
		}
	}
	return s, nil
}
