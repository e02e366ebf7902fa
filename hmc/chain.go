package hmc

import (
	"fmt"
	"math"
	"time"

	"pfmpi/action"
	"pfmpi/gauge"
	"pfmpi/rng"
)

// Chain is a Markov chain of HMC trajectories on one gauge field.
type Chain struct {
	u         *gauge.Field
	md        *MD
	monomials []action.Monomial
	tau       float64
	key       rng.Key
	next      int // number of the next trajectory
	p         *gauge.Algebra
	saved     *gauge.Field
	pSaved    *gauge.Algebra
	uEnd      *gauge.Field
}

// Trajectory is the record of one trajectory.
type Trajectory struct {
	Number    int     // 0, 1, … in the order of the chain
	DeltaH    float64 // H(end) − H(start)
	Accepted  bool
	Plaquette float64 // average plaquette after the accept/reject step
	// Iterations is the number of CG iterations per monomial (same order
	// as the chain's monomials), heat bath, forces and actions.
	Iterations []int
	Forces     []int // force evaluations per level
	Seconds    float64
	// Reversibility, when checked: the largest change of a link and of H
	// after integrating forward, flipping the momenta and integrating back.
	Reversibility *Reversibility
}

// Reversibility measures how well the integration is undone by running it
// backwards.
type Reversibility struct {
	MaxLinkChange float64
	DeltaH        float64
}

// NewChain returns a chain on u that integrates md over tau per trajectory
// and draws its random numbers from key: trajectory n uses key.Derive(n)
// only, so that a chain resumed at trajectory n repeats the original bit for
// bit.
func NewChain(u *gauge.Field, md *MD, tau float64, key rng.Key) (*Chain, error) {
	if !(tau > 0) {
		return nil, fmt.Errorf("hmc: trajectory length %g must be positive", tau)
	}
	var ms []action.Monomial
	seen := map[action.Monomial]bool{}
	for _, l := range md.levels {
		for _, m := range l.Monomials {
			if seen[m] {
				return nil, fmt.Errorf("hmc: monomial %s appears on two levels", m.Name())
			}
			seen[m] = true
			ms = append(ms, m)
		}
	}
	sp := u.Space()
	return &Chain{u: u, md: md, monomials: ms, tau: tau, key: key,
		p: sp.NewAlgebra(), pSaved: sp.NewAlgebra(), saved: u.Clone(), uEnd: u.Clone()}, nil
}

// Monomials returns the monomials in the order of Trajectory.Iterations.
func (c *Chain) Monomials() []action.Monomial { return c.monomials }

// Next returns the number of the next trajectory.
func (c *Chain) Next() int { return c.next }

// SetNext sets the number of the next trajectory (when resuming).
func (c *Chain) SetNext(n int) { c.next = n }

// hamiltonian returns ½ π·π + Σ S.
func (c *Chain) hamiltonian() (float64, error) {
	h := 0.5 * c.p.Dot(c.p)
	for _, m := range c.monomials {
		s, err := m.Action()
		if err != nil {
			return 0, err
		}
		h += s
	}
	return h, nil
}

// Run performs one trajectory: momentum and pseudofermion heat bath,
// molecular dynamics, Metropolis accept/reject. With checkReversibility it
// also integrates back from the end point with flipped momenta (twice the
// cost) and reports the change.
func (c *Chain) Run(checkReversibility bool) (Trajectory, error) {
	start := time.Now()
	rec := Trajectory{Number: c.next, Iterations: make([]int, len(c.monomials)), Forces: make([]int, len(c.md.levels))}
	iters0 := make([]int, len(c.monomials))
	for i, m := range c.monomials {
		iters0[i] = m.Iterations()
	}
	clear(c.md.Forces)
	key := c.key.Derive(uint64(c.next))
	c.u.Reunitarize()
	c.p.SetGaussian(key.Derive(0))
	for i, m := range c.monomials {
		if err := m.Refresh(key.Derive(uint64(2 + i))); err != nil {
			return rec, err
		}
	}
	h0, err := c.hamiltonian()
	if err != nil {
		return rec, err
	}
	c.saved.CopyFrom(c.u)
	if err := c.md.Integrate(c.p, c.tau); err != nil {
		return rec, err
	}
	h1, err := c.hamiltonian()
	if err != nil {
		return rec, err
	}
	copy(rec.Forces, c.md.Forces)
	if checkReversibility {
		rev, err := c.reverse(h0)
		if err != nil {
			return rec, err
		}
		rec.Reversibility = &rev
	}
	rec.DeltaH = h1 - h0
	if math.IsNaN(rec.DeltaH) || math.IsInf(rec.DeltaH, 0) {
		return rec, fmt.Errorf("hmc: trajectory %d: ΔH = %v: the molecular dynamics diverged; use more integration steps", c.next, rec.DeltaH)
	}
	// Every rank holds the same ΔH (reductions are replicated) and draws
	// the same uniform number, so the decision needs no communication.
	st := key.Derive(1).Stream(0)
	rec.Accepted = st.Float64() < math.Exp(-rec.DeltaH)
	if !rec.Accepted {
		c.u.CopyFrom(c.saved)
	}
	rec.Plaquette = c.u.AveragePlaquette()
	for i, m := range c.monomials {
		rec.Iterations[i] = m.Iterations() - iters0[i]
	}
	c.next++
	rec.Seconds = time.Since(start).Seconds()
	return rec, nil
}

// reverse integrates back from the end of a trajectory with flipped momenta
// and restores the end point; h0 is H at the start.
func (c *Chain) reverse(h0 float64) (Reversibility, error) {
	c.uEnd.CopyFrom(c.u)
	c.pSaved.CopyFrom(c.p)
	c.p.Scale(-1)
	if err := c.md.Integrate(c.p, c.tau); err != nil {
		return Reversibility{}, err
	}
	h, err := c.hamiltonian()
	if err != nil {
		return Reversibility{}, err
	}
	rev := Reversibility{MaxLinkChange: c.u.MaxDifference(c.saved), DeltaH: h - h0}
	c.u.CopyFrom(c.uEnd)
	c.p.CopyFrom(c.pSaved)
	return rev, nil
}
