package spectrum

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"pfmpi/mpi"
	"pfmpi/solver"
)

// Extremal is the result of Extremes.
type Extremal struct {
	Min, Max   float64 // smallest and largest eigenvalue
	Iterations int
}

// Condition is Max/Min.
func (e Extremal) Condition() float64 { return e.Max / e.Min }

// Extremes estimates the smallest and largest eigenvalues of the Hermitian
// positive operator a by the Lanczos iteration from start (nonzero, this
// rank's share), until both Ritz residuals are below tol times the value, or
// maxIter steps.
func Extremes(comm mpi.Comm, a solver.Linear, start []complex128, tol float64, maxIter int) (Extremal, error) {
	n := len(start)
	v := append([]complex128(nil), start...)
	norm := math.Sqrt(solver.Norm2(comm, v))
	if norm == 0 {
		return Extremal{}, fmt.Errorf("spectrum: Lanczos needs a nonzero start vector")
	}
	scale(v, 1/norm)
	vPrev := make([]complex128, n)
	w := make([]complex128, n)
	var alpha, beta []float64 // T's diagonal and off-diagonal
	var res Extremal
	for k := 0; k < maxIter; k++ {
		a.Apply(w, v)
		if k > 0 {
			b := complex(beta[k-1], 0)
			for i := range w {
				w[i] -= b * vPrev[i]
			}
		}
		al := real(solver.Dot(comm, v, w))
		ca := complex(al, 0)
		for i := range w {
			w[i] -= ca * v[i]
		}
		alpha = append(alpha, al)
		b := math.Sqrt(solver.Norm2(comm, w))
		beta = append(beta, b)
		last := k == maxIter-1
		if (k+1)%10 == 0 || last || b == 0 {
			lo, hi, rlo, rhi := ritz(alpha, beta)
			res = Extremal{Min: lo, Max: hi, Iterations: k + 1}
			if b == 0 || (rlo <= tol*math.Abs(lo) && rhi <= tol*math.Abs(hi)) {
				return res, nil
			}
		}
		vPrev, v = v, vPrev
		copy(v, w)
		scale(v, 1/b)
	}
	return res, fmt.Errorf("spectrum: Lanczos did not converge in %d iterations (estimates %.6g, %.6g)", maxIter, res.Min, res.Max)
}

func scale(x []complex128, s float64) {
	c := complex(s, 0)
	for i := range x {
		x[i] *= c
	}
}

// ritz returns the extreme eigenvalues of the tridiagonal T (diagonal alpha,
// off-diagonal beta[:k−1]) and their residuals |β_k s_k|.
func ritz(alpha, beta []float64) (lo, hi, rlo, rhi float64) {
	k := len(alpha)
	t := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		t.SetSym(i, i, alpha[i])
		if i+1 < k {
			t.SetSym(i, i+1, beta[i])
		}
	}
	var es mat.EigenSym
	if !es.Factorize(t, true) {
		return math.NaN(), math.NaN(), math.Inf(1), math.Inf(1)
	}
	vals := es.Values(nil)
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	iLo, iHi := 0, 0
	for i, x := range vals {
		if x < vals[iLo] {
			iLo = i
		}
		if x > vals[iHi] {
			iHi = i
		}
	}
	b := beta[k-1]
	return vals[iLo], vals[iHi], math.Abs(b * vecs.At(k-1, iLo)), math.Abs(b * vecs.At(k-1, iHi))
}
