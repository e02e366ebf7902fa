package solver

import (
	"fmt"
	"math"
	"math/cmplx"
	"pfmpi/hugemem"

	"pfmpi/mpi"
)

// Linear is a Hermitian positive-definite operator.
type Linear interface {
	Apply(out, in []complex128)
}

// Dot returns ⟨a, b⟩ = Σ conj(a_i) b_i over all ranks.
func Dot(c mpi.Comm, a, b []complex128) complex128 {
	var s complex128
	for i := range a {
		s += cmplx.Conj(a[i]) * b[i]
	}
	if c.Size() == 1 {
		return s
	}
	x := []complex128{s}
	mpi.AllreduceComplex(c, mpi.Sum, x)
	return x[0]
}

// Norm2 returns |a|² over all ranks.
func Norm2(c mpi.Comm, a []complex128) float64 {
	s := 0.0
	for _, z := range a {
		s += real(z)*real(z) + imag(z)*imag(z)
	}
	return mpi.SumFloat64(c, s)
}

// Factored is an operator A A† + μ whose CG iteration can fold its
// reductions and the residual's update into the applications of A and A†
// (dslash.Normal): ⟨p, (AA† + μ)p⟩ = |A†p|² + μ|p|² is taken while A†p is
// written, and r −= α(AA† + μ)p while A(A†p) is computed, without storing
// it. CG runs that iteration for such operators: per iteration the two
// applications and one pass over x, r and p.
type Factored interface {
	Linear
	// Shift is μ.
	Shift() float64
	// Scratch is a vector of the operator's length that CG passes from
	// AdjointNorm to Update.
	Scratch() []complex128
	// AdjointNorm sets t = A† p and returns |t|² on this rank.
	AdjointNorm(t, p []complex128) float64
	// Update sets r −= α (A t + μ p) for t = A† p and returns |r|² on this rank.
	Update(r, t, p []complex128, alpha float64) float64
}

// Result describes a solve.
type Result struct {
	Iterations int
	Residual   float64 // true relative residual |b − Ax|/|b| at the end
	// BackwardError, set when the residual ended above the tolerance at the
	// limit of float64 (see [CG.Solve]), is the estimate
	// |b − Ax| / (ν|x| + |b|) of the normwise backward error, ν = |Ab|/|b| ≤ |A|.
	BackwardError float64
}

// backwardFloor, 1000 float64 rounding units, is the normwise backward
// error up to which a solve whose recursion converged but whose true
// residual stays above the tolerance counts as solved: the answer is
// then as accurate as float64 arithmetic on A allows (the residual of an
// ill-conditioned A cannot fall below about u·cond(A)).
const backwardFloor = 1e3 * 0x1p-53

// CG solves A x = b by conjugate gradients. Its work vectors are allocated
// once; Solve does not allocate.
type CG struct {
	comm     mpi.Comm
	r, p, ap []complex128
}

// NewCG returns a solver for vectors of n local values over comm.
func NewCG(comm mpi.Comm, n int) *CG {
	return &CG{comm: comm, r: hugemem.Make[complex128](n), p: hugemem.Make[complex128](n), ap: hugemem.Make[complex128](n)}
}

// Solve improves x (the initial guess, zero for none) until |b − Ax| ≤ tol·|b|
// or maxIter iterations. On an ill-conditioned A the true residual cannot
// fall below about u·cond(A) (u the float64 rounding unit) however long CG
// runs or restarts: a solve whose recursion converged with a true residual
// above 10·tol is accepted when its normwise backward error is within
// 1000 u ([Result.BackwardError]), i.e. x solves a system within rounding
// of A x = b, and is an error otherwise.
func (cg *CG) Solve(a Linear, x, b []complex128, tol float64, maxIter int) (Result, error) {
	r, p, ap := cg.r, cg.p, cg.ap
	if len(x) != len(r) || len(b) != len(r) {
		panic(fmt.Sprintf("solver: CG for %d values given x of %d and b of %d", len(r), len(x), len(b)))
	}
	bb := Norm2(cg.comm, b)
	if bb == 0 {
		clear(x)
		return Result{}, nil
	}
	a.Apply(ap, x)
	for i := range r {
		r[i] = b[i] - ap[i]
	}
	copy(p, r)
	rr := Norm2(cg.comm, r)
	stop := tol * tol * bb
	if f, ok := a.(Factored); ok {
		k, rr := cg.fused(f, x, rr, stop, maxIter)
		res := finish(cg.comm, a, 0, x, b, ap, bb, k, tol, rr <= stop)
		return res, check("CG", res, tol, maxIter, rr <= stop)
	}
	k := 0
	for ; k < maxIter && rr > stop; k++ {
		a.Apply(ap, p)
		alpha := rr / real(Dot(cg.comm, p, ap))
		// x += αp, r −= αAp and |r|² in one pass over the vectors
		local := 0.0
		for i := range x {
			x[i] += complex(alpha*real(p[i]), alpha*imag(p[i]))
			ri := r[i] - complex(alpha*real(ap[i]), alpha*imag(ap[i]))
			r[i] = ri
			local += real(ri)*real(ri) + imag(ri)*imag(ri)
		}
		rrNew := mpi.SumFloat64(cg.comm, local)
		beta := complex(rrNew/rr, 0)
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
		rr = rrNew
	}
	res := finish(cg.comm, a, 0, x, b, ap, bb, k, tol, rr <= stop)
	return res, check("CG", res, tol, maxIter, rr <= stop)
}

// fused runs CG iterations on a Factored operator from r = p = b − Ax with
// |r|² = rr and returns their number and the final |r|². Two global sums per iteration, as in
// Solve: ⟨p, Ap⟩ (with |p|² of this rank from the previous pass) and |r|².
func (cg *CG) fused(f Factored, x []complex128, rr, stop float64, maxIter int) (int, float64) {
	r, p := cg.r, cg.p
	t := f.Scratch()
	mu := f.Shift()
	pp := localNorm2(p)
	k := 0
	for ; k < maxIter && rr > stop; k++ {
		alpha := rr / mpi.SumFloat64(cg.comm, f.AdjointNorm(t, p)+mu*pp)
		rrNew := mpi.SumFloat64(cg.comm, f.Update(r, t, p, alpha))
		beta := rrNew / rr
		pp = UpdateXP(x, p, r, alpha, beta)
		rr = rrNew
	}
	return k, rr
}

// UpdateXP is the vector pass of CG's fused iteration: x += αp and then
// p = r + βp, in one pass over the three vectors, returning this rank's |p|²
// of the new p. It reads x, p and r and writes x and p (five vector accesses
// per element): what a fused iteration adds to its two operator
// applications, and on cheap operators the floor of its cost (package bench
// reports it).
func UpdateXP(x, p, r []complex128, alpha, beta float64) float64 {
	n := len(x)
	p, r = p[:n], r[:n]
	// Four partial sums break the chain of dependent additions that one
	// accumulator makes the pass wait on.
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+1 < n; i += 2 {
		p0, p1 := p[i], p[i+1]
		r0, r1 := r[i], r[i+1]
		x[i] += complex(alpha*real(p0), alpha*imag(p0))
		x[i+1] += complex(alpha*real(p1), alpha*imag(p1))
		a0, b0 := real(r0)+beta*real(p0), imag(r0)+beta*imag(p0)
		a1, b1 := real(r1)+beta*real(p1), imag(r1)+beta*imag(p1)
		p[i], p[i+1] = complex(a0, b0), complex(a1, b1)
		s0 += a0 * a0
		s1 += b0 * b0
		s2 += a1 * a1
		s3 += b1 * b1
	}
	if i < n {
		pi := p[i]
		x[i] += complex(alpha*real(pi), alpha*imag(pi))
		a, b := real(r[i])+beta*real(pi), imag(r[i])+beta*imag(pi)
		p[i] = complex(a, b)
		s0 += a*a + b*b
	}
	return (s0 + s1) + (s2 + s3)
}

func localNorm2(a []complex128) float64 {
	s := 0.0
	for _, z := range a {
		s += real(z)*real(z) + imag(z)*imag(z)
	}
	return s
}

// finish returns the result of a solve of (A+σ)x = b after k iterations:
// the true residual and, when the recursion converged but the residual did
// not meet 10·tol, the backward error that [check] judges.
func finish(c mpi.Comm, a Linear, sigma float64, x, b, tmp []complex128, bb float64, k int, tol float64, converged bool) Result {
	res := Result{Iterations: k, Residual: trueResidual(c, a, sigma, x, b, tmp, bb)}
	if converged && res.Residual > 10*tol {
		res.BackwardError = backwardError(c, a, sigma, x, b, tmp, bb, res.Residual)
	}
	return res
}

// backwardError returns |b − (A+σ)x| / (ν|x| + |b|) with ν = |(A+σ)b|/|b|,
// a lower bound on |A + σ|, so that the value bounds the normwise backward
// error from above; residual is |b − (A+σ)x|/|b|. It costs one application
// of A, on the rare solves that end above their tolerance.
func backwardError(c mpi.Comm, a Linear, sigma float64, x, b, tmp []complex128, bb, residual float64) float64 {
	a.Apply(tmp, b)
	s := complex(sigma, 0)
	for i := range tmp {
		tmp[i] += s * b[i]
	}
	nu := math.Sqrt(Norm2(c, tmp) / bb)
	xn := math.Sqrt(Norm2(c, x))
	bn := math.Sqrt(bb)
	return residual * bn / (nu*xn + bn)
}

// trueResidual returns |b − (A + σ)x|/|b|, using tmp as work space.
func trueResidual(c mpi.Comm, a Linear, sigma float64, x, b, tmp []complex128, bb float64) float64 {
	a.Apply(tmp, x)
	s := complex(sigma, 0)
	for i := range tmp {
		tmp[i] = b[i] - tmp[i] - s*x[i]
	}
	return math.Sqrt(Norm2(c, tmp) / bb)
}

func check(what string, res Result, tol float64, maxIter int, converged bool) error {
	switch {
	case !converged:
		return fmt.Errorf("solver: %s did not converge in %d iterations: true residual %.3g, tolerance %.3g; raise the iteration limit or loosen the tolerance",
			what, maxIter, res.Residual, tol)
	case res.Residual > 10*tol && res.BackwardError > backwardFloor:
		return fmt.Errorf("solver: %s converged by its recursion but the true residual is %.3g, above 10× the tolerance %.3g, with a backward error of %.3g, beyond float64 rounding: precision was lost (an inexact or non-Hermitian operator?)",
			what, res.Residual, tol, res.BackwardError)
	}
	return nil
}
