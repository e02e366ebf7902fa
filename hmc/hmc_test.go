package hmc

import (
	"fmt"
	"math"
	"testing"

	"pfmpi/action"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// system is a gauge field with its monomials on one rank's block.
type system struct {
	comm      mpi.Comm
	u         *gauge.Field
	op        *dslash.Wilson
	monomials []action.Monomial
}

type spec struct {
	dims, grid []int
	nc         int
	beta       float64
	kappa      float64 // 0: pure gauge
	eo         bool
	shifts     []float64
	start      float64 // near-identity spread of the start (0: cold)
}

func newSystem(comm mpi.Comm, s spec, solves action.Solves) (*system, error) {
	sp, err := latticetest.Space(comm, s.dims, s.grid, s.eo, s.nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	if s.start > 0 {
		u.SetNearIdentity(rng.New(77, "hmc-test-start"), s.start)
	}
	sys := &system{comm: comm, u: u, monomials: []action.Monomial{action.NewGauge(u, s.beta)}}
	if s.kappa == 0 {
		return sys, nil
	}
	sys.op, err = dslash.NewWilson(u, s.kappa)
	if err != nil {
		return nil, err
	}
	pfs, err := action.NewPseudofermions(comm, sys.op, action.Fermions{EvenOdd: s.eo, Shifts: s.shifts, Solves: solves})
	if err != nil {
		return nil, err
	}
	for _, p := range pfs {
		sys.monomials = append(sys.monomials, p)
	}
	return sys, nil
}

func (s *system) close() {
	if s.op != nil {
		s.op.Close()
	}
	s.u.Space().Close()
}

// chain builds a chain with the gauge monomial on the innermost of
// len(steps) levels and the pseudofermions on level 0.
func (s *system) chain(scheme Scheme, steps []int, tau float64, seed uint64) (*Chain, error) {
	level := make([]int, len(s.monomials))
	level[0] = len(steps) - 1
	levels, err := Assign(steps, s.monomials, level)
	if err != nil {
		return nil, err
	}
	md, err := NewMD(s.u, levels, scheme)
	if err != nil {
		return nil, err
	}
	return NewChain(s.u, md, tau, rng.New(seed, "hmc-test"))
}

var tight = action.Solves{MD: 1e-13, Action: 1e-13, MaxIter: 10000}

// TestReversibility integrates forward, flips the momenta, integrates back
// and requires the links and H to return.
func TestReversibility(t *testing.T) {
	for _, c := range []struct {
		spec
		scheme Scheme
		steps  []int
	}{
		{spec{[]int{8, 8}, []int{2, 1}, 1, 2, 0.26, true, []float64{0.01, 0.1}, 0.5}, Omelyan, []int{4, 3}},
		{spec{[]int{4, 4}, []int{1, 2}, 3, 6, 0.2, false, nil, 0.5}, Leapfrog, []int{6, 2}},
		{spec{[]int{4, 4, 4, 4}, []int{2, 1, 1, 1}, 3, 5.5, 0.12, true, []float64{0.1}, 0.3}, Omelyan, []int{3, 2}},
	} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			sys, err := newSystem(comm, c.spec, tight)
			if err != nil {
				return err
			}
			defer sys.close()
			ch, err := sys.chain(c.scheme, c.steps, 1, 5)
			if err != nil {
				return err
			}
			rec, err := ch.Run(true)
			if err != nil {
				return err
			}
			rev := rec.Reversibility
			if rev.MaxLinkChange > 1e-10 || math.Abs(rev.DeltaH) > 1e-8 {
				return fmt.Errorf("%v %v: reversed trajectory changes a link by %g and H by %g (ΔH = %g)", c.dims, c.scheme, rev.MaxLinkChange, rev.DeltaH, rec.DeltaH)
			}
			if math.Abs(rec.DeltaH) > 1 {
				return fmt.Errorf("%v %v: ΔH = %g: the integration is not accurate", c.dims, c.scheme, rec.DeltaH)
			}
			return nil
		})
	}
}

// TestThreeLevels runs a Hasenbusch chain on three time scales and checks
// reversibility and the force counts of merged kicks.
func TestThreeLevels(t *testing.T) {
	mpitest.Run(t, 1, func(comm mpi.Comm) error {
		sys, err := newSystem(comm, spec{[]int{8, 8}, []int{1, 1}, 1, 2, 0.26, true, []float64{0.01, 0.1}, 0.5}, tight)
		if err != nil {
			return err
		}
		defer sys.close()
		// gauge inside, the last monomial (μ = 0.1) in the middle, the ratios outside.
		levels, err := Assign([]int{4, 2, 3}, sys.monomials, []int{2, 0, 0, 1})
		if err != nil {
			return err
		}
		md, err := NewMD(sys.u, levels, Omelyan)
		if err != nil {
			return err
		}
		ch, err := NewChain(sys.u, md, 1, rng.New(2, "three"))
		if err != nil {
			return err
		}
		rec, err := ch.Run(true)
		if err != nil {
			return err
		}
		// Omelyan: two drifts per step; kicks merge across the steps of a
		// level and across the steps of the enclosing one, so a level
		// evaluates its force once more than it drifts per trajectory.
		drifts0 := 2 * 4
		drifts1 := drifts0 * 2 * 2
		drifts2 := drifts1 * 3 * 2
		want := []int{drifts0 + 1, drifts1 + 1, drifts2 + 1}
		for l := range want {
			if rec.Forces[l] != want[l] {
				return fmt.Errorf("force evaluations per level %v, want %v", rec.Forces, want)
			}
		}
		if rec.Reversibility.MaxLinkChange > 1e-10 || math.Abs(rec.Reversibility.DeltaH) > 1e-8 {
			return fmt.Errorf("three levels: reversibility %+v", *rec.Reversibility)
		}
		return nil
	})
}

// TestDeltaHScaling checks that halving the step size divides ⟨|ΔH|⟩ by
// about four for both schemes (second order), over trajectories from the
// same starts with the same momenta and pseudofermions.
func TestDeltaHScaling(t *testing.T) {
	for _, scheme := range []Scheme{Leapfrog, Omelyan} {
		mpitest.Run(t, 1, func(comm mpi.Comm) error {
			sys, err := newSystem(comm, spec{[]int{8, 8}, []int{1, 1}, 1, 2, 0.24, true, nil, 0.5}, tight)
			if err != nil {
				return err
			}
			defer sys.close()
			start := sys.u.Clone()
			mean := func(steps int) (float64, error) {
				sum := 0.0
				const n = 8
				for k := range n {
					sys.u.CopyFrom(start)
					ch, err := sys.chain(scheme, []int{steps}, 1, uint64(100+k))
					if err != nil {
						return 0, err
					}
					rec, err := ch.Run(false)
					if err != nil {
						return 0, err
					}
					sum += math.Abs(rec.DeltaH)
				}
				return sum / n, nil
			}
			coarse, err := mean(8)
			if err != nil {
				return err
			}
			fine, err := mean(16)
			if err != nil {
				return err
			}
			if r := coarse / fine; r < 3 || r > 5.5 {
				return fmt.Errorf("%v: ⟨|ΔH|⟩ = %g at 8 steps, %g at 16: ratio %g, want ≈ 4", scheme, coarse, fine, r)
			}
			return nil
		})
	}
}

// plaquettes runs thermalize + n trajectories and returns the plaquettes
// after each of the n, the acceptance and ⟨e^{−ΔH}⟩.
func plaquettes(ch *Chain, thermalize, n int) (p []float64, acc, expDH float64, err error) {
	for i := 0; i < thermalize+n; i++ {
		rec, err := ch.Run(false)
		if err != nil {
			return nil, 0, 0, err
		}
		if i < thermalize {
			continue
		}
		p = append(p, rec.Plaquette)
		if rec.Accepted {
			acc++
		}
		expDH += math.Exp(-rec.DeltaH)
	}
	return p, acc / float64(n), expDH / float64(n), nil
}

// TestPureGaugeU1Exact compares ⟨cos P⟩ of 2D U(1) from HMC with the exact
// finite-volume value.
func TestPureGaugeU1Exact(t *testing.T) {
	mpitest.Run(t, 2, func(comm mpi.Comm) error {
		sys, err := newSystem(comm, spec{[]int{8, 8}, []int{1, 2}, 1, 2, 0, false, nil, 0}, tight)
		if err != nil {
			return err
		}
		defer sys.close()
		ch, err := sys.chain(Omelyan, []int{5}, 1, 11)
		if err != nil {
			return err
		}
		p, acc, expDH, err := plaquettes(ch, 100, 3000)
		if err != nil {
			return err
		}
		a, err := measure.Gamma(p)
		if err != nil {
			return err
		}
		want, err := measure.U1Plaquette(2, 64)
		if err != nil {
			return err
		}
		if math.Abs(a.Mean.Value-want) > 3*a.Mean.Error {
			return fmt.Errorf("⟨cos P⟩ = %v (τ_int %v), exact %.6f", a.Mean, a.TauInt, want)
		}
		if acc < 0.8 || math.Abs(expDH-1) > 0.05 {
			return fmt.Errorf("acceptance %g, ⟨e^{−ΔH}⟩ = %g", acc, expDH)
		}
		return nil
	})
}

// withoutForce is the exact-determinant monomial with its force switched
// off: in a chain it turns the molecular dynamics into a pure-gauge proposal
// that the Metropolis step corrects exactly — a reference chain with the
// exact determinant.
type withoutForce struct{ *action.ExactDeterminant }

func (withoutForce) AddForce(*gauge.Algebra) error { return nil }

// TestDynamicalAgainstExactDeterminant runs 2D U(1) with Nf = 2 on 4×4 by
// pseudofermion HMC (unpreconditioned, even/odd, even/odd + Hasenbusch) and
// by a chain with the exact dense determinant, and requires the plaquettes
// to agree within errors — and to differ from pure gauge theory, so that the
// test can see a missing determinant.
func TestDynamicalAgainstExactDeterminant(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	const beta, kappa, n = 1.5, 0.25, 4000
	type result struct {
		name string
		a    measure.Autocorrelation
	}
	var results []result
	run := func(name string, s spec, exact bool, steps []int) {
		mpitest.Run(t, 1, func(comm mpi.Comm) error {
			sys, err := newSystem(comm, s, action.DefaultSolves)
			if err != nil {
				return err
			}
			defer sys.close()
			if exact {
				op, err := dslash.NewWilson(sys.u, kappa)
				if err != nil {
					return err
				}
				defer op.Close()
				det, err := action.NewExactDeterminant(comm, op)
				if err != nil {
					return err
				}
				sys.monomials = append(sys.monomials, withoutForce{det})
			}
			ch, err := sys.chain(Omelyan, steps, 1, 21)
			if err != nil {
				return err
			}
			p, acc, _, err := plaquettes(ch, 50, n)
			if err != nil {
				return err
			}
			a, err := measure.Gamma(p)
			if err != nil {
				return err
			}
			t.Logf("%-22s ⟨P⟩ = %v  τ_int %v  acceptance %.3f", name, a.Mean, a.TauInt, acc)
			results = append(results, result{name, a})
			return nil
		})
	}
	dims, grid := []int{4, 4}, []int{1, 1}
	run("exact determinant", spec{dims, grid, 1, beta, 0, false, nil, 0}, true, []int{4})
	run("unpreconditioned", spec{dims, grid, 1, beta, kappa, false, nil, 0}, false, []int{4, 2})
	run("even/odd", spec{dims, grid, 1, beta, kappa, true, nil, 0}, false, []int{4, 2})
	run("even/odd + Hasenbusch", spec{dims, grid, 1, beta, kappa, true, []float64{0.05, 0.5}, 0}, false, []int{4, 2})
	if len(results) != 4 {
		t.Fatal("a chain failed")
	}
	for i, a := range results {
		for _, b := range results[i+1:] {
			x, y := a.a.Mean, b.a.Mean
			if d := math.Abs(x.Value - y.Value); d > 3*math.Hypot(x.Error, y.Error) {
				t.Errorf("%s ⟨P⟩ = %v, %s ⟨P⟩ = %v: %.1fσ apart", a.name, x, b.name, y, d/math.Hypot(x.Error, y.Error))
			}
		}
	}
	ref := results[0].a.Mean
	pure, _ := measure.U1Plaquette(beta, 16)
	if d := math.Abs(ref.Value - pure); d < 5*ref.Error {
		t.Errorf("the determinant moves ⟨P⟩ from %.5f (pure gauge) to %v only: the test cannot see it", pure, ref)
	}
}

// TestResume checks that a chain rebuilt from saved links and the number of
// the next trajectory continues bit for bit.
func TestResume(t *testing.T) {
	mpitest.Run(t, 2, func(comm mpi.Comm) error {
		s := spec{[]int{8, 8}, []int{2, 1}, 1, 2, 0.25, true, []float64{0.1}, 0.4}
		sys, err := newSystem(comm, s, action.DefaultSolves)
		if err != nil {
			return err
		}
		defer sys.close()
		start := sys.u.Clone()
		ch, err := sys.chain(Omelyan, []int{4, 2}, 1, 9)
		if err != nil {
			return err
		}
		var saved *gauge.Field
		var want []Trajectory
		for i := range 6 {
			if i == 3 {
				saved = sys.u.Clone()
			}
			rec, err := ch.Run(false)
			if err != nil {
				return err
			}
			want = append(want, rec)
		}
		end := sys.u.Clone()
		// Resume at trajectory 3 on a fresh chain.
		sys.u.CopyFrom(saved)
		ch2, err := sys.chain(Omelyan, []int{4, 2}, 1, 9)
		if err != nil {
			return err
		}
		ch2.SetNext(3)
		for i := 3; i < 6; i++ {
			rec, err := ch2.Run(false)
			if err != nil {
				return err
			}
			if rec.Number != i || rec.DeltaH != want[i].DeltaH || rec.Accepted != want[i].Accepted {
				return fmt.Errorf("resumed trajectory %d: ΔH %v accepted %v, original %v %v", rec.Number, rec.DeltaH, rec.Accepted, want[i].DeltaH, want[i].Accepted)
			}
		}
		if d := sys.u.MaxDifference(end); d != 0 {
			return fmt.Errorf("resumed chain ends %g away from the original", d)
		}
		if d := start.MaxDifference(end); d == 0 {
			return fmt.Errorf("the chain did not move")
		}
		return nil
	})
}

// TestSameChainOnEveryGrid runs the same chain on several process grids:
// the accept/reject decisions must be equal and the plaquettes equal to
// rounding amplified by the dynamics (1e-9).
func TestSameChainOnEveryGrid(t *testing.T) {
	type run struct {
		plaq []float64
		acc  []bool
		dh   []float64
	}
	var runs []run
	var grids [][]int
	for _, grid := range [][]int{{1, 1}, {2, 1}, {1, 2}, {2, 2}, {4, 1}} {
		ranks := grid[0] * grid[1]
		mpitest.Run(t, ranks, func(comm mpi.Comm) error {
			sys, err := newSystem(comm, spec{[]int{8, 8}, grid, 1, 2, 0.26, true, []float64{0.02}, 0.5}, action.DefaultSolves)
			if err != nil {
				return err
			}
			defer sys.close()
			ch, err := sys.chain(Omelyan, []int{5, 2}, 1, 31)
			if err != nil {
				return err
			}
			var r run
			for range 10 {
				rec, err := ch.Run(false)
				if err != nil {
					return err
				}
				r.plaq = append(r.plaq, rec.Plaquette)
				r.acc = append(r.acc, rec.Accepted)
				r.dh = append(r.dh, rec.DeltaH)
			}
			if comm.Rank() == 0 {
				runs = append(runs, r)
				grids = append(grids, grid)
			}
			return nil
		})
	}
	for k := 1; k < len(runs); k++ {
		worstP, worstH := 0.0, 0.0
		for i := range runs[0].plaq {
			if runs[k].acc[i] != runs[0].acc[i] {
				t.Fatalf("grid %v: trajectory %d accepted %v, on 1×1 %v", grids[k], i, runs[k].acc[i], runs[0].acc[i])
			}
			worstP = max(worstP, math.Abs(runs[k].plaq[i]-runs[0].plaq[i]))
			worstH = max(worstH, math.Abs(runs[k].dh[i]-runs[0].dh[i]))
		}
		t.Logf("grid %v: max |ΔP| = %.2g, max |Δ(ΔH)| = %.2g over %d trajectories", grids[k], worstP, worstH, len(runs[0].plaq))
		if worstP > 1e-9 {
			t.Errorf("grid %v: plaquettes differ from 1×1 by %g", grids[k], worstP)
		}
	}
}
