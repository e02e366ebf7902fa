package action

import (
	"pfmpi/gauge"
	"pfmpi/rng"
)

// Monomial is one term of the action, evaluated at the current links of the
// gauge field it was built on. All methods are collective over the domain
// communicator.
type Monomial interface {
	// Name identifies the monomial in logs ("gauge", "pf", "pf0", …).
	Name() string
	// Refresh draws the monomial's auxiliary fields from exp(−S) at the
	// current links (nothing for the gauge action).
	Refresh(key rng.Key) error
	// Action returns S.
	Action() (float64, error)
	// AddForce adds F_a = ∂S/∂x_a to f.
	AddForce(f *gauge.Algebra) error
	// Iterations is the number of solver iterations spent so far.
	Iterations() int
}

// Solves sets the CG tolerances (relative residual |r|/|b|) and the
// iteration limit.
type Solves struct {
	MD      float64 // inside the force
	Action  float64 // action and heat bath
	MaxIter int
}

// DefaultSolves are tolerances for reversible molecular dynamics in double
// precision.
var DefaultSolves = Solves{MD: 1e-10, Action: 1e-12, MaxIter: 100000}

// Gauge is the Wilson gauge action S_g = −(β/Nc) Σ Re Tr P (Eq. 2).
type Gauge struct {
	u    *gauge.Field
	beta float64
	tmp  *gauge.Algebra
}

// NewGauge returns the gauge monomial on u.
func NewGauge(u *gauge.Field, beta float64) *Gauge {
	return &Gauge{u: u, beta: beta, tmp: u.Space().NewAlgebra()}
}

func (g *Gauge) Name() string             { return "gauge" }
func (g *Gauge) Refresh(rng.Key) error    { return nil }
func (g *Gauge) Action() (float64, error) { return g.u.Action(g.beta), nil }
func (g *Gauge) Iterations() int          { return 0 }
func (g *Gauge) AddForce(f *gauge.Algebra) error {
	g.u.Force(g.beta, g.tmp)
	f.Add(1, g.tmp)
	return nil
}
