package flow

import (
	"fmt"
	"math"
	"testing"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/internal/mpitest"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// setup is a flow, its target and a trainer on this rank.
type setup struct {
	geo     *nnlayers.Geometry
	sp      *gauge.Space
	op      *dslash.Wilson
	flow    *U1
	trainer *Trainer
	tape    *nnlayers.Tape
}

func (s *setup) close() {
	if s.op != nil {
		s.op.Close()
	}
	s.tape.Close()
	s.geo.Close()
	s.sp.Close()
}

type config struct {
	dims, grid []int
	replicas   int
	layers     int
	beta       float64
	kappa      float64 // > 0: exact determinant
	batch      int
	random     bool // non-zero last layers (a non-trivial flow)
}

func newSetup(world mpi.Comm, c config) (*setup, error) {
	lat, err := decomp.NewLattice(c.dims, c.grid, false)
	if err != nil {
		return nil, err
	}
	domain, replica, err := decomp.SplitWorld(world, lat)
	if err != nil {
		return nil, err
	}
	replica.Free()
	ly, err := lat.Layout(domain.Rank())
	if err != nil {
		return nil, err
	}
	s := &setup{geo: nnlayers.NewGeometry(domain, ly), tape: nnlayers.NewTape(2)}
	s.flow, err = NewU1(s.geo, U1Spec{Layers: c.layers, Hidden: []int{4}, Kernel: 3, Dilations: []int{1, 2},
		Transform: "spline", Bins: 4, Seed: 3, Gain: 0.5})
	if err != nil {
		return nil, err
	}
	if c.random {
		st := rng.New(4, "random-last").Stream(0)
		for _, p := range s.flow.Params() {
			for i := range p.Value {
				if p.Value[i] == 0 {
					p.Value[i] = 0.2 * st.Normal()
				}
			}
		}
	}
	s.sp, err = gauge.NewSpace(domain, ly, 1)
	if err != nil {
		return nil, err
	}
	u := s.sp.NewField()
	ms := []action.Monomial{action.NewGauge(u, c.beta)}
	if c.kappa > 0 {
		if s.op, err = dslash.NewWilson(u, c.kappa); err != nil {
			return nil, err
		}
		det, err := action.NewExactDeterminant(domain, s.op)
		if err != nil {
			return nil, err
		}
		ms = append(ms, det)
	}
	target, err := NewTarget(u, ms...)
	if err != nil {
		return nil, err
	}
	opt, err := nnlayers.NewAdam(s.flow.Params(), nnlayers.AdamConfig{LR: 1e-3, Eps: 1e-8})
	if err != nil {
		return nil, err
	}
	env := Env{World: world, Domain: domain, Replica: world.Rank() / domain.Size(), Replicas: world.Size() / domain.Size()}
	s.trainer, err = NewTrainer(env, s.flow, target, opt, s.tape, 5, c.batch)
	return s, err
}

// TestESSAndMetropolisKnownAnswers uses the identity flow (q = Haar):
// against a constant action every weight is equal (ESS = 1, every proposal
// accepted); against pure gauge theory the ESS is Z(β)²/Z(2β) exactly and
// the Metropolis chain and the reweighted average reproduce the exact
// plaquette.
func TestESSAndMetropolisKnownAnswers(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		flat, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 0, batch: 8})
		if err != nil {
			return err
		}
		defer flat.close()
		smp, err := flat.trainer.Sample(64, 16, "known-flat")
		if err != nil {
			return err
		}
		if e := ESS(smp.LogW); math.Abs(e-1) > 1e-12 {
			return fmt.Errorf("q = p: ESS = %v, want 1", e)
		}
		if _, acc := Metropolis(smp.LogW, rng.New(1, "mh")); acc != 63 {
			return fmt.Errorf("q = p: %d of 63 proposals accepted", acc)
		}
		const beta, n = 0.5, 40000
		s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: beta, batch: 8})
		if err != nil {
			return err
		}
		defer s.close()
		smp, err = s.trainer.Sample(n, 400, "known-gauge")
		if err != nil {
			return err
		}
		z1, _ := measure.U1LogPartition(beta, 16)
		z2, _ := measure.U1LogPartition(2*beta, 16)
		want := math.Exp(2*z1 - z2)
		got := ESS(smp.LogW)
		if math.Abs(got-want) > 0.05*want {
			return fmt.Errorf("identity flow, β = %g on 4×4: ESS = %.4f, exact %.4f", beta, got, want)
		}
		exact, _ := measure.U1Plaquette(beta, 16)
		chain, acc := Metropolis(smp.LogW, rng.New(2, "mh"))
		series := make([]float64, n)
		for i, k := range chain {
			series[i] = smp.Plaquette[k]
		}
		a, err := measure.Gamma(series)
		if err != nil {
			return err
		}
		if math.Abs(a.Mean.Value-exact) > 3*a.Mean.Error {
			return fmt.Errorf("Metropolis ⟨cos P⟩ = %v (acceptance %.2f), exact %.5f", a.Mean, float64(acc)/(n-1), exact)
		}
		if r := Reweight(smp.LogW, smp.Plaquette); math.Abs(r-exact) > 4*a.Mean.Error {
			return fmt.Errorf("reweighted ⟨cos P⟩ = %.5f, exact %.5f", r, exact)
		}
		return nil
	})
}

// TestGradientFiniteDifference compares the trainer's reparameterised
// gradient with central differences of the loss of a fixed step, for pure
// gauge theory and the exact-determinant Schwinger target.
func TestGradientFiniteDifference(t *testing.T) {
	for _, kappa := range []float64{0, 0.2} {
		mpitest.Run(t, 1, func(c mpi.Comm) error {
			s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 4, beta: 1.5, kappa: kappa, batch: 3, random: true})
			if err != nil {
				return err
			}
			defer s.close()
			if _, err := s.trainer.Gradient(7); err != nil {
				return err
			}
			ps := s.flow.Params()
			st := rng.New(8, "direction").Stream(0)
			dirs := make([][]float64, len(ps))
			want := 0.0
			for i, p := range ps {
				dirs[i] = make([]float64, p.Size())
				for j := range dirs[i] {
					dirs[i][j] = st.Normal()
					want += dirs[i][j] * p.Grad[j]
				}
			}
			loss := func(eps float64) (float64, error) {
				saved := make([][]float64, len(ps))
				for i, p := range ps {
					saved[i] = append([]float64(nil), p.Value...)
					for j := range p.Value {
						p.Value[j] += eps * dirs[i][j]
					}
				}
				l, err := s.trainer.Gradient(7)
				for i, p := range ps {
					copy(p.Value, saved[i])
				}
				return l, err
			}
			const eps = 1e-6
			lp, err := loss(eps)
			if err != nil {
				return err
			}
			lm, err := loss(-eps)
			if err != nil {
				return err
			}
			if fd := (lp - lm) / (2 * eps); math.Abs(fd-want) > 1e-5*(1+math.Abs(want)) {
				return fmt.Errorf("κ = %g: ⟨dir, ∇loss⟩ = %.10g, central difference %.10g", kappa, want, fd)
			}
			return nil
		})
	}
}

// TestInverseGivesLogQ checks that log q from the inverse of a sample
// equals log q from its forward pass.
func TestInverseGivesLogQ(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		s, err := newSetup(c, config{dims: []int{8, 8}, grid: []int{2, 1}, layers: 8, beta: 2, batch: 4, random: true})
		if err != nil {
			return err
		}
		defer s.close()
		tp := s.tape
		tp.Reset()
		tp.NoGrad = true
		z := s.flow.Prior(4, 0, rng.New(1, "inverse"))
		theta, logJ, err := s.flow.Forward(tp, z)
		if err != nil {
			return err
		}
		fwd, _ := s.trainer.logQ(logJ)
		thetaCopy := &nnlayers.Tensor{V: theta.V, B: theta.B, C: 2, Data: append([]float64(nil), theta.Data...)}
		zData := append([]float64(nil), z.Data...)
		tp.Reset()
		back, logJ2, err := s.flow.Inverse(tp, thetaCopy)
		if err != nil {
			return err
		}
		inv, _ := s.trainer.logQ(logJ2)
		for k := range fwd {
			if math.Abs(fwd[k]-inv[k]) > 1e-8*math.Abs(fwd[k]) {
				return fmt.Errorf("member %d: log q %.12g forward, %.12g from the inverse", k, fwd[k], inv[k])
			}
		}
		for i := range zData {
			if d := math.Abs(math.Remainder(back.Data[i]-zData[i], 2*math.Pi)); d > 1e-9 {
				return fmt.Errorf("inverse misses the prior sample by %g", d)
			}
		}
		return nil
	})
}

// TestDistributedFlow requires the samples, log q and the gradient on grids
// 2×1 and 2×2 and with two replicas to equal the one-rank values.
func TestDistributedFlow(t *testing.T) {
	type result struct {
		logq, logw []float64
		grad       []float64
	}
	run := func(grid []int, replicas int) *result {
		var res *result
		mpitest.Run(t, grid[0]*grid[1]*replicas, func(world mpi.Comm) error {
			s, err := newSetup(world, config{dims: []int{8, 8}, grid: grid, layers: 8, beta: 2, batch: 4, random: true})
			if err != nil {
				return err
			}
			defer s.close()
			smp, err := s.trainer.Sample(8, 4, "distributed")
			if err != nil {
				return err
			}
			if _, err := s.trainer.Gradient(3); err != nil {
				return err
			}
			r := &result{logq: smp.LogQ, logw: smp.LogW}
			for _, p := range s.flow.Params() {
				r.grad = append(r.grad, p.Grad...)
			}
			if world.Rank() == 0 {
				res = r
			}
			return nil
		})
		return res
	}
	ref := run([]int{1, 1}, 1)
	if ref == nil {
		return
	}
	for _, c := range []struct {
		grid     []int
		replicas int
	}{{[]int{2, 1}, 1}, {[]int{2, 2}, 1}, {[]int{1, 1}, 2}} {
		got := run(c.grid, c.replicas)
		if got == nil {
			continue
		}
		worst := 0.0
		for i := range ref.logq {
			worst = max(worst, math.Abs(got.logq[i]-ref.logq[i])/math.Abs(ref.logq[i]), math.Abs(got.logw[i]-ref.logw[i])/math.Abs(ref.logw[i]))
		}
		worstG := 0.0
		for i := range ref.grad {
			worstG = max(worstG, math.Abs(got.grad[i]-ref.grad[i])/(1e-3+math.Abs(ref.grad[i])))
		}
		t.Logf("grid %v × %d replicas: max relative |Δ log q|, |Δ log w| %.2g; gradient %.2g", c.grid, c.replicas, worst, worstG)
		if worst > 1e-12 || worstG > 1e-9 {
			t.Errorf("grid %v × %d replicas: log q/log w differ by %g, gradients by %g", c.grid, c.replicas, worst, worstG)
		}
	}
}
