// Package solver holds Krylov solvers for Hermitian positive-definite lattice
// operators on distributed vectors: conjugate gradient (CG) and multi-shift
// CG, which solves (A + σ_i) x_i = b for every shift σ_i ≥ 0 in one Krylov
// space (Jegerlehner, hep-lat/9612014).
//
// Vectors are this rank's share of a distributed field; inner products sum
// the local parts and reduce over the communicator in rank order, so a solve
// is reproducible bit for bit on a given process grid.
//
// CG on an operator A A† + μ that offers its factors ([Factored], as
// dslash.Normal does) runs a fused iteration: ⟨p, (AA† + μ)p⟩ = |A†p|² +
// μ|p|² is summed while A†p is written, the residual update r −= α A(A†p)
// happens inside the application of A (its result is never stored), and
// x += αp, p = r + βp with |p|² share one pass — the same iterates as the
// general iteration up to rounding, with three vector passes fewer.
//
// Both solvers stop when the iterated residual satisfies |r| ≤ tol·|b|, then
// recompute the true residual |b − (A + σ)x|/|b| and report it. A solve that
// reaches the iteration budget, or whose true residual exceeds 10·tol (lost
// precision), returns the solution so far and an error that gives the
// residual reached.
package solver
