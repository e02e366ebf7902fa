package flowrun

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"pfmpi/action"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/flow"
	"pfmpi/gauge"
	"pfmpi/group"
	"pfmpi/internal/atomicfile"
	"pfmpi/internal/driver"
	"pfmpi/internal/rundir"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
)

// Supported reports whether the flow phases exist for cfg yet, and why not.
func Supported(cfg *config.Config) error {
	if len(cfg.Lattice.Dims) != 2 {
		return fmt.Errorf("flows exist for 2D lattices; %dD flows are not implemented yet", len(cfg.Lattice.Dims))
	}
	for mu, l := range cfg.Lattice.Dims {
		if l%4 != 0 {
			return cfg.Errorf("lattice.dims", "%v: the flow's gauge layers update links in a pattern of period 4 in each direction (Ref. [26] masks), but dims[%d] = %d is not divisible by 4; use extents divisible by 4",
				cfg.Lattice.Dims, mu, l)
		}
	}
	if cfg.Action.Kappa > 0 && cfg.Model.Fermions == "pseudofermion" {
		mc := cfg.Model
		eo := cfg.Action.Precondition == "eo"
		for _, p := range mc.PFPartition {
			if p == "checkerboard" && eo {
				return cfg.Errorf("model.pf_partition", "the checkerboard partition leaves nothing frozen on the even sites of an even/odd preconditioned pseudofermion; use \"rows\" or \"spin\" (or action.precondition = \"none\")")
			}
		}
		if eo && mc.NPT < 2 {
			return cfg.Errorf("model.n_pt", "with even/odd preconditioning a PTCN needs at least 2 PTCs (one connects even sites only to odd ones); got %d", mc.NPT)
		}
	}
	return nil
}

// exactDeterminantLimit is the largest Dirac-matrix dimension for which the
// marginal ESS is computed with the dense determinant: 1536 = 16² sites ×
// 2 spins × 3 colours, the paper's 2D SU(3) lattice (an LU of about a
// second per configuration).
const exactDeterminantLimit = 1536

// joint reports whether cfg asks for the joint pseudofermion model.
func joint(cfg *config.Config) bool {
	return cfg.Action.Kappa > 0 && cfg.Model.Fermions == "pseudofermion"
}

// model is a flow with its target and trainer on this rank.
type model struct {
	env     driver.Env
	cfg     *config.Config
	geo     *nnlayers.Geometry
	sp      *gauge.Space
	op      *dslash.Wilson
	flow    flow.GaugeFlow
	target  *flow.Target
	trainer *flow.Trainer
	gauge   *flow.Trainer // train.gauge_loss = "marginal": the gauge flow's trainer
	// gaugeOpt is the gauge flow's own optimizer (gaugeSteps() > 1).
	gaugeOpt *nnlayers.Adam
	// marginal is the exact marginal target of a joint model (nil when the
	// determinant is too large or the lattice split).
	marginal *flow.Target
	pf       *pfflow.Model // conditional flows of the joint model (nil: marginal only)
	parts    []pfflow.Partition
	// precision is the arithmetic of the context networks.
	precision nnlayers.Precision
	pfs       []*action.Pseudofermion // the sampling monomials of the joint model
	workers   []*targetParts          // per-goroutine copies of the target (domain of one rank)
	copies    []modelCopy             // per-goroutine copies of the flows for training (domain of one rank)
	params    nnlayers.Params
	opt       *nnlayers.Adam
	tape      *nnlayers.Tape
	logZ      float64 // exact log Z of pure gauge theory (NaN otherwise)
	hasLogZ   bool
	// modelSHA is the SHA-256 of the loaded model checkpoint (rank 0): a
	// partial sample belongs to it.
	modelSHA string
	sampled  *sampleCheckpoint // rank 0: the sample phase's checkpoint so far
}

func (m *model) close() {
	if m.trainer != nil {
		m.trainer.Close()
	}
	if m.gauge != nil {
		m.gauge.Close()
	}
	if m.pf != nil {
		m.pf.Close()
	}
	if m.op != nil {
		m.op.Close()
	}
	for _, w := range m.workers {
		w.close()
	}
	for _, c := range m.copies {
		c.close()
	}
	m.tape.Close()
	m.geo.Close()
	m.sp.Close()
}

func (m *model) printf(format string, args ...any) { m.env.Printf(format, args...) }

// newModel builds the flow, the target and (with a [train] section) the
// optimizer.
func newModel(env driver.Env) (*model, error) {
	cfg := env.Config
	if err := Supported(cfg); err != nil {
		return nil, err
	}
	m := &model{env: env, cfg: cfg, geo: nnlayers.NewGeometry(env.Domain, env.Layout), tape: nnlayers.NewTape(0)}
	prec, err := nnlayers.ParsePrecision(cfg.Model.Precision)
	if err != nil {
		return nil, cfg.Errorf("model.precision", "%v", err)
	}
	m.precision = prec
	if m.flow, err = m.newGaugeFlow(m.geo); err != nil {
		m.geo.Close()
		m.tape.Close()
		return nil, err
	}
	main, err := buildTarget(env.Domain, env.Layout, cfg)
	if err != nil {
		return nil, err
	}
	m.sp, m.op, m.target, m.pfs = main.sp, main.op, main.target, main.sample
	m.marginal = main.marginal
	if cfg.Action.Kappa == 0 {
		v := int(env.Layout.Lattice().GlobalVolume())
		logPartition := measure.U1LogPartition
		if cfg.Lattice.GaugeGroup() == group.SU3 {
			logPartition = measure.SU3LogPartition
		}
		if lz, err := logPartition(cfg.Action.Beta, v); err == nil {
			m.logZ, m.hasLogZ = lz, true
		}
	}
	m.params = m.flow.Params()
	if joint(cfg) {
		if err := m.newJoint(len(main.train)); err != nil {
			return nil, err
		}
	}
	// A lattice held whole by this rank is evaluated member by member on
	// every goroutine, each with its own copy of the target.
	if env.Domain.Size() == 1 && m.tape.Workers() > 1 {
		for range m.tape.Workers() {
			w, err := buildTarget(mpi.Self(), env.Layout, cfg)
			if err != nil {
				return nil, err
			}
			m.workers = append(m.workers, w)
		}
	}
	batch := 1
	var ac nnlayers.AdamConfig
	if t := cfg.Train; t != nil {
		batch = t.Batch
		ac = nnlayers.AdamConfig{
			LR: t.LR, Eps: t.Eps, WeightDecay: t.WeightDecay, Decoupled: t.Optimizer == "adamw",
			ClipNorm: t.GradClip, ClipMedian: t.GradClipMedian, DecayEvery: t.LRDecayEvery, DecayFactor: t.LRDecayFactor, Warmup: t.LRWarmup}
		if t.LRSchedule == "cosine" {
			ac.CosineSteps, ac.MinLR = t.Steps, t.LRMin
		}
		m.opt, err = nnlayers.NewAdam(m.params, ac)
		if err != nil {
			return nil, err
		}
		if n := t.MarginalFirst; n > 0 {
			if err := m.holdAllButMarginal(n); err != nil {
				return nil, err
			}
		}
		if t.InitFrom == "" && (t.InitGaugeOnly || t.InitGaugeFrom != "") {
			key := "train.init_gauge_only"
			if t.InitGaugeFrom != "" {
				key = "train.init_gauge_from"
			}
			return nil, cfg.Errorf(key, "qualifies train.init_from, which is not set; set init_from or remove the key")
		}
		if n := t.PFFirst; n > 0 {
			if m.pf == nil {
				return nil, cfg.Errorf("train.pf_first", "holds the gauge flow while the pseudofermion flows train, but this model has none (action.kappa = 0 or model.fermions = \"exact\"); set it to 0")
			}
			if t.MarginalFirst > 0 {
				return nil, cfg.Errorf("train.pf_first", "and train.marginal_first both stage the training; use one of them")
			}
			if err := m.opt.Hold(m.flow.Params(), n); err != nil {
				return nil, err
			}
		}
	}
	replicas := env.ReplicaCount()
	fenv := env.Flow()
	if batch%replicas != 0 {
		batch = replicas // sampling only: the trainer's batch is unused
	}
	if m.trainer, err = flow.NewTrainer(fenv, m.flow, m.target, m.opt, m.tape, uint64(cfg.Run.Seed), batch); err != nil {
		return nil, err
	}
	if m.pf != nil {
		if err = m.trainer.SetPseudofermionFlows(m.pf); err != nil {
			return nil, err
		}
		if t := cfg.Train; t != nil {
			m.trainer.SetPathGradient(t.PFGradient == "path")
		}
	}
	if len(m.workers) > 0 {
		ts := make([]*flow.Target, len(m.workers))
		for i, w := range m.workers {
			ts[i] = w.target
		}
		err = m.trainer.SetTargetWorkers(ts)
	}
	if err == nil && m.useMarginalLoss() {
		err = m.setGaugeTrainer(fenv, batch)
	}
	if k := m.gaugeSteps(); err == nil && k > 1 {
		err = m.setGaugeSteps(k, ac)
	}
	if err != nil {
		return nil, err
	}
	if t := cfg.Train; t != nil {
		m.trainer.SetMicroBatch(t.MicroBatch)
		// A lattice held whole by this rank trains micro-batches at once,
		// one per goroutine, each on a copy of the model.
		if len(m.workers) > 0 {
			err = m.newCopies()
		}
	}
	return m, err
}

// useMarginalLoss reports whether the gauge flow trains on the exact
// marginal: train.gauge_loss = "marginal", or "auto" on a small Dirac
// matrix when this rank holds the lattice (a split lattice trains on the
// joint loss).
func (m *model) useMarginalLoss() bool {
	t := m.cfg.Train
	if t == nil || !m.cfg.MarginalGaugeLoss() {
		return false
	}
	return t.GaugeLoss == "marginal" || (m.pf != nil && m.marginal != nil)
}

// setGaugeTrainer makes the gauge flow train on the exact marginal KL
// (train.gauge_loss = "marginal").
func (m *model) setGaugeTrainer(fenv flow.Ranks, batch int) error {
	cfg := m.cfg
	if m.pf == nil {
		return cfg.Errorf("train.gauge_loss", "\"marginal\" trains the gauge flow of a joint model on the exact determinant, but this model has no pseudofermion flows (action.kappa = 0 or model.fermions = \"exact\", which already trains on it); use \"joint\"")
	}
	if m.marginal == nil {
		return cfg.Errorf("train.gauge_loss", "\"marginal\" needs the exact determinant: the lattice on one rank (parallel.grid of ones) and at most %d Dirac rows (volume × spin × colour); use \"joint\"", exactDeterminantLimit)
	}
	g, err := flow.NewTrainer(fenv, m.flow, m.marginal, nil, m.tape, uint64(cfg.Run.Seed), batch)
	if err != nil {
		return err
	}
	m.gauge = g
	if len(m.workers) > 0 {
		ts := make([]*flow.Target, len(m.workers))
		for i, w := range m.workers {
			ts[i] = w.marginal
		}
		if err := g.SetTargetWorkers(ts); err != nil {
			return err
		}
	}
	return m.trainer.SetGaugeTrainer(g)
}

// autoGaugeSteps is train.gauge_steps = 0 (auto) where the gauge flow
// trains on the exact marginal and the training is not staged.
const autoGaugeSteps = 4

// gaugeSteps resolves train.gauge_steps: the gauge flow's optimizer steps
// per training step, 0 (auto) meaning autoGaugeSteps on the exact marginal
// of an unstaged training and 1 otherwise. Call it after setGaugeTrainer.
func (m *model) gaugeSteps() int {
	t := m.cfg.Train
	switch {
	case t == nil:
		return 1
	case t.GaugeSteps > 0:
		return t.GaugeSteps
	case m.gauge != nil && t.PFFirst == 0 && t.MarginalFirst == 0:
		return autoGaugeSteps
	}
	return 1
}

// setGaugeSteps gives the gauge flow k optimizer steps per training step
// with an Adam of its own (train.gauge_steps): ac with the warm-up and
// the schedule stretched k-fold. The trainer's optimizer holds the gauge
// flow's parameters back for good.
func (m *model) setGaugeSteps(k int, ac nnlayers.AdamConfig) error {
	cfg := m.cfg
	switch {
	case m.gauge == nil:
		return cfg.Errorf("train.gauge_steps", "%d steps of the gauge flow per training step need it on the exact marginal (train.gauge_loss = \"marginal\", or \"auto\" on at most %d Dirac rows held by one rank); set it to 1", k, exactDeterminantLimit)
	case cfg.Train.PFFirst > 0 || cfg.Train.MarginalFirst > 0:
		return cfg.Errorf("train.gauge_steps", "and train.pf_first or train.marginal_first both stage the training; use one of them")
	}
	ac.Warmup *= k
	ac.CosineSteps *= k
	ac.DecayEvery *= k
	gopt, err := nnlayers.NewAdam(m.flow.Params(), ac)
	if err != nil {
		return err
	}
	if err := m.opt.Hold(m.flow.Params(), math.MaxInt); err != nil {
		return err
	}
	m.gaugeOpt = gopt
	return m.trainer.SetGaugeSteps(k, gopt)
}

// u1Bridge returns the bridge plaquettes of a U(1) flow's marginal column
// layer: u1_bridge with marginal layers, else 0.
func u1Bridge(mc config.Model) int {
	if !mc.U1Marginal {
		return 0
	}
	return mc.U1Bridge
}

// holdAllButMarginal keeps every parameter but the marginal gauge layers'
// at its initial value for the first n training steps (train.marginal_first).
func (m *model) holdAllButMarginal(n int) error {
	mf, ok := m.flow.(interface{ MarginalParams() nnlayers.Params })
	var marginal nnlayers.Params
	if ok {
		marginal = mf.MarginalParams()
	}
	if marginal == nil {
		return m.cfg.Errorf("train.marginal_first", "needs a flow with marginal layers (SU(3): model.su3_coupling = \"strings\" and su3_marginal = true; U(1): model.u1_marginal = true; gauge_layers ≥ 2); set it to 0")
	}
	keep := make(map[*nnlayers.Param]bool, len(marginal))
	for _, p := range marginal {
		keep[p] = true
	}
	var held nnlayers.Params
	for _, p := range m.params {
		if !keep[p] {
			held = append(held, p)
		}
	}
	return m.opt.Hold(held, n)
}

// newGaugeFlow builds the gauge flow of the run file on geo.
func (m *model) newGaugeFlow(geo *nnlayers.Geometry) (flow.GaugeFlow, error) {
	cfg, mc := m.cfg, m.cfg.Model
	if cfg.Lattice.GaugeGroup() == group.SU3 {
		if mc.SU3Coupling != "plaquette" && m.env.Domain.Size() > 1 {
			return nil, cfg.Errorf("model.su3_coupling", "string layers need each lattice on one rank, but parallel.grid splits it over %d ranks; use parallel.grid = [1, 1] (further ranks become replicas) or su3_coupling = \"plaquette\"", m.env.Domain.Size())
		}
		return flow.NewSU3(geo, flow.SU3Spec{
			Layers: mc.GaugeLayers, Hidden: mc.GaugeHidden, Kernel: mc.GaugeKernel, Dilations: mc.GaugeDilations,
			Modes: mc.SpectralModes, Steps: mc.SpectralSteps, Bound: mc.SpectralBound, Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain,
			Precision: m.precision, Strings: mc.SU3Coupling != "plaquette", Marginal: mc.SU3MarginalLayers(), Bridge: mc.SU3BridgePlaquettes()})
	}
	if mc.U1Marginal && m.env.Domain.Size() > 1 {
		return nil, cfg.Errorf("model.u1_marginal", "marginal string layers need each lattice on one rank, but parallel.grid splits it over %d ranks; use parallel.grid = [1, 1] (further ranks become replicas) or u1_marginal = false", m.env.Domain.Size())
	}
	if cfg.U1HolonomyLayer() && m.env.Domain.Size() > 1 {
		return nil, cfg.Errorf("model.u1_holonomy", "the holonomy layer needs each lattice on one rank, but parallel.grid splits it over %d ranks; use parallel.grid = [1, 1] (further ranks become replicas) or u1_holonomy = false", m.env.Domain.Size())
	}
	return flow.NewU1(geo, flow.U1Spec{
		Layers: mc.GaugeLayers, Hidden: mc.GaugeHidden, Kernel: mc.GaugeKernel, Dilations: mc.GaugeDilations,
		Transform: mc.GaugeTransform, Bins: mc.SplineBins, Mixtures: mc.NCPMixtures,
		Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain, Precision: m.precision, Marginal: mc.U1Marginal, Bridge: u1Bridge(mc), Holonomy: cfg.U1HolonomyLayer()})
}

// modelCopy is a copy of the flows for one goroutine of a training step.
type modelCopy struct {
	geo  *nnlayers.Geometry
	pf   *pfflow.Model
	tape *nnlayers.Tape
}

func (c modelCopy) close() {
	if c.pf != nil {
		c.pf.Close()
	}
	c.tape.Close()
	c.geo.Close()
}

// newCopies gives the trainer one copy of the flows per goroutine, with
// the per-goroutine targets and tapes of one goroutine.
func (m *model) newCopies() error {
	var cs []flow.Copy
	for _, w := range m.workers {
		mc := modelCopy{geo: nnlayers.NewGeometry(mpi.Self(), m.env.Layout), tape: nnlayers.NewTape(1)}
		m.copies = append(m.copies, mc)
		f, err := m.newGaugeFlow(mc.geo)
		if err != nil {
			return err
		}
		c := flow.Copy{Flow: f, Target: w.target, Tape: mc.tape}
		if m.pf != nil {
			if c.PF, err = m.newPFModel(mc.geo, m.target.Monomials()); err != nil {
				return err
			}
			m.copies[len(m.copies)-1].pf = c.PF
		}
		cs = append(cs, c)
	}
	return m.trainer.SetCopies(cs)
}

// tapes are the tapes of the model and its copies.
func (m *model) tapes() []*nnlayers.Tape {
	ts := []*nnlayers.Tape{m.tape}
	for _, c := range m.copies {
		ts = append(ts, c.tape)
	}
	return ts
}

// targetParts is a target with what it is built on.
type targetParts struct {
	sp            *gauge.Space
	op            *dslash.Wilson
	target        *flow.Target
	marginal      *flow.Target // joint models with the exact determinant: p(U) ∝ det K e^{−S_g}
	train, sample []*action.Pseudofermion
}

func (p *targetParts) close() {
	if p.op != nil {
		p.op.Close()
	}
	p.sp.Close()
}

// buildTarget builds the target of cfg on the domain comm: the gauge
// action; for the marginal flow the exact determinant; for the joint model
// the pseudofermion monomials (with the training regulator for the loss,
// without for sampling) and, on small lattices held by one rank, the exact
// determinant for the marginal ESS.
func buildTarget(comm mpi.Comm, ly *decomp.Layout, cfg *config.Config) (*targetParts, error) {
	th, err := driver.BuildTheory(comm, ly, cfg)
	if err != nil {
		return nil, err
	}
	p := &targetParts{sp: th.Space, op: th.Op}
	u := th.U
	ms := []action.Monomial{th.Gauge}
	var det *action.ExactDeterminant
	gaugeAction := ms[0]
	if p.op != nil {
		dense := ly.Lattice().GlobalVolume()*int64(p.op.PerSite()) <= exactDeterminantLimit
		if comm.Size() == 1 && (dense || !joint(cfg)) {
			if det, err = action.NewExactDeterminant(comm, p.op); err != nil {
				return nil, err
			}
		}
		if !joint(cfg) {
			if det == nil {
				return nil, cfg.Errorf("parallel.grid", "the exact-determinant target needs each lattice on one rank (grid of ones); parallelise over replicas")
			}
			ms = append(ms, det)
		}
	}
	if p.target, err = flow.NewTarget(u, ms...); err != nil {
		return nil, err
	}
	if !joint(cfg) {
		return p, nil
	}
	if p.sample, err = th.Pseudofermions(0); err != nil {
		return nil, err
	}
	if p.train, err = th.Pseudofermions(cfg.Action.TrainRegulator); err != nil {
		return nil, err
	}
	if err := p.target.SetPseudofermions(p.train, p.sample); err != nil {
		return nil, err
	}
	if det != nil {
		p.target.SetMarginal(det)
		if p.marginal, err = flow.NewTarget(u, gaugeAction, det); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newJoint builds the conditional flows of the joint model, one per
// pseudofermion monomial.
func (m *model) newJoint(monomials int) error {
	cfg := m.cfg
	mc := cfg.Model
	var err error
	var parts []pfflow.Partition
	for _, p := range mc.PFPartition {
		part, err := pfflow.ParsePartition(p)
		if err != nil {
			return cfg.Errorf("model.pf_partition", "%v", err)
		}
		parts = append(parts, part)
	}
	m.parts = parts
	if m.pf, err = m.newPFModel(m.geo, monomials); err != nil {
		return err
	}
	m.params = append(append(nnlayers.Params(nil), m.params...), m.pf.Params()...)
	return nil
}

// newPFModel builds the conditional flows of the joint model on geo.
func (m *model) newPFModel(geo *nnlayers.Geometry, monomials int) (*pfflow.Model, error) {
	cfg, mc := m.cfg, m.cfg.Model
	nc := cfg.Lattice.GaugeGroup().Nc()
	if mc.PFPolyakov && geo.Comm().Size() > 1 {
		return nil, cfg.Errorf("model.pf_polyakov", "Polyakov-line context features need each lattice on one rank, but parallel.grid splits it over %d ranks; use parallel.grid = [1, 1] (further ranks become replicas) or pf_polyakov = false", geo.Comm().Size())
	}
	pf, err := pfflow.New(geo, pfflow.Spec{Nc: nc, EvenOdd: cfg.Action.Precondition == "eo", Monomials: monomials, Layers: mc.PFLayers,
		MonomialLayers: mc.PFMonomialLayers, Partitions: m.parts, NPT: mc.NPT, Hidden: mc.PTHidden, ContextHidden: mc.PFContextHidden, Kernel: 3,
		ContextDilations: mc.PFContextDilations, HeadKernel: mc.PFHeadKernel,
		Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain, Precision: m.precision, Polyakov: mc.PFPolyakov})
	if err != nil {
		return nil, cfg.Errorf("model", "%v", err)
	}
	return pf, nil
}

// describe is the model in one line.
func (m *model) describe() string {
	s := fmt.Sprintf("%d gauge layers", m.cfg.Model.GaugeLayers)
	if m.pf != nil {
		if d := m.cfg.Model.PFMonomialLayers; len(d) > 0 {
			s += fmt.Sprintf(" + %v pseudofermion layers (%s", d, strings.Join(m.cfg.Model.PFPartition, ", "))
		} else {
			s += fmt.Sprintf(" + %d × %d pseudofermion layers (%s", m.pf.Monomials(), m.cfg.Model.PFLayers, strings.Join(m.cfg.Model.PFPartition, ", "))
		}
		s += fmt.Sprintf("; n_pt %d, H %d)", m.cfg.Model.NPT, m.cfg.Model.PTHidden)
	}
	return fmt.Sprintf("%s, %d parameters", s, m.params.Size())
}

// checkpoint is the training state on disk: the step reached and one file
// with the parameters and the optimizer state, with its SHA-256.
type checkpoint struct {
	Phase  string `json:"phase"`
	Step   int    `json:"step"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Params int    `json:"parameters"`
}

const checkpointName = "train.json"

// save writes the model after step steps (rank 0; collective verdict).
func (m *model) save(step int) error {
	var err error
	if m.env.World.Rank() == 0 {
		err = m.saveRoot(step)
	}
	return mpi.RootError(m.env.World, err)
}

func (m *model) saveRoot(step int) error {
	dir := m.env.Dir.Checkpoints()
	name := fmt.Sprintf("model-%07d.bin", step)
	path := filepath.Join(dir, name)
	sum, err := atomicfile.WriteSum(path, 0o644, func(w io.Writer) error {
		if err := nnlayers.WriteParams(w, m.params); err != nil {
			return err
		}
		if m.opt == nil {
			return nil
		}
		if err := m.opt.WriteState(w); err != nil || m.gaugeOpt == nil {
			return err
		}
		return m.gaugeOpt.WriteState(w)
	})
	if err != nil {
		return err
	}
	if err := m.env.Dir.Sync(); err != nil {
		return err
	}
	ck := checkpoint{Phase: "train", Step: step, File: name, SHA256: sum, Params: m.params.Size()}
	if err := rundir.WriteRecord(dir, checkpointName, ck); err != nil {
		return err
	}
	// The files of this checkpoint and of the one before it stay.
	keep := []string{name}
	var prev checkpoint
	if found, _ := atomicfile.ReadJSON(filepath.Join(dir, rundir.PreviousName(checkpointName)), &prev); found {
		keep = append(keep, prev.File)
	}
	atomicfile.RemoveOthers(dir, "model-*.bin", keep...)
	return nil
}

// load restores the latest checkpoint; it returns the step reached, or
// found = false when there is none (collective).
func (m *model) load(withOptimizer bool) (step int, found bool, err error) {
	data, step, sha, err := m.readTrainCheckpoint(m.env.Dir.Checkpoints())
	if err != nil {
		return 0, false, err
	}
	m.modelSHA = sha // rank 0
	if data == nil {
		return 0, false, nil
	}
	r := bytesReader(data)
	if err := nnlayers.ReadParams(r, m.params); err != nil {
		return 0, false, fmt.Errorf("%s: %w (was the model changed? model keys must match the checkpoint)", m.env.Dir.Checkpoints(), err)
	}
	if withOptimizer && m.opt != nil {
		if err := m.opt.ReadState(r); err != nil {
			return 0, false, fmt.Errorf("%s: optimizer state: %w", m.env.Dir.Checkpoints(), err)
		}
		if m.gaugeOpt != nil {
			if err := m.gaugeOpt.ReadState(r); err != nil {
				return 0, false, fmt.Errorf("%s: the gauge flow's optimizer state (train.gauge_steps): %w", m.env.Dir.Checkpoints(), err)
			}
		}
	}
	return step, true, nil
}

// readTrainCheckpoint reads the training checkpoint in dir on rank 0 and
// broadcasts its data (nil if there is none), step and, on rank 0, its
// SHA-256.
func (m *model) readTrainCheckpoint(dir string) (data []byte, step int, sha string, err error) {
	var ck checkpoint
	if m.env.World.Rank() == 0 {
		var found bool
		var warning string
		ck, found, warning, err = readCheckpoint(dir)
		if warning != "" {
			m.printf("  warning      %s\n", warning)
		}
		if err == nil && found {
			data, err = os.ReadFile(filepath.Join(dir, ck.File))
		}
	}
	if err = mpi.RootError(m.env.World, err); err != nil {
		return nil, 0, "", err
	}
	n := []float64{float64(len(data)), float64(ck.Step)}
	m.env.World.Bcast(0, mpi.Bytes(n))
	if n[0] == 0 {
		return nil, 0, ck.SHA256, nil
	}
	if m.env.World.Rank() != 0 {
		data = make([]byte, int(n[0]))
	}
	m.env.World.Bcast(0, data)
	return data, int(n[1]), ck.SHA256, nil
}

// initFrom sets the parameters to those of the last training checkpoint of
// the run in train.init_from (relative to the run file), for a run that has
// none of its own: the model keys must build the same parameters, or the
// same gauge flow (then it alone is taken); the lattice may differ (the
// layers' weights do not depend on the volume). train.init_gauge_from then
// replaces the gauge flow by another run's.
func (m *model) initFrom() (step int, err error) {
	step, err = m.initFromRun()
	if err != nil || m.cfg.Train.InitGaugeFrom == "" {
		return step, err
	}
	path, data, _, err := m.initCheckpoint("train.init_gauge_from", m.cfg.Train.InitGaugeFrom)
	if err != nil {
		return 0, err
	}
	if err := nnlayers.ReadParamsSubset(bytesReader(data), m.flow.Params()); err != nil {
		return 0, m.cfg.Errorf("train.init_gauge_from", "%s: %v: its gauge flow differs from this one (the [model] keys of the gauge flow must be the same)", path, err)
	}
	m.printf("  init_gauge_from %s: its gauge flow replaces the one of %s\n", path, m.cfg.Train.InitFrom)
	return step, nil
}

// initCheckpoint reads the last training checkpoint of the run in path (the
// value of key, relative to the run file).
func (m *model) initCheckpoint(key, path string) (string, []byte, int, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(m.cfg.File()), path)
	}
	data, step, _, err := m.readTrainCheckpoint(filepath.Join(path, "checkpoints"))
	if err != nil {
		return path, nil, 0, m.cfg.Errorf(key, "%v", err)
	}
	if data == nil {
		return path, nil, 0, m.cfg.Errorf(key, "%s holds no training checkpoint; give the output directory of a run that trained", path)
	}
	return path, data, step, nil
}

// initFromRun loads train.init_from (see initFrom).
func (m *model) initFromRun() (step int, err error) {
	path, data, step, err := m.initCheckpoint("train.init_from", m.cfg.Train.InitFrom)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(path, "checkpoints")
	if m.cfg.Train.InitGaugeOnly {
		if m.pf == nil {
			return 0, m.cfg.Errorf("train.init_gauge_only", "this model has no pseudofermion flows; remove the key")
		}
		if err := nnlayers.ReadParamsSubset(bytesReader(data), m.flow.Params()); err != nil {
			return 0, m.cfg.Errorf("train.init_from", "%s: %v: its gauge flow differs from this one", dir, err)
		}
		m.printf("  init_from    %s: its gauge flow only (train.init_gauge_only): the pseudofermion flows start from their initialisation\n", path)
		return step, nil
	}
	err = nnlayers.ReadParams(bytesReader(data), m.params)
	if err != nil && m.pf != nil && nnlayers.ReadParamsSubset(bytesReader(data), m.flow.Params()) == nil {
		// The same gauge flow, and no pseudofermion flows (a run with
		// fermions = "exact") or others (other pseudofermion keys or
		// Hasenbusch masses): the pseudofermion flows keep their
		// initialisation.
		m.printf("  init_from    %s: its gauge flow only (its pseudofermion flows, if any, differ from this model's): the pseudofermion flows start from their initialisation\n", path)
		err = nil
	}
	if err != nil {
		return 0, m.cfg.Errorf("train.init_from", "%s: %v: its model differs from this one; the [model] keys (and group, fermions, preconditioning, Hasenbusch masses) must build the same parameters, or at least the same gauge flow (the pseudofermion flows then start afresh)", dir, err)
	}
	return step, nil
}

// readCheckpoint reads and verifies the training checkpoint record in dir,
// or the one before it when the latest is damaged (warning says so).
func readCheckpoint(dir string) (ck checkpoint, found bool, warning string, err error) {
	return rundir.ReadRecord(dir, checkpointName, func(ck *checkpoint) error {
		return rundir.VerifyFile(dir, ck.File, ck.SHA256, checkpointName)
	})
}
