package fdtest

import "pfmpi/mpi"

// Eps is the step of the central differences.
const Eps = 1e-6

// Directional returns ⟨dir, grad⟩ summed over c and the central difference
// [L(x + ε dir) − L(x − ε dir)]/2ε of loss, which must read x (restored on
// return) and return the loss summed over c. A parameter replicated on
// every rank takes the same dir on every rank and its rank-local gradient.
func Directional(c mpi.Comm, x, grad, dir []float64, loss func() (float64, error)) (analytic, numeric float64, err error) {
	for i := range dir {
		analytic += dir[i] * grad[i]
	}
	analytic = mpi.SumFloat64(c, analytic)
	saved := append([]float64(nil), x...)
	defer copy(x, saved)
	at := func(s float64) (float64, error) {
		for i := range x {
			x[i] = saved[i] + s*dir[i]
		}
		return loss()
	}
	lp, err := at(Eps)
	if err != nil {
		return 0, 0, err
	}
	lm, err := at(-Eps)
	if err != nil {
		return 0, 0, err
	}
	return analytic, (lp - lm) / (2 * Eps), nil
}
