package flow

import (
	"fmt"
	"math"
	"slices"

	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
)

// GaugeFlow is a flow for gauge fields ([U1], [SU3]): a Haar prior pushed
// through gauge-equivariant coupling layers.
type GaugeFlow interface {
	// Params returns the trainable parameters.
	Params() nnlayers.Params
	// Prior draws b configurations, member k from key.Derive(first+k) per
	// global site (no gradient buffer; overwritten by the next call).
	Prior(b, first int, key rng.Key) *nnlayers.Tensor
	// Forward pushes the prior through the layers: the configuration and
	// the log-Jacobian density (V × B × 1); log q = LogPrior − Σ logJ.
	Forward(t *nnlayers.Tape, z *nnlayers.Tensor) (out, logJ *nnlayers.Tensor, err error)
	// Inverse maps configurations back to the prior: z and the log-Jacobian
	// density of the forward map at z.
	Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (z, logJ *nnlayers.Tensor, err error)
	// LogPrior is log r(z), the same for every z.
	LogPrior() float64
	// Links returns the configuration as a links tensor (package pfflow).
	Links(t *nnlayers.Tape, out *nnlayers.Tensor) *nnlayers.Tensor
}

// Ranks is the parallel setting of a trainer: the world, this rank's domain (one
// lattice), and which of the replicas (copies of the lattice splitting the
// batch) this rank belongs to.
type Ranks struct {
	World, Domain     mpi.Comm
	Replica, Replicas int
}

// Single is the setting of one rank without replicas.
func Single(c mpi.Comm) Ranks { return Ranks{World: c, Domain: c, Replica: 0, Replicas: 1} }

// Trainer trains a U(1) flow by reverse KL self-training (Eq. B1) and
// draws samples from it.
type Trainer struct {
	env        Ranks
	flow       GaugeFlow
	pf         *pfflow.Model // conditional flows of a joint model (nil: marginal only)
	draws      *nnlayers.Tape
	target     *Target
	main       stepper    // the model itself, on the trainer's tape
	copies     []*stepper // copies of the model, one per goroutine (SetCopies)
	start      []chan struct{}
	done       chan struct{}
	micro      int       // configurations per micro-batch (≤ 0: automatic)
	pathGrad   bool      // path gradient of the conditional flows (SetPathGradient)
	gauge      *Trainer  // the gauge flow's gradient comes from this marginal trainer (SetGaugeTrainer)
	gaugeSteps int       // > 1: the gauge trainer's own optimizer steps per step (SetGaugeSteps)
	gaugeGrad  []float64 // its gradient of the step
	sum        []float64 // the gradient of a step so far
	sampleLogq []float64
	// Progress, when set, is called on every rank after each batch of a
	// sample with the number of proposals done and the total.
	Progress func(done, total int)
	opt      *nnlayers.Adam
	tape     *nnlayers.Tape
	seed     uint64
	batch    int // global batch of a training step
	params   nnlayers.Params
	grad     []float64
	local    []float64
}

// NewTrainer returns the trainer of f against target with optimizer opt
// (nil: sampling only); batch is the global batch, split over the replicas.
func NewTrainer(env Ranks, f GaugeFlow, target *Target, opt *nnlayers.Adam, tape *nnlayers.Tape, seed uint64, batch int) (*Trainer, error) {
	if batch%env.Replicas != 0 {
		return nil, fmt.Errorf("flow: a batch of %d does not split over %d replicas", batch, env.Replicas)
	}
	tr := &Trainer{env: env, flow: f, target: target, opt: opt, tape: tape, seed: seed, batch: batch, params: f.Params()}
	tr.main = stepper{tr: tr, flow: f, tape: tape, target: target, domain: env.Domain, params: tr.params}
	return tr, nil
}

// SetPseudofermionFlows makes the trainer train and sample the joint model
// q(U) Π_i q(φ_i|U) (Eq. 39) against the target's pseudofermion monomials,
// one conditional flow of m per monomial. The optimizer must hold the
// parameters of both flows ([Trainer.Params]).
func (tr *Trainer) SetPseudofermionFlows(m *pfflow.Model) error {
	if tr.target.Monomials() != m.Monomials() {
		return fmt.Errorf("flow: %d conditional flows for %d pseudofermion monomials", m.Monomials(), tr.target.Monomials())
	}
	tr.pf = m
	tr.params = append(append(nnlayers.Params(nil), tr.flow.Params()...), m.Params()...)
	tr.main.pf, tr.main.params = m, tr.params
	tr.draws = nnlayers.NewTape(tr.tape.Workers())
	return nil
}

// SetPathGradient chooses the gradient estimator of the conditional flows'
// share of the loss, E[log q(φ|U) + S(U, φ)]. Off (the default): the
// reparameterisation gradient, in which log q(φ|U) = log r(χ) − Σ log J
// depends on the parameters through log J. On: the path gradient (Roeder
// et al. 2017; Vaitl et al. 2022, arXiv:2207.08219), in which log q is
// differentiated only through φ, with the score ∇_φ log q(φ|U) = −2T^{−†}χ
// ([pfflow.Conditional.InverseAdjoint]) added to ∂S/∂φ and log J left
// out. The two have the same expectation — the score term has mean
// −∂ Σ log J over χ, for the conditional flows' parameters and, through
// U, the gauge flow's alike (tested in package pfflow) — but where q(φ|U)
// fits p(φ|U) the path gradient's χ-noise vanishes: ∂S/∂φ + ∇_φ log q =
// 2(Kφ − T^{−†}χ) = 0 for every χ when T†KT = 1. It costs one backward
// pass of every PTCN more.
func (tr *Trainer) SetPathGradient(on bool) { tr.pathGrad = on }

// SetGaugeTrainer makes the gauge flow of a joint model train on the
// marginal reverse KL of g — a trainer of the same flow against the
// marginal target p(U) ∝ det K e^{−S_g} with the exact determinant — while
// the conditional flows keep this trainer's joint loss. The joint KL is
// KL(q(U)‖p(U)) + E_U KL(q(φ|U)‖p(φ|U)): the conditional flows' gradient is
// the same either way, but the joint loss also pulls the gauge flow toward
// fields whose conditional is easy to fit, through a noisy estimate of the
// determinant, and away from the marginal (experiments/time-to-ess). The
// sampler is the same joint model. Each step costs one marginal gradient
// more; both use the same prior draws. g's loss is reported by StepResult.
func (tr *Trainer) SetGaugeTrainer(g *Trainer) error {
	if tr.pf == nil {
		return fmt.Errorf("flow: a gauge trainer belongs to a joint model (SetPseudofermionFlows first)")
	}
	if g.flow != tr.flow || g.pf != nil || g.target.marginal != nil || g.batch != tr.batch || g.seed != tr.seed {
		return fmt.Errorf("flow: the gauge trainer must train this trainer's gauge flow alone, with its batch and seed")
	}
	tr.gauge = g
	return nil
}

// SetGaugeSteps makes the gauge trainer (SetGaugeTrainer) take k ≥ 2
// optimizer steps per training step with an optimizer of its own, opt,
// which must hold exactly the gauge flow's parameters; the trainer's
// optimizer must hold them back (nnlayers.Adam.Hold), so that the joint
// step updates the conditional flows alone. Step n is then the joint step
// of the conditional flows, followed by k marginal steps of the gauge
// flow: the first on the prior draws of step n (the gauge fields the joint
// step saw, as with k = 1), step j ≥ 1 on fresh draws, those of index
// j·2⁴⁰ + n. The marginal ESS depends on the gauge flow alone, and its
// step costs a fraction of the joint step (no pseudofermion flows, one
// dense determinant per member). k = 1 is the default of SetGaugeTrainer:
// one step of the trainer's optimizer for all parameters.
func (tr *Trainer) SetGaugeSteps(k int, opt *nnlayers.Adam) error {
	g := tr.gauge
	switch {
	case g == nil:
		return fmt.Errorf("flow: gauge steps need a gauge trainer (SetGaugeTrainer first)")
	case k < 2 || opt == nil:
		return fmt.Errorf("flow: %d gauge steps per step (≥ 2, with an optimizer)", k)
	case !slices.Equal(opt.Params(), g.params):
		return fmt.Errorf("flow: the gauge steps' optimizer must hold the gauge flow's parameters")
	}
	tr.gaugeSteps, g.opt = k, opt
	return nil
}

// gaugeStepOffset separates the prior draws of the extra gauge steps from
// those of the training steps (SetGaugeSteps).
const gaugeStepOffset = 1 << 40

// SetTargetWorkers lets the trainer evaluate the members of a batch in
// parallel, member k on goroutine w with ws[w]: copies of the target on the
// same layout whose communicator never calls MPI (mpi.Self), for a lattice
// held whole by this rank. Results do not depend on it.
func (tr *Trainer) SetTargetWorkers(ws []*Target) error {
	if tr.env.Domain.Size() != 1 {
		return fmt.Errorf("flow: parallel target evaluation needs the lattice on one rank, not %d", tr.env.Domain.Size())
	}
	if len(ws) != tr.tape.Workers() {
		return fmt.Errorf("flow: %d target copies for %d goroutines", len(ws), tr.tape.Workers())
	}
	for _, w := range ws {
		if w.Monomials() != tr.target.Monomials() || (w.marginal == nil) != (tr.target.marginal == nil) {
			return fmt.Errorf("flow: a target copy differs from the target")
		}
	}
	tr.main.targets = ws
	return nil
}

// memberWork is work on one member of a batch with a target.
type memberWork interface {
	member(t *Target, k int) error
}

// memberFunc is a function as memberWork.
type memberFunc func(t *Target, k int) error

func (f memberFunc) member(t *Target, k int) error { return f(t, k) }

// memberTask runs fn on every member of a batch, each on a goroutine's
// target.
type memberTask struct {
	fn      memberWork
	targets []*Target
	errs    []error
}

func (m *memberTask) Run(w, k int) { m.errs[k] = m.fn.member(m.targets[w], k) }

// Params returns the trained parameters: the gauge flow's, then those of
// the conditional flows.
func (tr *Trainer) Params() nnlayers.Params { return tr.params }

// Close releases the trainer's own tape and stops the copies' goroutines
// (the copies themselves belong to the caller).
func (tr *Trainer) Close() {
	tr.stopCopies()
	tr.main.closeScratch()
	if tr.draws != nil {
		tr.draws.Close()
	}
}

// Kinds of a training step's work in a tape's Profile (besides those of
// the layers' operations).
const (
	priorKind     = "prior draws"
	targetKind    = "target (actions, CG solves, forces)"
	optimizerKind = "optimizer"
	gradSumKind   = "gradient sums of micro-batches"
)

// StepResult is what one training step measured.
type StepResult struct {
	Loss     float64 // (1/B) Σ [log q + S]: KL(q‖p) − log Z
	GradNorm float64 // before clipping
	// MarginalLoss is the gauge trainer's loss (SetGaugeTrainer; else 0).
	MarginalLoss float64
	LR           float64 // the learning rate used
}

// Step takes optimisation step n: a fresh batch from the prior (keys from
// the seed and n only, so a resumed run repeats it exactly), the
// reparameterised gradient of the loss, the all-reduce and the optimizer
// update.
func (tr *Trainer) Step(n int) (StepResult, error) {
	if tr.opt == nil {
		return StepResult{}, fmt.Errorf("flow: this trainer has no optimizer")
	}
	if tr.gaugeSteps > 1 {
		return tr.stepWithGaugeSteps(n)
	}
	var marginal float64
	if g := tr.gauge; g != nil {
		var err error
		if marginal, err = g.Gradient(n); err != nil {
			return StepResult{}, err
		}
		tr.gaugeGrad = grow(tr.gaugeGrad, g.params.Size())
		clear(tr.gaugeGrad)
		addGrads(tr.gaugeGrad, g.params)
	}
	loss, err := tr.Gradient(n)
	if err != nil {
		return StepResult{}, err
	}
	if tr.gauge != nil {
		setGrads(tr.gauge.params, tr.gaugeGrad)
	}
	lr := tr.opt.LR()
	start := tr.tape.Begin()
	norm := tr.opt.Begin()
	tr.update()
	tr.tape.End(optimizerKind, start, 0, false)
	return StepResult{Loss: loss, GradNorm: norm, LR: lr, MarginalLoss: marginal}, nil
}

// stepWithGaugeSteps is Step with SetGaugeSteps: the joint step of the
// conditional flows (the gauge flow's gradient cleared, its parameters held
// by the trainer's optimizer), then the gauge trainer's steps.
func (tr *Trainer) stepWithGaugeSteps(n int) (StepResult, error) {
	g := tr.gauge
	loss, err := tr.Gradient(n)
	if err != nil {
		return StepResult{}, err
	}
	g.params.ZeroGrad() // not this loss's: the joint pass does not record the gauge flow
	lr := tr.opt.LR()
	start := tr.tape.Begin()
	norm := tr.opt.Begin()
	tr.update()
	tr.tape.End(optimizerKind, start, 0, false)
	var marginal float64
	for j := range tr.gaugeSteps {
		idx := n
		if j > 0 {
			idx = j*gaugeStepOffset + n
		}
		l, err := g.Gradient(idx)
		if err != nil {
			return StepResult{}, err
		}
		if j == 0 {
			marginal = l
		}
		start := g.tape.Begin()
		g.opt.Begin()
		g.update()
		g.tape.End(optimizerKind, start, 0, false)
	}
	return StepResult{Loss: loss, GradNorm: norm, LR: lr, MarginalLoss: marginal}, nil
}

// SetMicroBatch sets the number of configurations of a micro-batch of the
// training step (≤ 0: about 1024 local sites × members, at least one
// member, and no more than the copies' share). Given a micro-batch, the
// step does not depend on the copies or goroutines at all.
func (tr *Trainer) SetMicroBatch(m int) { tr.micro = m }

// microBatch is the micro-batch for a replica's share of b configurations.
func (tr *Trainer) microBatch(b int) int {
	m := tr.micro
	if m <= 0 {
		m = max(1, autoMicroRows/tr.target.Field().Space().Layout().Volume())
		if nc := len(tr.copies); nc > 1 {
			m = min(m, (b+nc-1)/nc) // a micro-batch for every copy
		}
	}
	return min(m, b)
}

// autoMicroRows is the number of (site, member) rows a micro-batch aims at
// by default: the context networks' tensors of a micro-batch then fit the
// caches of a core (measured on the reference model of docs/performance.md).
const autoMicroRows = 1024

// Samples are proposals of the flow in global order (every rank holds all).
//
// For a joint model, proposal k has Draws pseudofermions per monomial, and
// LogRatio[i·Draws + j][k] = −S_i(φ_ij) − log q(φ_ij|U_k) is the log of the
// conditional weight p(φ|U)/q(φ|U) up to the U-dependent normalisation
// π^{−N} det K_i that the marginal carries (Eqs. 41–42). LogW is the joint
// weight of the first draw (Eq. 40).
type Samples struct {
	LogQ, Action, LogW []float64 // log q(U), S(U) and log w = −S − log q (joint: Eq. 40)
	Plaquette, Charge  []float64 // average plaquette, topological charge
	// LogWMarginal is −S_g + log det M − log q(U) (nil without an exact
	// determinant): the weight of the marginal model (Eq. 9).
	LogWMarginal []float64
	Draws        int
	LogRatio     [][]float64
	Monomials    int
}

// Append adds the proposals of b (drawn with the same draws and monomials)
// after those of s.
func (s *Samples) Append(b *Samples) error {
	if s.Draws != b.Draws || s.Monomials != b.Monomials || len(s.LogRatio) != len(b.LogRatio) ||
		(s.LogWMarginal == nil) != (b.LogWMarginal == nil) {
		return fmt.Errorf("flow: cannot append samples with %d draws of %d monomials to samples with %d of %d",
			b.Draws, b.Monomials, s.Draws, s.Monomials)
	}
	s.LogQ = append(s.LogQ, b.LogQ...)
	s.Action = append(s.Action, b.Action...)
	s.LogW = append(s.LogW, b.LogW...)
	s.Plaquette = append(s.Plaquette, b.Plaquette...)
	s.Charge = append(s.Charge, b.Charge...)
	if s.LogWMarginal != nil {
		s.LogWMarginal = append(s.LogWMarginal, b.LogWMarginal...)
	}
	for i := range s.LogRatio {
		s.LogRatio[i] = append(s.LogRatio[i], b.LogRatio[i]...)
	}
	return nil
}

// Truncate keeps the first n proposals.
func (s *Samples) Truncate(n int) {
	s.LogQ, s.Action, s.LogW = s.LogQ[:n], s.Action[:n], s.LogW[:n]
	s.Plaquette, s.Charge = s.Plaquette[:n], s.Charge[:n]
	if s.LogWMarginal != nil {
		s.LogWMarginal = s.LogWMarginal[:n]
	}
	for i := range s.LogRatio {
		s.LogRatio[i] = s.LogRatio[i][:n]
	}
}

// LogWNpf returns the log weights of Eq. 43/46 with the first npf draws
// of every monomial: −S_g − log q(U) + Σ_i log[(1/npf) Σ_j e^{LogRatio}].
func (s *Samples) LogWNpf(npf int) []float64 {
	out := make([]float64, len(s.Action))
	buf := make([]float64, npf)
	for k := range out {
		w := -s.Action[k] - s.LogQ[k]
		for i := range s.Monomials {
			for j := range npf {
				buf[j] = s.LogRatio[i*s.Draws+j][k]
			}
			w += LogSumExp(buf) - math.Log(float64(npf))
		}
		out[k] = w
	}
	return out
}

// Sample draws n proposals (n and batch divisible by the replicas; the
// last batch may be smaller) from keys of purpose (seed, name), batch at a
// time, without gradients; a joint model draws one pseudofermion per
// monomial. See [Trainer.SampleDraws].
func (tr *Trainer) Sample(n, batch int, name string) (*Samples, error) {
	return tr.SampleDraws(n, batch, 1, name)
}

// SampleDraws is [Trainer.Sample] with draws pseudofermions per monomial
// and gauge field (Eqs. 42–46). Draw j of monomial i for proposal k comes
// from keys (seed, name+"-pf").Derive(i).Derive(j) and member k, so
// proposals and draws do not depend on the process grid, the replicas or
// the batch size.
func (tr *Trainer) SampleDraws(n, batch, draws int, name string) (*Samples, error) {
	return tr.SampleRange(0, n, batch, draws, name)
}

// SampleRange is [Trainer.SampleDraws] for the proposals from, …, to−1 of
// the same sequence: concatenating the ranges [0, a) and [a, n) gives the
// samples of [0, n), which lets a long sampling run checkpoint and resume.
func (tr *Trainer) SampleRange(from, to, batch, draws int, name string) (*Samples, error) {
	env := tr.env
	n := to - from
	if from < 0 || n < 0 || batch < 1 || draws < 1 {
		return nil, fmt.Errorf("flow: samples %d…%d in batches of %d with %d draws", from, to-1, batch, draws)
	}
	nm := tr.target.Monomials()
	if tr.pf == nil {
		nm = 0
	}
	out := &Samples{LogQ: make([]float64, n), Action: make([]float64, n), LogW: make([]float64, n),
		Plaquette: make([]float64, n), Charge: make([]float64, n), Draws: draws, Monomials: nm}
	for range nm * draws {
		out.LogRatio = append(out.LogRatio, make([]float64, n))
	}
	if tr.target.marginal != nil {
		out.LogWMarginal = make([]float64, n)
	}
	key := rng.New(tr.seed, name)
	pfKey := rng.New(tr.seed, name+"-pf")
	defer func() { tr.tape.NoGrad = false }()
	pfq := make([]float64, batch)
	for start := 0; start < n; start += batch {
		// The replicas split each batch as evenly as they can (a batch
		// smaller than the replicas leaves some idle).
		m := min(batch, n-start)
		lo, hi := env.Replica*m/env.Replicas, (env.Replica+1)*m/env.Replicas
		// In chunks whose tensors stay bounded whatever the batch (the
		// heads of every layer of every monomial live until the chunk is
		// done); proposal k depends on k alone, not on the chunks.
		chunk := max(1, sampleRows/tr.target.Field().Space().Layout().Volume())
		for c := lo; c < hi; c += chunk {
			if err := tr.drawBatch(out, from, start+c, min(chunk, hi-c), nm, key, pfKey, pfq); err != nil {
				return nil, err
			}
		}
		if tr.Progress != nil {
			tr.Progress(min(start+batch, n), n)
		}
	}
	all := [][]float64{out.LogQ, out.Action, out.Plaquette, out.Charge}
	if out.LogWMarginal != nil {
		all = append(all, out.LogWMarginal)
	}
	all = append(all, out.LogRatio...)
	for _, x := range all {
		env.World.Allreduce(mpi.Sum, x)
	}
	for k := range out.LogW {
		out.LogW[k] = -out.Action[k] - out.LogQ[k]
		for i := range nm {
			out.LogW[k] += out.LogRatio[i*draws][k]
		}
	}
	return out, nil
}

// sampleRows bounds the (site, member) rows a chunk of a sampling batch
// holds at once: the tape keeps every layer's context-head output until the
// chunk is done (~0.9 GB for the default joint model at 2048 rows).
const sampleRows = 2048

// drawBatch draws the b proposals of out from first on (proposals
// from+first, …) on this replica's ranks and stores them on the domain's
// rank 0 (the caller sums over the world).
func (tr *Trainer) drawBatch(out *Samples, from, first, b, nm int, key, pfKey rng.Key, pfq []float64) error {
	env := tr.env
	draws := out.Draws
	t := tr.tape
	t.Reset()
	t.NoGrad = true
	z := tr.flow.Prior(b, from+first, key)
	theta, logJ, err := tr.flow.Forward(t, z)
	if err != nil {
		return err
	}
	logq := tr.main.logQ(logJ, &tr.sampleLogq)
	var links, ctx *nnlayers.Tensor
	if nm > 0 {
		links = tr.flow.Links(t, theta)
		if ctx, err = tr.pf.Context(t, links); err != nil {
			return err
		}
	}
	mine := env.Domain.Rank() == 0
	err = tr.main.eachMember(b, memberFunc(func(tg *Target, k int) error {
		s, err := tg.Evaluate(theta, k, 0)
		if err != nil {
			return err
		}
		u := tg.Field()
		plaq := u.AveragePlaquette()
		q := 0.0 // 2D SU(N) has no topological charge
		if u.Space().Group().Abelian() {
			if q, err = u.TopologicalCharge(); err != nil {
				return err
			}
		}
		det, ok, err := tg.Marginal()
		if err != nil {
			return err
		}
		if mine {
			i := first + k
			out.LogQ[i], out.Action[i] = logq[k], s
			out.Plaquette[i], out.Charge[i] = plaq, q
			if ok {
				out.LogWMarginal[i] = -s - det - logq[k]
			}
		}
		return nil
	}))
	if err != nil {
		return err
	}
	for i := range nm {
		c := tr.pf.Conditional(i)
		heads := c.Heads(t, ctx) // depend on U alone: once for every draw
		for j := range draws {
			d := tr.draws
			d.Reset()
			d.NoGrad = true
			chi := c.Prior(b, from+first, pfKey.Derive(uint64(i)).Derive(uint64(j)))
			phi, lj, err := c.ForwardHeads(d, links, heads, chi)
			if err != nil {
				return err
			}
			tr.main.conditionalLogQ(c, chi, lj, pfq)
			err = tr.main.eachMember(b, memberFunc(func(tg *Target, k int) error {
				tg.Load(theta, k)
				s, err := tg.Pseudofermion(i, false, phi, theta, k, 0)
				if err != nil {
					return err
				}
				if mine {
					out.LogRatio[i*draws+j][first+k] = -s - pfq[k]
				}
				return nil
			}))
			if err != nil {
				return err
			}
		}
	}
	return nil
}
