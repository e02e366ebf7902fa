package flow

import (
	"fmt"

	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
	"pfmpi/vmath"
)

// A training step runs the replica's share of the batch in micro-batches
// j = 0, 1, …: the gradient of each is computed from zero by one copy of
// the model, and the step's gradient is their sum in the order of j. The
// trainer's own model does this on its tape (its operations spread over
// the tape's goroutines); with copies ([Trainer.SetCopies]) micro-batches
// j, j+1, … run at once, one per copy and goroutine. Either way the loss
// and the gradient are the same bit for bit.

// Copy is a copy of the trained model that computes the gradients of
// micro-batches on a goroutine of its own: flows built like the trainer's
// (their parameter values are made to share the trainer's), a target copy
// that never calls MPI (mpi.Self) and a tape of one goroutine.
type Copy struct {
	Flow   GaugeFlow
	PF     *pfflow.Model // nil for a marginal model
	Target *Target
	Tape   *nnlayers.Tape
}

// stepper computes the gradient of micro-batches with one copy of the
// model.
type stepper struct {
	tr      *Trainer
	flow    GaugeFlow
	pf      *pfflow.Model
	tape    *nnlayers.Tape
	target  *Target
	targets []*Target // per goroutine of the tape (nil: members in order)
	domain  mpi.Comm
	params  nnlayers.Params
	// buffers of a micro-batch
	member      memberTask
	mloss, logq []float64
	phis, pfJ   []*nnlayers.Tensor
	pfq         [][]float64
	scores      []*nnlayers.Tensor // T^{−†}χ per monomial (path gradient)
	scratch     *nnlayers.Tape     // InverseAdjoint's tape (path gradient)
	part        partTask
	// the last micro-batch of a copy
	job  partJob
	loss float64
	err  error
	// the copy's task: a micro-batch (job), or a share of the optimizer's
	// update or of the sum of a round's gradients
	task  copyTask
	share int
	round int // copies whose gradients a taskSum adds
}

// copyTask is what a copy's goroutine does when started.
type copyTask int

const (
	taskMicroBatch copyTask = iota
	taskUpdate              // share of the optimizer's update
	taskSum                 // share of the sum of a round's gradients
)

// partJob is a micro-batch: members [m0, m0+b) of the replica's share
// (global indices first+m0 …) of step n.
type partJob struct{ n, first, m0, b int }

// SetCopies lets training steps run micro-batches at once, one per copy on
// a goroutine of its own (each copy's tape should have one goroutine). The
// copies' parameters are set to share the values of the trainer's; their
// gradients are their own. The lattice must be held whole by this rank.
// Results do not depend on the copies.
func (tr *Trainer) SetCopies(cs []Copy) error {
	if tr.env.Domain.Size() != 1 {
		return fmt.Errorf("flow: copies of the model need the lattice on one rank, not %d", tr.env.Domain.Size())
	}
	tr.stopCopies()
	var ss []*stepper
	for i, c := range cs {
		if (c.PF == nil) != (tr.pf == nil) || c.Target == nil || c.Tape == nil {
			return fmt.Errorf("flow: copy %d is not a copy of the model (flows, target and tape)", i)
		}
		if c.Target.Monomials() != tr.target.Monomials() || (c.Target.marginal == nil) != (tr.target.marginal == nil) {
			return fmt.Errorf("flow: the target of copy %d differs from the trainer's", i)
		}
		ps := c.Flow.Params()
		if c.PF != nil {
			ps = append(append(nnlayers.Params(nil), ps...), c.PF.Params()...)
		}
		if len(ps) != len(tr.params) {
			return fmt.Errorf("flow: copy %d has %d parameters, the model %d", i, len(ps), len(tr.params))
		}
		for j, p := range ps {
			if q := tr.params[j]; p.Name != q.Name || p.Size() != q.Size() {
				return fmt.Errorf("flow: parameter %d of copy %d is %s (%d values), the model's %s (%d)", j, i, p.Name, p.Size(), q.Name, q.Size())
			}
		}
		for j, p := range ps {
			p.Value = tr.params[j].Value
		}
		ss = append(ss, &stepper{tr: tr, flow: c.Flow, pf: c.PF, tape: c.Tape, target: c.Target, domain: mpi.Self(), params: ps})
	}
	tr.copies = ss
	if len(ss) > 1 {
		tr.start = make([]chan struct{}, len(ss))
		tr.done = make(chan struct{}, len(ss))
		for i := 1; i < len(ss); i++ {
			tr.start[i] = make(chan struct{})
			go tr.copyLoop(ss[i], tr.start[i])
		}
	}
	return nil
}

// copyLoop computes the micro-batches handed to copy s until the trainer
// closes.
func (tr *Trainer) copyLoop(s *stepper, start chan struct{}) {
	for range start {
		s.run()
		tr.done <- struct{}{}
	}
}

// stopCopies ends the copies' goroutines.
func (tr *Trainer) stopCopies() {
	for _, c := range tr.start {
		if c != nil {
			close(c)
		}
	}
	for _, s := range tr.copies {
		s.closeScratch()
	}
	tr.start, tr.copies = nil, nil
}

// closeScratch releases the stepper's scratch tape.
func (s *stepper) closeScratch() {
	if s.scratch != nil {
		s.scratch.Close()
		s.scratch = nil
	}
}

// run computes the gradient of the copy's job from zero, or its share of
// the optimizer's update.
func (s *stepper) run() {
	switch s.task {
	case taskUpdate:
		s.tr.opt.Update(s.share, len(s.tr.copies))
		return
	case taskSum:
		s.tr.sumShare(s.share, s.round)
		return
	}
	start := s.tape.Begin()
	s.params.ZeroGrad()
	s.tape.End(gradSumKind, start, 0, false)
	j := s.job
	s.loss, s.err = s.gradientPart(j.n, j.first, j.m0, j.b)
}

// Gradient sets the parameters' gradients (summed over all ranks) of the
// loss of step n and returns the loss, (1/B) Σ_b [log q(U_b) + S(U_b)] with
// U_b = f(z_b): the gradient of S flows back through the layers (the
// reparameterisation trick), that of log q through the log-Jacobians. The
// replica's share of the batch runs in micro-batches ([Trainer.SetMicroBatch])
// whose gradients add up in order: the same loss and gradient, up to the
// order of the sums, with a working set that stays in cache.
func (tr *Trainer) Gradient(n int) (float64, error) {
	env := tr.env
	b := tr.batch / env.Replicas
	first := env.Replica * b
	t := tr.tape
	mb := tr.microBatch(b)
	parts := (b + mb - 1) / mb
	if err := tr.checkCopies(); err != nil {
		return 0, err
	}
	loss := 0.0
	switch {
	case len(tr.copies) == 0 && parts == 1:
		// The gradient from zero is the step's.
		s := &tr.main
		s.job = partJob{n: n, first: first, m0: 0, b: b}
		s.run()
		if s.err != nil {
			return 0, s.err
		}
		loss = s.loss
	case len(tr.copies) == 0:
		start := t.Begin()
		tr.sum = grow(tr.sum, tr.params.Size())
		clear(tr.sum)
		t.End(gradSumKind, start, 0, false)
		for j := range parts {
			s := &tr.main
			s.job = partJob{n: n, first: first, m0: j * mb, b: min(mb, b-j*mb)}
			s.run()
			if s.err != nil {
				return 0, s.err
			}
			loss += s.loss
			start := t.Begin()
			addGrads(tr.sum, s.params)
			t.End(gradSumKind, start, 0, false)
		}
		start = t.Begin()
		setGrads(tr.params, tr.sum)
		t.End(gradSumKind, start, 0, false)
	default:
		start := t.Begin()
		tr.params.ZeroGrad()
		t.End(gradSumKind, start, 0, false)
		nc := len(tr.copies)
		for j0 := 0; j0 < parts; j0 += nc {
			round := min(nc, parts-j0)
			for c := range round {
				m0 := (j0 + c) * mb
				tr.copies[c].job = partJob{n: n, first: first, m0: m0, b: min(mb, b-m0)}
			}
			for c := 1; c < round; c++ {
				tr.start[c] <- struct{}{}
			}
			tr.copies[0].run()
			for c := 1; c < round; c++ {
				<-tr.done
			}
			for c := range round {
				s := tr.copies[c]
				if s.err != nil {
					return 0, s.err
				}
				loss += s.loss
			}
			start := t.Begin()
			tr.onCopies(taskSum, round)
			t.End(gradSumKind, start, 0, false)
		}
	}
	start := t.Begin()
	tr.grad = nnlayers.AllreduceGrads(env.World, tr.params, tr.grad)
	t.End("gradient all-reduce", start, 0, false)
	// The loss: one contribution per replica (domain rank 0).
	if env.Domain.Rank() != 0 {
		loss = 0
	}
	return mpi.SumFloat64(env.World, loss) / float64(tr.batch), nil
}

// update applies the optimizer's step begun, in shares on the copies'
// goroutines when there are copies.
func (tr *Trainer) update() {
	if len(tr.copies) <= 1 {
		tr.opt.Update(0, 1)
		return
	}
	tr.onCopies(taskUpdate, 0)
}

// onCopies runs task in shares on every copy's goroutine (copy 0 on the
// caller's) and waits for them.
func (tr *Trainer) onCopies(task copyTask, round int) {
	nc := len(tr.copies)
	for c, s := range tr.copies {
		s.task, s.share, s.round = task, c, round
	}
	for c := 1; c < nc; c++ {
		tr.start[c] <- struct{}{}
	}
	tr.copies[0].run()
	for c := 1; c < nc; c++ {
		<-tr.done
	}
	for _, s := range tr.copies {
		s.task = taskMicroBatch
	}
}

// sumShare adds the gradients of copies [0, round), in that order, to the
// trainer's, for share w of len(copies) of the parameters' elements (the
// order of every element's sum does not depend on the shares).
func (tr *Trainer) sumShare(w, round int) {
	nc := len(tr.copies)
	total := tr.params.Size()
	lo, hi := total*w/nc, total*(w+1)/nc
	off := 0
	for j, p := range tr.params {
		size := len(p.Grad)
		i0, i1 := max(lo-off, 0), min(hi-off, size)
		if i0 < i1 {
			d := p.Grad[i0:i1]
			for c := range round {
				vmath.Add(d, tr.copies[c].params[j].Grad[i0:i1])
			}
		}
		off += size
	}
}

// checkCopies verifies that the copies still share the model's parameter
// values (a parameter's storage replaced would silently train a stale
// copy).
func (tr *Trainer) checkCopies() error {
	for i, s := range tr.copies {
		for j, p := range s.params {
			q := tr.params[j]
			if len(p.Value) != len(q.Value) || (len(q.Value) > 0 && &p.Value[0] != &q.Value[0]) {
				return fmt.Errorf("flow: parameter %s of copy %d no longer shares the model's values", q.Name, i)
			}
		}
	}
	return nil
}

// addGrads adds the gradients of ps, in order, to sum.
func addGrads(sum []float64, ps nnlayers.Params) {
	off := 0
	for _, p := range ps {
		s := sum[off : off+len(p.Grad)]
		for i, g := range p.Grad {
			s[i] += g
		}
		off += len(p.Grad)
	}
}

// setGrads sets the gradients of ps from sum.
func setGrads(ps nnlayers.Params, sum []float64) {
	off := 0
	for _, p := range ps {
		off += copy(p.Grad, sum[off:off+len(p.Grad)])
	}
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// gradientPart adds the gradient of members [m0, m0+b) of the replica's
// share (global indices first+m0 …) to the copy's parameters and returns
// their share of the loss, Σ [log q + S] (not yet divided by the batch).
func (s *stepper) gradientPart(n, first, m0, b int) (float64, error) {
	tr := s.tr
	t := s.tape
	t.Reset()
	t.NoGrad = false
	scale := 1 / float64(tr.batch)
	start := t.Begin()
	z := s.flow.Prior(b, first+m0, rng.New(tr.seed, "flow-train").Derive(uint64(n)))
	t.End(priorKind, start, 0, false)
	// With a gauge trainer the gauge flow's gradient of this loss is
	// replaced by the marginal one (Trainer.SetGaugeTrainer): its layers
	// are not recorded, and the backward pass stops at the configuration.
	t.NoGrad = tr.gauge != nil
	theta, logJ, err := s.flow.Forward(t, z)
	t.NoGrad = false
	if err != nil {
		return 0, err
	}
	logq := s.logQ(logJ, &s.logq)
	s.phis, s.pfJ = s.phis[:0], s.pfJ[:0]
	if s.pf != nil {
		links := s.flow.Links(t, theta)
		ctx, err := s.pf.Context(t, links)
		if err != nil {
			return 0, err
		}
		key := rng.New(tr.seed, "flow-train-pf").Derive(uint64(n))
		for len(s.pfq) < s.pf.Monomials() {
			s.pfq = append(s.pfq, nil)
		}
		for i := range s.pf.Monomials() {
			c := s.pf.Conditional(i)
			start := t.Begin()
			chi := c.Prior(b, first+m0, key.Derive(uint64(i)))
			t.End(priorKind, start, 0, false)
			var phi, lj *nnlayers.Tensor
			if tr.pathGrad {
				heads := c.Heads(t, ctx)
				if s.scratch == nil {
					s.scratch = nnlayers.NewTape(t.Workers())
				}
				score, err := c.InverseAdjoint(s.scratch, links, heads, chi)
				if err != nil {
					return 0, err
				}
				s.scores = append(s.scores[:i], score)
				phi, lj, err = c.ForwardHeads(t, links, heads, chi)
			} else {
				phi, lj, err = c.Forward(t, links, ctx, chi)
			}
			if err != nil {
				return 0, err
			}
			if cap(s.pfq[i]) < b {
				s.pfq[i] = make([]float64, b)
			}
			s.pfq[i] = s.pfq[i][:b]
			s.conditionalLogQ(c, chi, lj, s.pfq[i])
			s.phis, s.pfJ = append(s.phis, phi), append(s.pfJ, lj)
		}
	}
	if cap(s.mloss) < b {
		s.mloss = make([]float64, b)
	}
	mloss := s.mloss[:b]
	start = t.Begin()
	s.part = partTask{s: s, theta: theta, logq: logq, mloss: mloss, scale: scale}
	err = s.eachMember(b, &s.part)
	s.part = partTask{}
	if err != nil {
		return 0, err
	}
	t.End(targetKind, start, 0, false)
	loss := 0.0
	for _, l := range mloss {
		loss += l
	}
	for i := range logJ.Grad {
		logJ.Grad[i] = -scale // log q = log r − Σ logJ
	}
	for i, lj := range s.pfJ {
		if tr.pathGrad {
			// The path gradient: log q(φ|U) differentiated through φ alone,
			// ∇_φ log q = −2 T^{−†}χ, instead of through log J (see
			// Trainer.SetPathGradient).
			g := s.phis[i].Grad
			for j, a := range s.scores[i].Data {
				g[j] -= 2 * scale * a
			}
			continue
		}
		for j := range lj.Grad {
			lj.Grad[j] = -scale
		}
	}
	return loss, t.Backward()
}

// partTask evaluates the target on the members of a micro-batch.
type partTask struct {
	s     *stepper
	theta *nnlayers.Tensor
	logq  []float64
	mloss []float64
	scale float64
}

func (p *partTask) member(tg *Target, k int) error {
	s, err := tg.Evaluate(p.theta, k, p.scale)
	if err != nil {
		return err
	}
	l := p.logq[k] + s
	for i, phi := range p.s.phis {
		si, err := tg.Pseudofermion(i, true, phi, p.theta, k, p.scale)
		if err != nil {
			return err
		}
		l += p.s.pfq[i][k] + si
	}
	p.mloss[k] = l
	return nil
}

// eachMember calls fn.member(target, k) for k ∈ [0, b): in parallel on the
// target copies, or in order on the target.
func (s *stepper) eachMember(b int, fn memberWork) error {
	if len(s.targets) == 0 {
		for k := range b {
			if err := fn.member(s.target, k); err != nil {
				return err
			}
		}
		return nil
	}
	m := &s.member
	m.fn, m.targets = fn, s.targets
	if cap(m.errs) < b {
		m.errs = make([]error, b)
	}
	m.errs = m.errs[:b]
	clear(m.errs)
	s.tape.Run(b, m)
	m.fn = nil
	for _, err := range m.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// logQ returns log q of the local batch members from the log-Jacobian
// density (summed over the domain), in *buf (grown as needed).
func (s *stepper) logQ(logJ *nnlayers.Tensor, buf *[]float64) []float64 {
	b := logJ.B
	if cap(*buf) < b {
		*buf = make([]float64, b)
	}
	sums := (*buf)[:b]
	clear(sums)
	for x := 0; x < logJ.V; x++ {
		for k := 0; k < b; k++ {
			sums[k] += logJ.Data[logJ.At(x, k, 0)]
		}
	}
	s.domain.Allreduce(mpi.Sum, sums)
	for k := range sums {
		sums[k] = s.flow.LogPrior() - sums[k]
	}
	return sums
}

// conditionalLogQ sets out[k] = log q(φ_k|U_k) = log r(χ_k) − Σ logJ,
// summed over the domain.
func (s *stepper) conditionalLogQ(c *pfflow.Conditional, chi, lj *nnlayers.Tensor, out []float64) {
	c.LogPrior(chi, out)
	for x := 0; x < lj.V; x++ {
		for k := 0; k < lj.B; k++ {
			out[k] -= lj.Data[lj.At(x, k, 0)]
		}
	}
	s.domain.Allreduce(mpi.Sum, out[:lj.B])
}
