package measure

import (
	"fmt"
	"math"

	"pfmpi/dslash"
	"pfmpi/mpi"
	"pfmpi/solver"
)

// Pion computes pion correlators from point-source propagators on the
// current links of an operator. Its work vectors are allocated once.
type Pion struct {
	comm    mpi.Comm
	op      dslash.Operator
	normal  *dslash.Normal
	cg      *solver.CG
	b, y, x []complex128
	coord   []int
	local   []float64

	Tol     float64 // relative residual of the solves
	MaxIter int
	// Iterations counts CG iterations spent so far.
	Iterations int
}

// NewPion returns the correlator machinery for op (comm: op's domain).
func NewPion(comm mpi.Comm, op dslash.Operator) *Pion {
	n := op.Layout().Volume() * op.PerSite()
	return &Pion{comm: comm, op: op, normal: dslash.NewNormal(op, 0, n), cg: solver.NewCG(comm, n),
		b: make([]complex128, n), y: make([]complex128, n), x: make([]complex128, n),
		coord: make([]int, op.Layout().Lattice().NumDims()), local: make([]float64, op.Layout().Lattice().Dims()[0]),
		Tol: 1e-10, MaxIter: 100000}
}

// Correlator returns the zero-momentum pion correlator from a point source
// at the global coordinate src,
//
//	C(t) = Σ_x⃗ Σ_{a,b} |S(x⃗, t_src + t; src)_{ab}|²,   S = D⁻¹,
//
// t = 0 … T−1 (the pseudoscalar density by γ5-Hermiticity, S† = γ5 S γ5).
// One solve of DD† per spin-colour component of the source.
func (p *Pion) Correlator(src []int) ([]float64, error) {
	ly := p.op.Layout()
	lat := ly.Lattice()
	if len(src) != lat.NumDims() {
		return nil, fmt.Errorf("measure: source %v on a %d-dimensional lattice", src, lat.NumDims())
	}
	t0 := lat.Dims()[0]
	owner, site := lat.Owner(src)
	n := p.op.PerSite()
	clear(p.local)
	for c := 0; c < n; c++ {
		clear(p.b)
		if owner == ly.Rank() {
			p.b[site*n+c] = 1
		}
		clear(p.y)
		res, err := p.cg.Solve(p.normal, p.y, p.b, p.Tol, p.MaxIter)
		p.Iterations += res.Iterations
		if err != nil {
			return nil, fmt.Errorf("measure: pion propagator: %w", err)
		}
		p.op.Mdag(p.x, p.y) // x = D† (DD†)⁻¹ b = D⁻¹ b
		for s := 0; s < ly.Volume(); s++ {
			ly.GlobalCoord(s, p.coord)
			t := ((p.coord[0]-src[0])%t0 + t0) % t0
			sum := 0.0
			for _, z := range p.x[s*n : (s+1)*n] {
				sum += real(z)*real(z) + imag(z)*imag(z)
			}
			p.local[t] += sum
		}
	}
	out := append([]float64(nil), p.local...)
	p.comm.Allreduce(mpi.Sum, out)
	return out, nil
}

// Fold returns (C(t) + C(T−t))/2 for t = 0 … T/2 of a periodic correlator.
func Fold(c []float64) []float64 {
	t := len(c)
	out := make([]float64, t/2+1)
	for i := range out {
		out[i] = (c[i] + c[(t-i)%t]) / 2
	}
	return out
}

// EffectiveMass returns the cosh effective mass m(t) of a folded periodic
// correlator of period T: the m with C(t)/C(t+1) =
// cosh(m(T/2−t))/cosh(m(T/2−t−1)), t = 0 … len(c)−2, NaN where the ratio
// has no solution (noise).
func EffectiveMass(c []float64, period int) []float64 {
	out := make([]float64, len(c)-1)
	for t := range out {
		out[t] = math.NaN()
		if c[t] <= 0 || c[t+1] <= 0 {
			continue
		}
		r := c[t] / c[t+1]
		h := float64(period)/2 - float64(t)
		f := func(m float64) float64 { return math.Cosh(m*h)/math.Cosh(m*(h-1)) - r }
		if f(1e-12) > 0 || r <= 1 {
			continue
		}
		lo, hi := 1e-12, 1.0
		for f(hi) < 0 && hi < 50 {
			hi *= 2
		}
		if f(hi) < 0 {
			continue
		}
		for range 200 {
			mid := (lo + hi) / 2
			if f(mid) < 0 {
				lo = mid
			} else {
				hi = mid
			}
		}
		out[t] = (lo + hi) / 2
	}
	return out
}

// FitCosh fits A (e^{−mt} + e^{−m(T−t)}) to c(t) for t in [tmin, tmax] by
// least squares with weights 1/σ(t)² (uncorrelated) and returns m and A.
// For fixed m the best A is linear; m is found by golden-section search on
// [1e-6, 10].
func FitCosh(c, sigma []float64, period, tmin, tmax int) (m, amp float64, err error) {
	if tmin < 0 || tmax >= len(c) || tmax-tmin < 1 {
		return 0, 0, fmt.Errorf("measure: cosh fit range [%d, %d] for %d points needs two points", tmin, tmax, len(c))
	}
	shape := func(m float64, t int) float64 {
		return math.Exp(-m*float64(t)) + math.Exp(-m*float64(period-t))
	}
	chi2 := func(m float64) (float64, float64) {
		var sfc, sff float64
		for t := tmin; t <= tmax; t++ {
			w := 1.0
			if sigma != nil && sigma[t] > 0 {
				w = 1 / (sigma[t] * sigma[t])
			}
			f := shape(m, t)
			sfc += w * f * c[t]
			sff += w * f * f
		}
		a := sfc / sff
		var x float64
		for t := tmin; t <= tmax; t++ {
			w := 1.0
			if sigma != nil && sigma[t] > 0 {
				w = 1 / (sigma[t] * sigma[t])
			}
			d := c[t] - a*shape(m, t)
			x += w * d * d
		}
		return x, a
	}
	// Golden-section search on log m.
	lo, hi := math.Log(1e-6), math.Log(10.0)
	g := (math.Sqrt(5) - 1) / 2
	x1, x2 := hi-g*(hi-lo), lo+g*(hi-lo)
	f1, _ := chi2(math.Exp(x1))
	f2, _ := chi2(math.Exp(x2))
	for range 200 {
		if f1 < f2 {
			hi, x2, f2 = x2, x1, f1
			x1 = hi - g*(hi-lo)
			f1, _ = chi2(math.Exp(x1))
		} else {
			lo, x1, f1 = x1, x2, f2
			x2 = lo + g*(hi-lo)
			f2, _ = chi2(math.Exp(x2))
		}
	}
	m = math.Exp((lo + hi) / 2)
	_, amp = chi2(m)
	if math.IsNaN(m) || math.IsNaN(amp) {
		return 0, 0, fmt.Errorf("measure: cosh fit failed")
	}
	return m, amp, nil
}
