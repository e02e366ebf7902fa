package hmc

import (
	"fmt"

	"pfmpi/action"
)

// Assign builds the levels of an integrator: steps[l] steps at level l
// (steps[0] per trajectory, steps[l] per step of level l−1) and monomial i
// on level level[i].
func Assign(steps []int, monomials []action.Monomial, level []int) ([]Level, error) {
	if len(level) != len(monomials) {
		return nil, fmt.Errorf("hmc: %d level assignments for %d monomials", len(level), len(monomials))
	}
	levels := make([]Level, len(steps))
	for l, n := range steps {
		if n < 1 {
			return nil, fmt.Errorf("hmc: level %d has %d steps; need at least 1", l, n)
		}
		levels[l].Steps = n
	}
	for i, m := range monomials {
		l := level[i]
		if l < 0 || l >= len(steps) {
			return nil, fmt.Errorf("hmc: monomial %s on level %d, but there are %d levels", m.Name(), l, len(steps))
		}
		levels[l].Monomials = append(levels[l].Monomials, m)
	}
	return levels, nil
}
