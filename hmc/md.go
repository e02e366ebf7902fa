package hmc

import (
	"fmt"

	"pfmpi/action"
	"pfmpi/gauge"
)

// Scheme is a symmetric second-order integrator of one time scale.
type Scheme int

const (
	// Leapfrog: kick ε/2, drift ε, kick ε/2.
	Leapfrog Scheme = iota
	// Omelyan is the second-order minimum-norm scheme (Omelyan, Mryglod
	// and Folk 2003): kick λε, drift ε/2, kick (1−2λ)ε, drift ε/2, kick λε.
	Omelyan
)

// OmelyanLambda is λ of the minimum-norm scheme.
const OmelyanLambda = 0.1931833275037836

// ParseScheme returns the scheme named "leapfrog" or "omelyan".
func ParseScheme(name string) (Scheme, error) {
	switch name {
	case "leapfrog":
		return Leapfrog, nil
	case "omelyan":
		return Omelyan, nil
	}
	return 0, fmt.Errorf("hmc: unknown integrator %q (leapfrog or omelyan)", name)
}

func (s Scheme) String() string {
	if s == Omelyan {
		return "omelyan"
	}
	return "leapfrog"
}

// Level is one time scale: its monomials are kicked Steps times per step of
// the enclosing level (per trajectory for the outermost level).
type Level struct {
	Monomials []action.Monomial
	Steps     int
}

// MD integrates the molecular-dynamics equations dπ/dτ = −F(U),
// dU/dτ = π U on nested time scales (Sexton and Weingarten 1992): level 0
// is the outermost, the links move only at the innermost level. Kicks that
// meet with no drift of the links in between are merged (also across the
// steps of enclosing levels), so that a level evaluates its force once more
// per trajectory than it drifts: n + 1 times for an outermost leapfrog level
// of n steps, 2n + 1 for Omelyan.
type MD struct {
	u       *gauge.Field
	levels  []Level
	scheme  Scheme
	force   *gauge.Algebra
	pending []float64 // accumulated kick of each level, applied before the links move
	p       *gauge.Algebra

	// Forces counts force evaluations per level since the last reset.
	Forces []int
}

// NewMD returns the integrator for u.
func NewMD(u *gauge.Field, levels []Level, scheme Scheme) (*MD, error) {
	if len(levels) == 0 {
		return nil, fmt.Errorf("hmc: no integration levels")
	}
	for i, l := range levels {
		if l.Steps < 1 {
			return nil, fmt.Errorf("hmc: level %d has %d steps; need at least 1", i, l.Steps)
		}
	}
	return &MD{u: u, levels: levels, scheme: scheme, force: u.Space().NewAlgebra(),
		pending: make([]float64, len(levels)), Forces: make([]int, len(levels))}, nil
}

// Levels returns the time scales.
func (md *MD) Levels() []Level { return md.levels }

// Integrate evolves the links and the momenta p over the time tau.
func (md *MD) Integrate(p *gauge.Algebra, tau float64) error {
	md.p = p
	defer func() { md.p = nil }()
	if err := md.level(0, tau); err != nil {
		return err
	}
	return md.flush()
}

func (md *MD) level(l int, tau float64) error {
	n := md.levels[l].Steps
	eps := tau / float64(n)
	for range n {
		var err error
		switch md.scheme {
		case Leapfrog:
			md.pending[l] += eps / 2
			err = md.drift(l, eps)
			md.pending[l] += eps / 2
		case Omelyan:
			md.pending[l] += OmelyanLambda * eps
			if err = md.drift(l, eps/2); err != nil {
				return err
			}
			md.pending[l] += (1 - 2*OmelyanLambda) * eps
			err = md.drift(l, eps/2)
			md.pending[l] += OmelyanLambda * eps
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// drift moves the links by t at level l: the next level integrates over t,
// the innermost applies the pending kicks and moves the links.
func (md *MD) drift(l int, t float64) error {
	if l+1 < len(md.levels) {
		return md.level(l+1, t)
	}
	if err := md.flush(); err != nil {
		return err
	}
	md.u.Update(t, md.p)
	return nil
}

// flush applies every pending kick π → π − c F_level at the current links.
func (md *MD) flush() error {
	for l, c := range md.pending {
		if c == 0 {
			continue
		}
		md.force.Zero()
		for _, m := range md.levels[l].Monomials {
			if err := m.AddForce(md.force); err != nil {
				return err
			}
		}
		md.p.Add(-c, md.force)
		md.pending[l] = 0
		md.Forces[l]++
	}
	return nil
}
