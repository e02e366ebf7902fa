package flow

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/internal/allocstest"
	"pfmpi/internal/mpitest"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// setup is a flow, its target and a trainer on this rank.
type setup struct {
	geo     *nnlayers.Geometry
	sp      *gauge.Space
	op      *dslash.Wilson
	flow    GaugeFlow
	pf      *pfflow.Model
	trainer *Trainer
	extra   []*targetParts
	tape    *nnlayers.Tape
	closers []func()
}

func (s *setup) close() {
	s.trainer.Close()
	for _, c := range s.closers {
		c()
	}
	for _, p := range s.extra {
		if p.op != nil {
			p.op.Close()
		}
		p.sp.Close()
	}
	if s.pf != nil {
		s.pf.Close()
	}
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
	pf         *pfConfig
	workers    bool // evaluate members in parallel on target copies
	pathGrad   bool // path gradient of the conditional flows
	copies     int  // copies of the model for micro-batches at once
	nc         int  // 3: SU(3) (spectral flow), else U(1)
	strings    bool // SU(3): string layers
	marginal   bool // the two marginal string layers first, the column one with bridges
	holonomy   bool // U(1): the holonomy layer last
}

// pfConfig makes a joint model: pseudofermion monomials and their flows.
type pfConfig struct {
	eo        bool
	shifts    []float64
	layers    int
	parts     []pfflow.Partition
	regulator float64
}

func newSetup(world mpi.Comm, c config) (*setup, error) { return newSetupWorkers(world, 2, c) }

// newSetupWorkers is newSetup with a tape of the given number of goroutines.
func newSetupWorkers(world mpi.Comm, workers int, c config) (*setup, error) {
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
	s := &setup{geo: nnlayers.NewGeometry(domain, ly), tape: nnlayers.NewTape(workers)}
	if s.flow, err = newGaugeFlow(s.geo, c); err != nil {
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
	target, parts, err := makeTarget(domain, ly, c)
	if err != nil {
		return nil, err
	}
	s.sp, s.op = parts.sp, parts.op
	params := s.flow.Params()
	if c.pf != nil {
		if s.pf, err = newPFModel(s.geo, c, target.Monomials()); err != nil {
			return nil, err
		}
		params = append(append(nnlayers.Params(nil), params...), s.pf.Params()...)
	}
	opt, err := nnlayers.NewAdam(params, nnlayers.AdamConfig{LR: 1e-3, Eps: 1e-8})
	if err != nil {
		return nil, err
	}
	env := Ranks{World: world, Domain: domain, Replica: world.Rank() / domain.Size(), Replicas: world.Size() / domain.Size()}
	if s.trainer, err = NewTrainer(env, s.flow, target, opt, s.tape, 5, c.batch); err != nil {
		return nil, err
	}
	if s.pf != nil {
		if err = s.trainer.SetPseudofermionFlows(s.pf); err != nil {
			return nil, err
		}
		s.trainer.SetPathGradient(c.pathGrad)
	}
	if c.workers {
		var ts []*Target
		for range s.tape.Workers() {
			t, p, err := makeTarget(mpi.Self(), ly, c)
			if err != nil {
				return nil, err
			}
			s.extra = append(s.extra, p)
			ts = append(ts, t)
		}
		err = s.trainer.SetTargetWorkers(ts)
	}
	if err == nil && c.copies > 0 {
		err = s.addCopies(ly, c)
	}
	return s, err
}

// newGaugeFlow is the gauge flow of c.
func newGaugeFlow(geo *nnlayers.Geometry, c config) (GaugeFlow, error) {
	var bridge int
	if c.marginal {
		bridge = 2
	}
	if c.nc == 3 {
		return NewSU3(geo, SU3Spec{Layers: c.layers, Hidden: []int{4}, Kernel: 3, Dilations: []int{1, 2},
			Modes: 2, Steps: 2, Bound: 0.9, Seed: 3, Gain: 0.5, Strings: c.strings, Marginal: c.marginal, Bridge: bridge})
	}
	return NewU1(geo, U1Spec{Layers: c.layers, Hidden: []int{4}, Kernel: 3, Dilations: []int{1, 2},
		Transform: "spline", Bins: 4, Seed: 3, Gain: 0.5, Marginal: c.marginal, Bridge: bridge, Holonomy: c.holonomy})
}

// newPFModel is the pseudofermion flows of c.
func newPFModel(geo *nnlayers.Geometry, c config, monomials int) (*pfflow.Model, error) {
	npt := 3
	if c.pf.eo {
		npt = 2
	}
	return pfflow.New(geo, pfflow.Spec{Nc: max(c.nc, 1), EvenOdd: c.pf.eo, Monomials: monomials, Layers: c.pf.layers,
		Partitions: c.pf.parts, NPT: npt, Hidden: 2, ContextHidden: 3, Seed: 9, Gain: 0.5})
}

// addCopies gives the trainer c.copies copies of the model, each with a
// tape of one goroutine; their parameters start different (another seed
// would do) and are made to share the model's by SetCopies.
func (s *setup) addCopies(ly *decomp.Layout, c config) error {
	var cs []Copy
	for range c.copies {
		geo := nnlayers.NewGeometry(mpi.Self(), ly)
		s.closers = append(s.closers, geo.Close)
		f, err := newGaugeFlow(geo, c)
		if err != nil {
			return err
		}
		for _, p := range f.Params() {
			for i := range p.Value {
				p.Value[i] = 7 // must be replaced by the model's values
			}
		}
		cp := Copy{Flow: f, Tape: nnlayers.NewTape(1)}
		s.closers = append(s.closers, cp.Tape.Close)
		target, parts, err := makeTarget(mpi.Self(), ly, c)
		if err != nil {
			return err
		}
		s.extra = append(s.extra, parts)
		cp.Target = target
		if c.pf != nil {
			if cp.PF, err = newPFModel(geo, c, target.Monomials()); err != nil {
				return err
			}
			s.closers = append(s.closers, cp.PF.Close)
		}
		cs = append(cs, cp)
	}
	return s.trainer.SetCopies(cs)
}

type targetParts struct {
	sp *gauge.Space
	op *dslash.Wilson
}

// makeTarget builds the target of c on comm.
func makeTarget(comm mpi.Comm, ly *decomp.Layout, c config) (*Target, *targetParts, error) {
	sp, err := gauge.NewSpace(comm, ly, max(c.nc, 1))
	if err != nil {
		return nil, nil, err
	}
	p := &targetParts{sp: sp}
	u := sp.NewField()
	ms := []action.Monomial{action.NewGauge(u, c.beta)}
	var det *action.ExactDeterminant
	if c.kappa > 0 {
		if p.op, err = dslash.NewWilson(u, c.kappa); err != nil {
			return nil, nil, err
		}
		if comm.Size() == 1 {
			if det, err = action.NewExactDeterminant(comm, p.op); err != nil {
				return nil, nil, err
			}
		}
		if c.pf == nil {
			ms = append(ms, det)
		}
	}
	target, err := NewTarget(u, ms...)
	if err != nil || c.pf == nil {
		return target, p, err
	}
	tight := action.Solves{MD: 1e-12, Action: 1e-12, MaxIter: 10000}
	train, err := action.NewPseudofermions(comm, p.op, action.Fermions{EvenOdd: c.pf.eo, Shifts: c.pf.shifts, Regulator: c.pf.regulator, Solves: tight})
	if err != nil {
		return nil, nil, err
	}
	sample, err := action.NewPseudofermions(comm, p.op, action.Fermions{EvenOdd: c.pf.eo, Shifts: c.pf.shifts, Solves: tight})
	if err != nil {
		return nil, nil, err
	}
	if err := target.SetPseudofermions(train, sample); err != nil {
		return nil, nil, err
	}
	if det != nil {
		target.SetMarginal(det)
	}
	return target, p, nil
}

// TestESSAndMetropolisKnownAnswers uses the identity flow (q = Haar):
// against a constant action every weight is equal (ESS = 1, every proposal
// accepted; U(1) and SU(3)); against pure gauge theory the ESS is Z(β)²/Z(2β) exactly and
// the Metropolis chain and the reweighted average reproduce the exact
// plaquette.
func TestESSAndMetropolisKnownAnswers(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		for _, nc := range []int{1, 3} { // U(1) and SU(3) Haar measure
			flat, err := newSetup(c, config{nc: nc, dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 0, batch: 8})
			if err != nil {
				return err
			}
			smp, err := flat.trainer.Sample(64, 16, "known-flat")
			flat.close()
			if err != nil {
				return err
			}
			if e := ESS(smp.LogW); math.Abs(e-1) > 1e-12 {
				return fmt.Errorf("Nc = %d, q = p: ESS = %v, want 1", nc, e)
			}
			if _, acc := Metropolis(smp.LogW, rng.New(1, "mh")); acc != 63 {
				return fmt.Errorf("Nc = %d, q = p: %d of 63 proposals accepted", nc, acc)
			}
		}
		const beta, n = 0.5, 40000
		s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: beta, batch: 8})
		if err != nil {
			return err
		}
		defer s.close()
		smp, err := s.trainer.Sample(n, 400, "known-gauge")
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
// gauge theory, the exact-determinant (marginal) target and joint models,
// for U(1) and SU(3).
func TestGradientFiniteDifference(t *testing.T) {
	cases := []config{
		{kappa: 0},
		{kappa: 0.2},
		{kappa: 0.2, pf: &pfConfig{layers: 2, parts: []pfflow.Partition{pfflow.Checkerboard}, regulator: 1e-3}},
		{kappa: 0.2, pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}},
		{nc: 3, kappa: 0.2},
		{nc: 3, kappa: 0.2, pf: &pfConfig{eo: true, shifts: []float64{0.3}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}, regulator: 1e-3}},
		// Marginal string layers with bridge plaquettes first.
		{marginal: true},
		{kappa: 0.2, marginal: true, pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}},
		{nc: 3, kappa: 0.2, strings: true, marginal: true},
		// The U(1) holonomy layer last.
		{kappa: 0.2, holonomy: true},
		{kappa: 0.2, marginal: true, holonomy: true, pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}},
	}
	for _, cs := range cases {
		mpitest.Run(t, 1, func(c mpi.Comm) error {
			kappa := cs.kappa
			cs.dims, cs.grid, cs.layers, cs.beta, cs.batch, cs.random = []int{4, 4}, []int{1, 1}, 4, 1.5, 3, true
			s, err := newSetup(c, cs)
			if err != nil {
				return err
			}
			defer s.close()
			want, fd, err := lossGradient(s.trainer, 7)
			if err != nil {
				return err
			}
			t.Logf("Nc = %d κ = %g joint %v marginal %v holonomy %v: ⟨dir, ∇loss⟩ = %.10g, central difference %.10g", max(cs.nc, 1), kappa, cs.pf != nil, cs.marginal, cs.holonomy, want, fd)
			if math.Abs(fd-want) > 1e-5*(1+math.Abs(want)) || want == 0 {
				return fmt.Errorf("Nc = %d κ = %g joint %v: ⟨dir, ∇loss⟩ = %.10g, central difference %.10g", max(cs.nc, 1), kappa, cs.pf != nil, want, fd)
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
		var fwdBuf, invBuf []float64
		fwd := s.trainer.main.logQ(logJ, &fwdBuf)
		thetaCopy := &nnlayers.Tensor{V: theta.V, B: theta.B, C: 2, Data: append([]float64(nil), theta.Data...)}
		zData := append([]float64(nil), z.Data...)
		tp.Reset()
		back, logJ2, err := s.flow.Inverse(tp, thetaCopy)
		if err != nil {
			return err
		}
		inv := s.trainer.main.logQ(logJ2, &invBuf)
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
	for _, joint := range []bool{false, true} {
		testDistributed(t, joint, 1)
	}
	testDistributed(t, true, 3)
}

func testDistributed(t *testing.T, joint bool, nc int) {
	type result struct {
		logq, logw []float64
		grad       []float64
	}
	cfg := config{dims: []int{8, 8}, layers: 8, beta: 2, batch: 4, random: true, nc: nc}
	if joint {
		cfg.kappa = 0.22
		cfg.pf = &pfConfig{eo: true, shifts: []float64{0.05}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}, regulator: 1e-4}
	}
	run := func(grid []int, replicas int, workers bool) *result {
		var res *result
		mpitest.Run(t, grid[0]*grid[1]*replicas, func(world mpi.Comm) error {
			c := cfg
			c.grid, c.workers = grid, workers
			s, err := newSetup(world, c)
			if err != nil {
				return err
			}
			defer s.close()
			smp, err := s.trainer.Sample(8, 4, "distributed")
			if err != nil {
				return err
			}
			// The same proposals in two ranges with other batch sizes (a
			// resumed sample phase) are the same bit for bit.
			parts, err := s.trainer.SampleRange(0, 4, 2*replicas, 1, "distributed")
			if err != nil {
				return err
			}
			rest, err := s.trainer.SampleRange(4, 8, 4*replicas, 1, "distributed")
			if err != nil {
				return err
			}
			if err := parts.Append(rest); err != nil {
				return err
			}
			if !slices.Equal(parts.LogW, smp.LogW) || !slices.Equal(parts.LogQ, smp.LogQ) || !slices.Equal(parts.Plaquette, smp.Plaquette) {
				return fmt.Errorf("samples in ranges [0, 4) + [4, 8) differ from [0, 8):\n%v\n%v", parts.LogW, smp.LogW)
			}
			// Batches of 3 do not split evenly over 2 or 4 replicas (some
			// idle in the last): the same proposals still.
			odd, err := s.trainer.SampleRange(1, 8, 3, 1, "distributed")
			if err != nil {
				return err
			}
			if !slices.Equal(odd.LogW, smp.LogW[1:]) {
				return fmt.Errorf("samples [1, 8) in batches of 3 differ:\n%v\n%v", odd.LogW, smp.LogW[1:])
			}
			if world.Size() == 1 {
				// A batch of 40 is drawn in chunks (sampleRows / 64 sites =
				// 32 and 8 proposals): the same proposals as batches of 20.
				big, err := s.trainer.Sample(40, 40, "chunks")
				if err != nil {
					return err
				}
				small, err := s.trainer.Sample(40, 20, "chunks")
				if err != nil {
					return err
				}
				if !slices.Equal(big.LogW, small.LogW) || !slices.Equal(big.Charge, small.Charge) {
					return fmt.Errorf("a batch of 40 drawn in chunks differs from batches of 20:\n%v\n%v", big.LogW, small.LogW)
				}
			}
			if _, err := s.trainer.Gradient(3); err != nil {
				return err
			}
			r := &result{logq: smp.LogQ, logw: smp.LogW}
			for _, x := range smp.LogRatio {
				r.logw = append(r.logw, x...)
			}
			for _, p := range s.trainer.Params() {
				r.grad = append(r.grad, p.Grad...)
			}
			if world.Rank() == 0 {
				res = r
			}
			return nil
		})
		return res
	}
	ref := run([]int{1, 1}, 1, false)
	if ref == nil {
		return
	}
	for _, c := range []struct {
		grid     []int
		replicas int
		workers  bool
	}{
		{[]int{2, 1}, 1, false}, {[]int{1, 2}, 1, false}, {[]int{1, 1}, 2, false}, // 2 ranks
		{[]int{2, 2}, 1, false}, {[]int{2, 1}, 2, false}, {[]int{1, 1}, 4, false}, // 4 ranks
		{[]int{1, 1}, 1, true}, {[]int{1, 1}, 2, true}, // parallel member evaluation
	} {
		got := run(c.grid, c.replicas, c.workers)
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
		t.Logf("Nc = %d joint %v grid %v × %d replicas, parallel members %v: max relative |Δ log q|, |Δ log w| %.2g; gradient %.2g", nc, joint, c.grid, c.replicas, c.workers, worst, worstG)
		if c.workers && c.replicas == 1 && (worst != 0 || worstG != 0) {
			t.Errorf("joint %v: parallel member evaluation changes the results: %g, %g", joint, worst, worstG)
		}
		if worst > 1e-12 || worstG > 1e-9 {
			t.Errorf("joint %v grid %v × %d replicas: log q/log w differ by %g, gradients by %g", joint, c.grid, c.replicas, worst, worstG)
		}
	}
}

// TestJointIdentityWeights: with identity gauge and conditional flows the
// joint log weight of a proposal is, computed independently from the prior
// draws, −S_g(z) + N_links log 2π − Σ_i [S_i(χ_i) − χ_i†χ_i − N log π].
func TestJointIdentityWeights(t *testing.T) {
	for _, eo := range []bool{false, true} {
		mpitest.Run(t, 2, func(c mpi.Comm) error {
			s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{2, 1}, layers: 2, beta: 1.7, kappa: 0.2, batch: 2,
				pf: &pfConfig{eo: eo, shifts: []float64{0.05, 0.3}, layers: 0}})
			if err != nil {
				return err
			}
			defer s.close()
			const n = 4
			smp, err := s.trainer.SampleDraws(n, 2, 2, "identity")
			if err != nil {
				return err
			}
			tight := action.Solves{MD: 1e-12, Action: 1e-12, MaxIter: 10000}
			domain := s.geo.Comm()
			pfs, err := action.NewPseudofermions(domain, s.op, action.Fermions{EvenOdd: eo, Shifts: []float64{0.05, 0.3}, Solves: tight})
			if err != nil {
				return err
			}
			u := s.op.Gauge()
			z := s.flow.Prior(n, 0, rng.New(5, "identity"))
			ly := s.geo.Layout()
			angles := make([]float64, 2*ly.Volume())
			logLinks := float64(2*ly.Lattice().GlobalVolume()) * math.Log(2*math.Pi)
			for k := range n {
				for x := 0; x < z.V; x++ {
					angles[2*x], angles[2*x+1] = z.Data[z.At(x, k, 0)], z.Data[z.At(x, k, 1)]
				}
				u.SetAngles(angles)
				sg := u.Action(1.7)
				want := -sg + logLinks
				for i, p := range pfs {
					chi := s.pf.Conditional(i).Prior(n, 0, rng.New(5, "identity-pf").Derive(uint64(i)).Derive(0))
					vec := make([]complex128, p.Len())
					per := p.Len() / (ly.Volume() / map[bool]int{false: 1, true: 2}[eo])
					norm := 0.0
					for x := 0; x < len(vec)/per; x++ {
						for a := range per {
							re, im := chi.Data[chi.At(x, k, 2*a)], chi.Data[chi.At(x, k, 2*a+1)]
							vec[x*per+a] = complex(re, im)
							norm += re*re + im*im
						}
					}
					norm = mpi.SumFloat64(domain, norm)
					si, err := p.ActionOf(vec)
					if err != nil {
						return err
					}
					want -= si - norm - float64(s.pf.Dof())*math.Log(math.Pi)
				}
				if math.Abs(smp.LogW[k]-want) > 1e-9*math.Abs(want) {
					return fmt.Errorf("eo %v member %d: joint log w = %.12g, independently %.12g", eo, k, smp.LogW[k], want)
				}
			}
			return nil
		})
	}
}

// TestNpfEstimatorUnbiased: for any conditional flow, the mean over draws
// of e^{LogRatio} estimates π^N / det K_i (Eq. 41), so with many draws the
// Eq. 43 weight approaches −S_g − log q(U) + N_tot log π + log det DD†,
// the exact determinant, within its statistical error. κ is small so that
// the importance weights have finite variance (the covariance of p(φ|U),
// (M + σ), must stay below twice that of q for the estimator's variance to
// exist).
func TestNpfEstimatorUnbiased(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 1.7, kappa: 0.12, batch: 2,
			pf: &pfConfig{eo: true, shifts: []float64{0.2}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}})
		if err != nil {
			return err
		}
		defer s.close()
		// A non-trivial but moderate flow: shrink the random initialisation.
		for _, p := range s.pf.Params() {
			for i := range p.Value {
				p.Value[i] *= 0.3
			}
		}
		const draws = 2000
		smp, err := s.trainer.SampleDraws(2, 2, draws, "npf")
		if err != nil {
			return err
		}
		est := smp.LogWNpf(draws)
		for k := range 2 {
			variance := 0.0
			for i := range smp.Monomials {
				r := make([]float64, draws)
				for j := range draws {
					r[j] = smp.LogRatio[i*draws+j][k]
				}
				m := LogSumExp(r) - math.Log(draws)
				mean2 := 0.0
				for _, x := range r {
					mean2 += math.Exp(2 * (x - m))
				}
				variance += (mean2/draws - 1) / draws // relative variance of the mean
			}
			sigma := math.Sqrt(variance)
			got := est[k] + smp.Action[k] + smp.LogQ[k] - float64(smp.Monomials)*float64(s.pf.Dof())*math.Log(math.Pi)
			want := smp.LogWMarginal[k] + smp.Action[k] + smp.LogQ[k] // log det DD†
			if sigma > 0.1 || math.Abs(got-want) > 4*sigma {
				return fmt.Errorf("member %d: Npf estimate of log det DD† = %.5f ± %.5f, exact %.5f", k, got, sigma, want)
			}
			t.Logf("member %d: Npf = %d estimate of log det DD† %.5f ± %.5f, exact %.5f", k, draws, got, sigma, want)
		}
		return nil
	})
}

// lossGradient returns ⟨dir, ∇loss⟩ of training step n along a random
// direction of all parameters and the central difference of the loss.
func lossGradient(tr *Trainer, n int) (want, fd float64, err error) {
	if _, err := tr.Gradient(n); err != nil {
		return 0, 0, err
	}
	ps := tr.Params()
	st := rng.New(8, "direction").Stream(0)
	dirs := make([][]float64, len(ps))
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
		l, err := tr.Gradient(n)
		for i, p := range ps {
			copy(p.Value, saved[i])
		}
		return l, err
	}
	const eps = 1e-6
	lp, err := loss(eps)
	if err != nil {
		return 0, 0, err
	}
	lm, err := loss(-eps)
	if err != nil {
		return 0, 0, err
	}
	return want, (lp - lm) / (2 * eps), nil
}

// TestStepDoesNotAllocate: once the pools are sized, a training step of a
// joint model (micro-batches with a partial last one, members evaluated in
// parallel) allocates nothing.
func TestStepDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		nc, copies int
		pathGrad   bool
	}{{1, 0, false}, {3, 0, false}, {1, 2, false}, {1, 2, true}, {3, 0, true}} {
		nc := tc.nc
		mpitest.Run(t, 1, func(c mpi.Comm) error {
			parts := []pfflow.Partition{pfflow.Rows, pfflow.Spin}
			s, err := newSetup(c, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 1, kappa: 0.2, batch: 5, random: true, nc: nc,
				workers: true, copies: tc.copies, pathGrad: tc.pathGrad, pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: parts, regulator: 1e-5}})
			if err != nil {
				return err
			}
			defer s.close()
			s.trainer.SetMicroBatch(2)
			n := 0
			var stepErr error
			step := func() {
				if _, err := s.trainer.Step(n); err != nil && stepErr == nil {
					stepErr = err
				}
				n++
			}
			for range 6 { // the pools and every goroutine's workspace sized
				step()
			}
			allocs := allocstest.PerRun(5, step)
			if stepErr != nil {
				return stepErr
			}
			if allocs > 0 {
				return fmt.Errorf("Nc = %d, %d copies, path gradient %v: %v allocations per training step", nc, tc.copies, tc.pathGrad, allocs)
			}
			return nil
		})
	}
}

// TestGoroutinesDoNotChangeTheStep: a training step's loss, gradients and
// updated parameters are the same bit for bit on 1 and 3 goroutines (tasks are fixed by the
// sizes, sums run in a fixed order), with 2 or 3 copies of the model
// running micro-batches at once (a partial round included), and with any
// micro-batch to rounding.
func TestGoroutinesDoNotChangeTheStep(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		type result struct {
			loss          float64
			grads, values []float64 // values after the optimizer's step
		}
		pathGrad := false
		run := func(workers, micro, copies int) (result, error) {
			s, err := newSetupWorkers(c, workers, config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 1, kappa: 0.2, batch: 6, random: true,
				workers: true, copies: copies, pathGrad: pathGrad, pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows}, regulator: 1e-5}})
			if err != nil {
				return result{}, err
			}
			defer s.close()
			s.trainer.SetMicroBatch(micro)
			st, err := s.trainer.Step(3) // the optimizer's update in shares on the copies
			if err != nil {
				return result{}, err
			}
			r := result{loss: st.Loss}
			for _, p := range s.trainer.Params() {
				r.grads = append(r.grads, p.Grad...)
				r.values = append(r.values, p.Value...)
			}
			return r, nil
		}
		same := func(what string, a, b result) error {
			if a.loss != b.loss {
				return fmt.Errorf("loss %v on 1 goroutine, %v %s", a.loss, b.loss, what)
			}
			for i := range a.grads {
				if a.grads[i] != b.grads[i] {
					return fmt.Errorf("gradient %d: %v on 1 goroutine, %v %s", i, a.grads[i], b.grads[i], what)
				}
			}
			for i := range a.values {
				if a.values[i] != b.values[i] {
					return fmt.Errorf("parameter %d after the step: %v on 1 goroutine, %v %s", i, a.values[i], b.values[i], what)
				}
			}
			return nil
		}
		for _, micro := range []int{4, 2, -2} { // −2: micro-batch 2 with the path gradient
			pathGrad = micro < 0
			micro = max(micro, -micro)
			one, err := run(1, micro, 0)
			if err != nil {
				return err
			}
			three, err := run(3, micro, 0)
			if err != nil {
				return err
			}
			if err := same(fmt.Sprintf("on 3 (micro-batch %d)", micro), one, three); err != nil {
				return err
			}
			for _, copies := range []int{2, 3} {
				cs, err := run(1, micro, copies)
				if err != nil {
					return err
				}
				if err := same(fmt.Sprintf("with %d copies (micro-batch %d)", copies, micro), one, cs); err != nil {
					return err
				}
			}
		}
		one, err := run(1, 4, 0)
		if err != nil {
			return err
		}
		whole, err := run(2, 6, 0)
		if err != nil {
			return err
		}
		if d := math.Abs(whole.loss - one.loss); d > 1e-12*(1+math.Abs(one.loss)) {
			return fmt.Errorf("loss %v in micro-batches of 4, %v in one batch", one.loss, whole.loss)
		}
		for i := range one.grads {
			if d := math.Abs(whole.grads[i] - one.grads[i]); d > 1e-10*(1+math.Abs(one.grads[i])) {
				return fmt.Errorf("gradient %d: %v in micro-batches of 4, %v in one batch", i, one.grads[i], whole.grads[i])
			}
		}
		return nil
	})
}

// TestPathGradientUnbiased: the path gradient of the conditional flows
// (Trainer.SetPathGradient) and the reparameterisation gradient differ draw
// by draw but agree in expectation. Both are taken on the same draws
// (common random numbers): their difference, the score term minus the
// log-Jacobian gradient, must average to zero along random directions of
// all parameters (gauge and pseudofermion flows) within its error.
func TestPathGradientUnbiased(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		cfg := config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 2, beta: 1.2, kappa: 0.2, batch: 2, random: true,
			pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}}
		s, err := newSetup(c, cfg)
		if err != nil {
			return err
		}
		defer s.close()
		ps := s.trainer.Params()
		const dirs, draws = 4, 300
		st := rng.New(9, "directions").Stream(0)
		dir := make([][]float64, dirs)
		for d := range dir {
			for _, p := range ps {
				for range p.Size() {
					dir[d] = append(dir[d], st.Normal())
				}
			}
		}
		project := func(d int) float64 {
			x, i := 0.0, 0
			for _, p := range ps {
				for _, g := range p.Grad {
					x += dir[d][i] * g
					i++
				}
			}
			return x
		}
		var sum, sum2, scale [dirs]float64
		for n := range draws {
			var g [2][dirs]float64
			for e, path := range []bool{false, true} {
				s.trainer.SetPathGradient(path)
				if _, err := s.trainer.Gradient(n); err != nil {
					return err
				}
				for d := range dirs {
					g[e][d] = project(d)
				}
			}
			for d := range dirs {
				x := g[1][d] - g[0][d]
				sum[d] += x
				sum2[d] += x * x
				scale[d] += math.Abs(g[0][d]) / draws
			}
		}
		for d := range dirs {
			mean := sum[d] / draws
			sd := math.Sqrt((sum2[d]/draws - mean*mean) / (draws - 1))
			t.Logf("direction %d: mean difference %.4g ± %.4g (|reparameterisation gradient| %.4g)", d, mean, sd, scale[d])
			if sd < 1e-3*scale[d] {
				return fmt.Errorf("direction %d: the estimators agree draw by draw (spread %g): the path gradient is not on", d, sd)
			}
			if math.Abs(mean) > 4*sd {
				return fmt.Errorf("direction %d: path − reparameterisation gradient = %.4g ± %.4g, not zero", d, mean, sd)
			}
		}
		return nil
	})
}

// TestU1FlowCommutesWithTwists: multiplying the time links of the slice
// x_0 = 0 by e^{iα} and the space links of the column x_1 = 0 by e^{iβ}
// changes the two torus holonomies and no plaquette. Every U(1) layer
// shifts links by functions of plaquettes, so a flow (here with random
// parameters, with and without the marginal string layers) commutes with
// the twist and keeps its log-Jacobian: f(twist z) = twist f(z). With the
// Haar prior this makes q(holonomies | plaquettes) uniform for every
// trained flow — the ceiling measured by experiments/time-to-ess/holonomy.
func TestU1FlowCommutesWithTwists(t *testing.T) {
	for _, marginal := range []bool{false, true} {
		mpitest.Run(t, 1, func(c mpi.Comm) error {
			s, err := newSetup(c, config{dims: []int{8, 8}, grid: []int{1, 1}, layers: 6, beta: 2, batch: 3, random: true, marginal: marginal})
			if err != nil {
				return err
			}
			defer s.close()
			ly := s.geo.Layout()
			twist := func(theta *nnlayers.Tensor, alpha, beta float64) {
				x := make([]int, 2)
				for site := range theta.V {
					ly.GlobalCoord(site, x)
					for b := range theta.B {
						if x[0] == 0 {
							theta.Data[theta.At(site, b, 0)] += alpha
						}
						if x[1] == 0 {
							theta.Data[theta.At(site, b, 1)] += beta
						}
					}
				}
			}
			tp := s.tape
			tp.NoGrad = true
			z := s.flow.Prior(3, 0, rng.New(5, "twist"))
			zt := &nnlayers.Tensor{V: z.V, B: z.B, C: z.C, Data: append([]float64(nil), z.Data...)}
			const alpha, beta = 1.1, -2.3
			twist(zt, alpha, beta)
			tp.Reset()
			theta, logJ, err := s.flow.Forward(tp, z)
			if err != nil {
				return err
			}
			want := &nnlayers.Tensor{V: theta.V, B: theta.B, C: theta.C, Data: append([]float64(nil), theta.Data...)}
			ld := append([]float64(nil), logJ.Data...)
			twist(want, alpha, beta)
			moved := 0.0
			for i := range want.Data {
				moved = math.Max(moved, math.Abs(math.Remainder(want.Data[i]-z.Data[i], 2*math.Pi)))
			}
			if moved < 0.1 {
				return fmt.Errorf("marginal %v: the flow moves links by at most %g: not a test", marginal, moved)
			}
			tp.Reset()
			got, logJt, err := s.flow.Forward(tp, zt)
			if err != nil {
				return err
			}
			for i := range got.Data {
				if d := math.Abs(math.Remainder(got.Data[i]-want.Data[i], 2*math.Pi)); d > 1e-9 {
					return fmt.Errorf("marginal %v: f(twist z) and twist f(z) differ by %g at %d", marginal, d, i)
				}
			}
			for i := range ld {
				if d := math.Abs(logJt.Data[i] - ld[i]); d > 1e-9*(1+math.Abs(ld[i])) {
					return fmt.Errorf("marginal %v: log J %g, twisted %g", marginal, ld[i], logJt.Data[i])
				}
			}
			return nil
		})
	}
}

// TestGaugeTrainer: with SetGaugeTrainer the gauge flow of a joint model
// follows the marginal trainer exactly — after three steps its parameters
// equal those of a flow trained alone against the exact determinant, the
// conditional flows notwithstanding — while the first step moves the
// conditional flows exactly as the joint trainer alone does.
func TestGaugeTrainer(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		joint := config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 4, beta: 1.5, kappa: 0.2, batch: 3, random: true, holonomy: true,
			pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}}
		marginal := joint
		marginal.pf = nil
		var ss [3]*setup
		for i, cf := range []config{joint, marginal, joint} {
			s, err := newSetup(c, cf)
			if err != nil {
				return err
			}
			defer s.close()
			ss[i] = s
		}
		a, m, j := ss[0], ss[1], ss[2]
		mt, parts, err := makeTarget(a.geo.Comm(), a.geo.Layout(), marginal)
		if err != nil {
			return err
		}
		a.extra = append(a.extra, parts)
		gt, err := NewTrainer(Single(c), a.flow, mt, nil, a.tape, 5, joint.batch)
		if err != nil {
			return err
		}
		defer gt.Close()
		if err := m.trainer.SetGaugeTrainer(gt); err == nil {
			return fmt.Errorf("a marginal trainer accepted a gauge trainer")
		}
		if err := a.trainer.SetGaugeTrainer(j.trainer); err == nil {
			return fmt.Errorf("a joint trainer of another flow was accepted as the gauge trainer")
		}
		if err := a.trainer.SetGaugeTrainer(gt); err != nil {
			return err
		}
		equal := func(x, y nnlayers.Params, what string) error {
			moved := false
			for i, p := range x {
				for k := range p.Value {
					if p.Value[k] != y[i].Value[k] {
						return fmt.Errorf("%s: %s[%d] = %v, want %v", what, p.Name, k, p.Value[k], y[i].Value[k])
					}
					moved = moved || p.Grad[k] != 0
				}
			}
			if !moved {
				return fmt.Errorf("%s: no gradient", what)
			}
			return nil
		}
		for n := range 3 {
			for _, s := range ss {
				if _, err := s.trainer.Step(n); err != nil {
					return err
				}
			}
			if n == 0 {
				if err := equal(a.pf.Params(), j.pf.Params(), "conditional flows after one step"); err != nil {
					return err
				}
			}
		}
		return equal(a.flow.Params(), m.flow.Params(), "gauge flow after three steps")
	})
}

// TestGaugeSteps checks SetGaugeSteps: with k = 2 the gauge flow of a joint
// model follows, bit for bit, a marginal trainer that steps on the draws of
// index n and 2⁴⁰ + n with the same Adam, and the conditional flows take
// the plain joint step.
func TestGaugeSteps(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		joint := config{dims: []int{4, 4}, grid: []int{1, 1}, layers: 4, beta: 1.5, kappa: 0.2, batch: 3, random: true, holonomy: true,
			pf: &pfConfig{eo: true, shifts: []float64{0.1}, layers: 2, parts: []pfflow.Partition{pfflow.Rows, pfflow.Spin}}}
		marginal := joint
		marginal.pf = nil
		var ss [3]*setup
		for i, cf := range []config{joint, marginal, joint} {
			s, err := newSetup(c, cf)
			if err != nil {
				return err
			}
			defer s.close()
			ss[i] = s
		}
		a, m, j := ss[0], ss[1], ss[2]
		mt, parts, err := makeTarget(a.geo.Comm(), a.geo.Layout(), marginal)
		if err != nil {
			return err
		}
		a.extra = append(a.extra, parts)
		gt, err := NewTrainer(Single(c), a.flow, mt, nil, a.tape, 5, joint.batch)
		if err != nil {
			return err
		}
		defer gt.Close()
		gopt, err := nnlayers.NewAdam(a.flow.Params(), nnlayers.AdamConfig{LR: 1e-3, Eps: 1e-8})
		if err != nil {
			return err
		}
		if err := a.trainer.SetGaugeSteps(2, gopt); err == nil {
			return fmt.Errorf("gauge steps accepted without a gauge trainer")
		}
		if err := a.trainer.SetGaugeTrainer(gt); err != nil {
			return err
		}
		if err := a.trainer.SetGaugeSteps(2, a.trainer.opt); err == nil {
			return fmt.Errorf("gauge steps accepted an optimizer of all parameters")
		}
		if err := a.trainer.SetGaugeSteps(2, gopt); err != nil {
			return err
		}
		if err := a.trainer.opt.Hold(a.flow.Params(), math.MaxInt); err != nil {
			return err
		}
		equal := func(x, y nnlayers.Params, what string) error {
			for i, p := range x {
				for k := range p.Value {
					if p.Value[k] != y[i].Value[k] {
						return fmt.Errorf("%s: %s[%d] = %v, want %v", what, p.Name, k, p.Value[k], y[i].Value[k])
					}
				}
			}
			return nil
		}
		init := slices.Clone(a.flow.Params()[0].Value)
		for n := range 3 {
			res, err := a.trainer.Step(n)
			if err != nil {
				return err
			}
			ml, err := m.trainer.Step(n)
			if err != nil {
				return err
			}
			if res.MarginalLoss != ml.Loss {
				return fmt.Errorf("step %d: marginal loss %v, the marginal trainer's %v", n, res.MarginalLoss, ml.Loss)
			}
			if _, err := m.trainer.Step(gaugeStepOffset + n); err != nil {
				return err
			}
			if _, err := j.trainer.Step(n); err != nil {
				return err
			}
			if n == 0 {
				if err := equal(a.pf.Params(), j.pf.Params(), "conditional flows after one step"); err != nil {
					return err
				}
			}
		}
		if slices.Equal(init, a.flow.Params()[0].Value) {
			return fmt.Errorf("the gauge flow did not move")
		}
		return equal(a.flow.Params(), m.flow.Params(), "gauge flow after three steps of 2 gauge steps")
	})
}
