package solver

import (
	"fmt"
	"pfmpi/hugemem"

	"pfmpi/mpi"
)

// MultiShiftCG solves (A + σ_i) x_i = b for shifts σ_i ≥ 0 with the Krylov
// space of A: one application of A per iteration, whatever the number of
// shifts. The residual of shift i is ζ_i r, so its convergence is read off
// without extra work; converged shifts stop updating.
type MultiShiftCG struct {
	comm     mpi.Comm
	r, p, ap []complex128
	ps       [][]complex128
}

// NewMultiShiftCG returns a solver for vectors of n local values over comm.
func NewMultiShiftCG(comm mpi.Comm, n int) *MultiShiftCG {
	return &MultiShiftCG{comm: comm, r: hugemem.Make[complex128](n), p: hugemem.Make[complex128](n), ap: hugemem.Make[complex128](n)}
}

// Solve sets xs[i] = (A + shifts[i])⁻¹ b (the x_i start from zero) to
// relative residual tol, returning one Result per shift.
func (ms *MultiShiftCG) Solve(a Linear, shifts []float64, xs [][]complex128, b []complex128, tol float64, maxIter int) ([]Result, error) {
	n := len(ms.r)
	if len(xs) != len(shifts) || len(b) != n {
		panic(fmt.Sprintf("solver: multi-shift CG with %d shifts, %d solutions, b of %d (want %d)", len(shifts), len(xs), len(b), n))
	}
	for len(ms.ps) < len(shifts) {
		ms.ps = append(ms.ps, hugemem.Make[complex128](n))
	}
	r, p, ap := ms.r, ms.p, ms.ap
	ns := len(shifts)
	zeta, zetaPrev := make([]float64, ns), make([]float64, ns)
	done := make([]bool, ns)
	for i := range shifts {
		if shifts[i] < 0 {
			panic(fmt.Sprintf("solver: shift %v is negative", shifts[i]))
		}
		clear(xs[i])
		copy(ms.ps[i], b)
		zeta[i], zetaPrev[i] = 1, 1
	}
	copy(r, b)
	copy(p, b)
	bb := Norm2(ms.comm, b)
	results := make([]Result, ns)
	if bb == 0 {
		return results, nil
	}
	rr := bb
	alphaPrev, betaPrev := 1.0, 0.0
	next := make([]float64, ns)
	k := 0
	for ; k < maxIter; k++ {
		remaining := 0
		for i := range shifts {
			if !done[i] {
				remaining++
			}
		}
		if remaining == 0 {
			break
		}
		a.Apply(ap, p)
		alpha := rr / real(Dot(ms.comm, p, ap))
		for i, sigma := range shifts {
			zn := zeta[i] * zetaPrev[i] * alphaPrev /
				(alpha*betaPrev*(zetaPrev[i]-zeta[i]) + zetaPrev[i]*alphaPrev*(1+sigma*alpha))
			next[i] = zn
			if done[i] {
				continue
			}
			ai := complex(alpha*zn/zeta[i], 0)
			x, pi := xs[i], ms.ps[i]
			for j := range x {
				x[j] += ai * pi[j]
			}
		}
		ca := complex(alpha, 0)
		for j := range r {
			r[j] -= ca * ap[j]
		}
		rrNew := Norm2(ms.comm, r)
		beta := rrNew / rr
		for i := range shifts {
			if !done[i] {
				bi := complex(beta*(next[i]/zeta[i])*(next[i]/zeta[i]), 0)
				zr := complex(next[i], 0)
				pi := ms.ps[i]
				for j := range pi {
					pi[j] = zr*r[j] + bi*pi[j]
				}
				results[i].Iterations = k + 1
				if next[i]*next[i]*rrNew <= tol*tol*bb {
					done[i] = true
				}
			}
			zetaPrev[i], zeta[i] = zeta[i], next[i]
		}
		cb := complex(beta, 0)
		for j := range p {
			p[j] = r[j] + cb*p[j]
		}
		alphaPrev, betaPrev, rr = alpha, beta, rrNew
	}
	var firstErr error
	for i, sigma := range shifts {
		results[i] = finish(ms.comm, a, sigma, xs[i], b, ap, bb, results[i].Iterations, tol, done[i])
		if err := check(fmt.Sprintf("multi-shift CG (shift %g)", sigma), results[i], tol, maxIter, done[i]); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return results, firstErr
}
