package action

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"testing"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/field"
	"pfmpi/gauge"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
	"pfmpi/spectrum"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

var tight = Solves{MD: 1e-13, Action: 1e-13, MaxIter: 10000}

// world is a gauge field near the identity with a Wilson operator on it.
type world struct {
	u  *gauge.Field
	op *dslash.Wilson
}

func newWorld(c mpi.Comm, dims, grid []int, nc int, kappa float64, seed uint64) (*world, error) {
	sp, err := latticetest.Space(c, dims, grid, true, nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	u.SetNearIdentity(rng.New(seed, "action-test-gauge"), 0.6)
	op, err := dslash.NewWilson(u, kappa)
	if err != nil {
		return nil, err
	}
	return &world{u: u, op: op}, nil
}

func (w *world) close() {
	w.op.Close()
	w.u.Space().Close()
}

// finiteDifference returns the Richardson-extrapolated symmetric difference
// of value along the algebra direction x.
func finiteDifference(u *gauge.Field, x *gauge.Algebra, value func() (float64, error)) (float64, error) {
	saved := u.Clone()
	defer u.CopyFrom(saved)
	at := func(eps float64) (float64, error) {
		u.CopyFrom(saved)
		u.Update(eps, x)
		return value()
	}
	var d [2]float64
	for i, eps := range []float64{2e-3, 1e-3} {
		plus, err := at(eps)
		if err != nil {
			return 0, err
		}
		minus, err := at(-eps)
		if err != nil {
			return 0, err
		}
		d[i] = (plus - minus) / (2 * eps)
	}
	return (4*d[1] - d[0]) / 3, nil
}

type forceCase struct {
	dims, grid []int
	nc         int
	kappa      float64
	eo         bool
	shifts     []float64
}

func (c forceCase) String() string {
	return fmt.Sprintf("%v grid %v Nc %d eo %v shifts %v", c.dims, c.grid, c.nc, c.eo, c.shifts)
}

// TestForces compares the force of every monomial with the symmetric finite
// difference of its action along a random direction of the links.
func TestForces(t *testing.T) {
	cases := []forceCase{
		{[]int{4, 6}, []int{2, 1}, 1, 0.24, false, nil},
		{[]int{4, 8}, []int{1, 2}, 1, 0.24, true, nil},
		{[]int{4, 6}, []int{2, 1}, 1, 0.24, true, []float64{0.05, 0.3}},
		{[]int{4, 8}, []int{1, 2}, 1, 0.24, false, []float64{0.1}},
		{[]int{4, 4}, []int{2, 1}, 3, 0.2, false, nil},
		{[]int{4, 4}, []int{1, 2}, 3, 0.2, true, []float64{0.1}},
		{[]int{4, 2, 2, 4}, []int{2, 1, 1, 1}, 3, 0.1, false, []float64{0.2}},
		{[]int{4, 2, 2, 4}, []int{1, 1, 1, 2}, 3, 0.1, true, nil},
		{[]int{4, 4, 2, 4}, []int{1, 2, 1, 1}, 1, 0.1, true, []float64{0.05, 0.5}},
	}
	for _, c := range cases {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := newWorld(comm, c.dims, c.grid, c.nc, c.kappa, 3)
			if err != nil {
				return err
			}
			defer w.close()
			pfs, err := NewPseudofermions(comm, w.op, Fermions{EvenOdd: c.eo, Shifts: c.shifts, Solves: tight})
			if err != nil {
				return err
			}
			ms := []Monomial{NewGauge(w.u, 1.7)}
			for _, p := range pfs {
				ms = append(ms, p)
			}
			sp := w.u.Space()
			x := sp.NewAlgebra()
			x.SetGaussian(rng.New(4, "direction"))
			for i, m := range ms {
				if err := m.Refresh(rng.New(5, "pf").Derive(uint64(i))); err != nil {
					return err
				}
				f := sp.NewAlgebra()
				if err := m.AddForce(f); err != nil {
					return err
				}
				want := f.Dot(x)
				got, err := finiteDifference(w.u, x, m.Action)
				if err != nil {
					return err
				}
				if math.Abs(got-want) > 2e-7*(1+math.Abs(want)) {
					return fmt.Errorf("%v, %s: F·X = %.12g, finite difference %.12g", c, m.Name(), want, got)
				}
			}
			return nil
		})
	}
}

func randomVector(p *Pseudofermion, key rng.Key) []complex128 {
	v := make([]complex128, p.Len())
	field.FillComplexNormalSites(v, p.op.Layout(), p.parity(), p.op.PerSite(), key)
	return v
}

// TestHeatBathAndKernel checks S(Draw(η)) = η†η and that Kernel is the
// gradient of S with respect to φ†: dS/dε at φ + εv is 2 Re⟨v, Kφ⟩.
func TestHeatBathAndKernel(t *testing.T) {
	for _, eo := range []bool{false, true} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := newWorld(comm, []int{4, 8}, []int{1, 2}, 3, 0.22, 8)
			if err != nil {
				return err
			}
			defer w.close()
			pfs, err := NewPseudofermions(comm, w.op, Fermions{EvenOdd: eo, Shifts: []float64{0.02, 0.2}, Solves: tight})
			if err != nil {
				return err
			}
			for i, p := range pfs {
				eta := randomVector(p, rng.New(9, "eta").Derive(uint64(i)))
				phi := make([]complex128, p.Len())
				if err := p.Draw(phi, eta); err != nil {
					return err
				}
				s, err := p.ActionOf(phi)
				if err != nil {
					return err
				}
				want := solver.Norm2(comm, eta)
				if math.Abs(s-want) > 1e-10*want {
					return fmt.Errorf("eo %v %s: S(φ) = %.14g, η†η = %.14g", eo, p, s, want)
				}
				v := randomVector(p, rng.New(10, "v").Derive(uint64(i)))
				k := make([]complex128, p.Len())
				if err := p.Kernel(k, phi); err != nil {
					return err
				}
				grad := 2 * real(solver.Dot(comm, v, k))
				moved := make([]complex128, p.Len())
				at := func(eps float64) (float64, error) {
					for j := range moved {
						moved[j] = phi[j] + complex(eps, 0)*v[j]
					}
					return p.ActionOf(moved)
				}
				plus, err := at(1e-3)
				if err != nil {
					return err
				}
				minus, err := at(-1e-3)
				if err != nil {
					return err
				}
				// S is quadratic in φ: the symmetric difference is exact.
				if fd := (plus - minus) / 2e-3; math.Abs(fd-grad) > 1e-7*math.Abs(grad) {
					return fmt.Errorf("eo %v %s: 2Re⟨v, Kφ⟩ = %.12g, finite difference %.12g", eo, p, grad, fd)
				}
			}
			return nil
		})
	}
}

// TestDenseIdentities checks on a small lattice, with dense matrices, that
// the heat bath has covariance K⁻¹ (B B† K = 1 for φ = Bη) and that the
// monomials telescope: Σ_i log det K_i = −log det DD† (Eqs. 34, 38).
func TestDenseIdentities(t *testing.T) {
	for _, c := range []struct {
		nc int
		eo bool
	}{{1, false}, {1, true}, {3, true}} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := newWorld(comm, []int{4, 4}, []int{2, 1}, c.nc, 0.25, 12)
			if err != nil {
				return err
			}
			defer w.close()
			pfs, err := NewPseudofermions(comm, w.op, Fermions{EvenOdd: c.eo, Shifts: []float64{0.01, 0.1, 0.5}, Solves: tight})
			if err != nil {
				return err
			}
			ly := w.op.Layout()
			par := decomp.All
			if c.eo {
				par = decomp.Even
			}
			basis, err := spectrum.NewBasis(comm, ly, par, w.op.PerSite())
			if err != nil {
				return err
			}
			var sumLogDet float64
			for _, p := range pfs {
				var failed error
				b, err := basis.Build(func(out, in []complex128) {
					if err := p.Draw(out, in); err != nil {
						failed = err
					}
				})
				if err != nil {
					return err
				}
				k, err := basis.Build(func(out, in []complex128) {
					if err := p.Kernel(out, in); err != nil {
						failed = err
					}
				})
				if err != nil || failed != nil {
					return fmt.Errorf("%v %v", err, failed)
				}
				if comm.Rank() != 0 {
					continue
				}
				if d := distanceFromIdentity(mulAdjMul(b, k)); d > 1e-9 {
					return fmt.Errorf("Nc %d eo %v %s: |B B† K − 1| = %g", c.nc, c.eo, p, d)
				}
				ld, _ := k.LogDet()
				sumLogDet += ld
			}
			full, err := spectrum.Build(comm, ly, decomp.All, w.op.PerSite(), w.op.M)
			if err != nil || comm.Rank() != 0 {
				return err
			}
			ld, _ := full.LogDet()
			if want := -2 * ld; math.Abs(sumLogDet-want) > 1e-9*math.Abs(want) {
				return fmt.Errorf("Nc %d eo %v: Σ log det K_i = %.12g, −log det DD† = %.12g", c.nc, c.eo, sumLogDet, want)
			}
			return nil
		})
	}
}

// mulAdjMul returns B B† K.
func mulAdjMul(b, k *spectrum.Dense) *spectrum.Dense {
	n := b.N
	bbt := make([]complex128, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s complex128
			for l := 0; l < n; l++ {
				s += b.A[i*n+l] * cmplx.Conj(b.A[j*n+l])
			}
			bbt[i*n+j] = s
		}
	}
	out := &spectrum.Dense{N: n, A: make([]complex128, n*n)}
	for i := 0; i < n; i++ {
		for l := 0; l < n; l++ {
			v := bbt[i*n+l]
			for j := 0; j < n; j++ {
				out.A[i*n+j] += v * k.A[l*n+j]
			}
		}
	}
	return out
}

func distanceFromIdentity(d *spectrum.Dense) float64 {
	worst := 0.0
	for i := 0; i < d.N; i++ {
		for j := 0; j < d.N; j++ {
			v := d.A[i*d.N+j]
			if i == j {
				v--
			}
			worst = max(worst, cmplx.Abs(v))
		}
	}
	return worst
}

func TestBadShifts(t *testing.T) {
	mpitest.Run(t, 1, func(comm mpi.Comm) error {
		w, err := newWorld(comm, []int{4, 4}, []int{1, 1}, 1, 0.2, 1)
		if err != nil {
			return err
		}
		defer w.close()
		for _, shifts := range [][]float64{{0.1, 0.05}, {0}, {-1}, {0.1, 0.1}} {
			if _, err := NewPseudofermions(comm, w.op, Fermions{Shifts: shifts, Solves: tight}); err == nil {
				return fmt.Errorf("shifts %v accepted", shifts)
			}
		}
		return nil
	})
}

// TestExactDeterminantForce compares the force of −log det DD† with the
// symmetric difference of its action (U(1) and SU(3), 2D, one rank), through
// the Schur complement and through D itself.
func TestExactDeterminantForce(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, schur := range []bool{true, false} {
			mpitest.Run(t, 1, func(comm mpi.Comm) error {
				w, err := newWorld(comm, []int{4, 4}, []int{1, 1}, nc, 0.22, 21)
				if err != nil {
					return err
				}
				defer w.close()
				e, err := newExactDeterminant(comm, w.op, schur)
				if err != nil {
					return err
				}
				if want := 16 * 2 * nc; (schur && e.Rows() != want/2) || (!schur && e.Rows() != want) {
					return fmt.Errorf("Nc %d, Schur %v: %d rows", nc, schur, e.Rows())
				}
				sp := w.u.Space()
				f := sp.NewAlgebra()
				if err := e.AddForce(f); err != nil {
					return err
				}
				x := sp.NewAlgebra()
				x.SetGaussian(rng.New(22, "direction"))
				want := f.Dot(x)
				got, err := finiteDifference(w.u, x, e.Action)
				if err != nil {
					return err
				}
				if math.Abs(got-want) > 1e-7*(1+math.Abs(want)) {
					return fmt.Errorf("Nc %d, Schur %v: F·X = %.12g, finite difference %.12g", nc, schur, want, got)
				}
				return nil
			})
		}
	}
}

// TestExactDeterminantSchur checks det D = det D_sc and that both routes
// give the same force, value by value, on lattices of 2 and 4 dimensions
// (one rank), and the action on two ranks against one.
func TestExactDeterminantSchur(t *testing.T) {
	for _, c := range []struct {
		dims []int
		nc   int
	}{{[]int{4, 6}, 1}, {[]int{4, 4}, 3}, {[]int{2, 2, 2, 4}, 1}} {
		var ref float64
		mpitest.Run(t, 1, func(comm mpi.Comm) error {
			w, err := newWorld(comm, c.dims, nil, c.nc, 0.2, 31)
			if err != nil {
				return err
			}
			defer w.close()
			sp := w.u.Space()
			var s [2]float64
			var f [2]*gauge.Algebra
			for i, schur := range []bool{true, false} {
				e, err := newExactDeterminant(comm, w.op, schur)
				if err != nil {
					return err
				}
				if s[i], err = e.Action(); err != nil {
					return err
				}
				f[i] = sp.NewAlgebra()
				if err := e.AddForce(f[i]); err != nil {
					return err
				}
			}
			if math.Abs(s[0]-s[1]) > 1e-12*math.Abs(s[1]) {
				return fmt.Errorf("%v Nc %d: −2 log|det D_sc| = %.15g, −2 log|det D| = %.15g", c.dims, c.nc, s[0], s[1])
			}
			norm := f[1].Dot(f[1])
			f[0].Add(-1, f[1])
			if d := f[0].Dot(f[0]); !(norm > 0) || d > 1e-24*norm {
				return fmt.Errorf("%v Nc %d: the forces differ, |Δ|² = %g of %g", c.dims, c.nc, d, norm)
			}
			ref = s[0]
			return nil
		})
		grid := make([]int, len(c.dims))
		for mu := range grid {
			grid[mu] = 1
		}
		grid[slices.IndexFunc(c.dims, func(l int) bool { return l%4 == 0 })] = 2
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := newWorld(comm, c.dims, grid, c.nc, 0.2, 31)
			if err != nil {
				return err
			}
			defer w.close()
			e, err := NewExactDeterminant(comm, w.op)
			if err != nil {
				return err
			}
			s, err := e.Action()
			if err != nil {
				return err
			}
			if math.Abs(s-ref) > 1e-12*math.Abs(ref) {
				return fmt.Errorf("%v Nc %d on 2 ranks: %.15g, on one %.15g", c.dims, c.nc, s, ref)
			}
			return nil
		})
	}
}

// TestDerivativesAndRegulator checks that Derivatives agrees with ActionOf,
// Kernel and ForceOf, and that the regulator shifts M in every monomial.
func TestDerivativesAndRegulator(t *testing.T) {
	mpitest.Run(t, 2, func(comm mpi.Comm) error {
		w, err := newWorld(comm, []int{4, 4}, []int{2, 1}, 1, 0.24, 5)
		if err != nil {
			return err
		}
		defer w.close()
		for _, eo := range []bool{false, true} {
			plain, err := NewPseudofermions(comm, w.op, Fermions{EvenOdd: eo, Shifts: []float64{0.05}, Solves: tight})
			if err != nil {
				return err
			}
			reg, err := NewPseudofermions(comm, w.op, Fermions{EvenOdd: eo, Shifts: []float64{0.05}, Regulator: 0.01, Solves: tight})
			if err != nil {
				return err
			}
			for i, p := range plain {
				_, _, s0 := p.Coefficients()
				_, _, s1 := reg[i].Coefficients()
				if math.Abs(s1-s0-0.01) > 1e-15 {
					return fmt.Errorf("eo %v %s: σ = %g with μ₀ = 0.01, %g without", eo, p.Name(), s1, s0)
				}
				phi := randomVector(p, rng.New(uint64(i), "derivatives"))
				want, err := p.ActionOf(phi)
				if err != nil {
					return err
				}
				kwant := make([]complex128, p.Len())
				if err := p.Kernel(kwant, phi); err != nil {
					return err
				}
				fwant := w.u.Space().NewAlgebra()
				if err := p.ForceOf(fwant, phi, 0.5); err != nil {
					return err
				}
				kphi := make([]complex128, p.Len())
				f := w.u.Space().NewAlgebra()
				s, err := p.Derivatives(phi, kphi, f, 0.5)
				if err != nil {
					return err
				}
				if math.Abs(s-want) > 1e-10*math.Abs(want) {
					return fmt.Errorf("eo %v %s: S = %g, ActionOf %g", eo, p.Name(), s, want)
				}
				for j := range kphi {
					if cmplx.Abs(kphi[j]-kwant[j]) > 1e-10 {
						return fmt.Errorf("eo %v %s: Kφ differs from Kernel at %d", eo, p.Name(), j)
					}
				}
				f.Add(-1, fwant)
				if d := f.Dot(f); d > 1e-18 {
					return fmt.Errorf("eo %v %s: force differs from ForceOf: |Δ|² = %g", eo, p.Name(), d)
				}
				sr, err := reg[i].ActionOf(phi)
				if err != nil {
					return err
				}
				if sr == want {
					return fmt.Errorf("eo %v %s: the regulator does not change S", eo, p.Name())
				}
			}
		}
		return nil
	})
}

// BenchmarkExactDeterminant times the marginal target's fermion part on
// U(1) lattices of 8 × 8 and 16 × 16 (Dirac matrices of 128 and 512 rows):
// the action and its force at a new gauge field, as a training step
// evaluates them for every member of the batch, through the Schur
// complement (the default) and through D itself.
func BenchmarkExactDeterminant(b *testing.B) {
	for _, l := range []int{8, 16} {
		for _, schur := range []bool{true, false} {
			name := fmt.Sprintf("L%d/full", l)
			if schur {
				name = fmt.Sprintf("L%d/schur", l)
			}
			b.Run(name, func(b *testing.B) {
				w, err := newWorld(mpi.Self(), []int{l, l}, []int{1, 1}, 1, 0.265, 3)
				if err != nil {
					b.Fatal(err)
				}
				defer w.close()
				e, err := newExactDeterminant(mpi.Self(), w.op, schur)
				if err != nil {
					b.Fatal(err)
				}
				sp := w.u.Space()
				f, x := sp.NewAlgebra(), sp.NewAlgebra()
				x.SetGaussian(rng.New(4, "bench-direction"))
				for b.Loop() {
					w.u.Update(1e-3, x) // a new field, as for the next member
					if _, err := e.Action(); err != nil {
						b.Fatal(err)
					}
					f.Zero()
					if err := e.AddForce(f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
