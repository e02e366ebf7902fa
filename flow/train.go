package flow

import (
	"fmt"

	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// Env is the parallel setting of a run: the world, this rank's domain (one
// lattice), and which of the replicas (copies of the lattice splitting the
// batch) this rank belongs to.
type Env struct {
	World, Domain     mpi.Comm
	Replica, Replicas int
}

// Single is the setting of one rank without replicas.
func Single(c mpi.Comm) Env { return Env{World: c, Domain: c, Replica: 0, Replicas: 1} }

// Trainer trains a U(1) flow by reverse KL self-training (Eq. B1) and
// draws samples from it.
type Trainer struct {
	env    Env
	flow   *U1
	target *Target
	opt    *nnlayers.Adam
	tape   *nnlayers.Tape
	seed   uint64
	batch  int // global batch of a training step
	params nnlayers.Params
	grad   []float64
	local  []float64
}

// NewTrainer returns the trainer of f against target with optimizer opt
// (nil: sampling only); batch is the global batch, split over the replicas.
func NewTrainer(env Env, f *U1, target *Target, opt *nnlayers.Adam, tape *nnlayers.Tape, seed uint64, batch int) (*Trainer, error) {
	if batch%env.Replicas != 0 {
		return nil, fmt.Errorf("flow: a batch of %d does not split over %d replicas", batch, env.Replicas)
	}
	return &Trainer{env: env, flow: f, target: target, opt: opt, tape: tape, seed: seed, batch: batch, params: f.Params()}, nil
}

// StepResult is what one training step measured.
type StepResult struct {
	Loss     float64 // (1/B) Σ [log q + S]: KL(q‖p) − log Z
	GradNorm float64 // before clipping
	LR       float64 // the learning rate used
}

// Step takes optimisation step n: a fresh batch from the prior (keys from
// the seed and n only, so a resumed run repeats it exactly), the
// reparameterised gradient of the loss, the all-reduce and the optimizer
// update.
func (tr *Trainer) Step(n int) (StepResult, error) {
	if tr.opt == nil {
		return StepResult{}, fmt.Errorf("flow: this trainer has no optimizer")
	}
	loss, err := tr.Gradient(n)
	if err != nil {
		return StepResult{}, err
	}
	lr := tr.opt.LR()
	norm := tr.opt.Step()
	return StepResult{Loss: loss, GradNorm: norm, LR: lr}, nil
}

// Gradient sets the parameters' gradients (summed over all ranks) of the
// loss of step n and returns the loss, (1/B) Σ_b [log q(U_b) + S(U_b)] with
// U_b = f(z_b): the gradient of S flows back through the layers (the
// reparameterisation trick), that of log q through the log-Jacobians.
func (tr *Trainer) Gradient(n int) (float64, error) {
	env := tr.env
	b := tr.batch / env.Replicas
	first := env.Replica * b
	t := tr.tape
	t.Reset()
	t.NoGrad = false
	z := tr.flow.Prior(b, first, rng.New(tr.seed, "flow-train").Derive(uint64(n)))
	theta, logJ, err := tr.flow.Forward(t, z)
	if err != nil {
		return 0, err
	}
	scale := 1 / float64(tr.batch)
	logq, err := tr.logQ(logJ)
	if err != nil {
		return 0, err
	}
	loss := 0.0
	for k := 0; k < b; k++ {
		s, err := tr.target.Evaluate(theta, k, scale)
		if err != nil {
			return 0, err
		}
		loss += logq[k] + s
	}
	for i := range logJ.Grad {
		logJ.Grad[i] = -scale // log q = log r − Σ logJ
	}
	tr.params.ZeroGrad()
	t.Backward()
	tr.grad = nnlayers.AllreduceGrads(env.World, tr.params, tr.grad)
	// The loss: one contribution per replica (domain rank 0).
	if env.Domain.Rank() != 0 {
		loss = 0
	}
	return mpi.SumFloat64(env.World, loss) * scale, nil
}

// logQ returns log q of the local batch members from the log-Jacobian
// density (summed over the domain).
func (tr *Trainer) logQ(logJ *nnlayers.Tensor) ([]float64, error) {
	b := logJ.B
	if cap(tr.local) < b {
		tr.local = make([]float64, b)
	}
	sums := tr.local[:b]
	clear(sums)
	for s := 0; s < logJ.V; s++ {
		for k := 0; k < b; k++ {
			sums[k] += logJ.Data[logJ.At(s, k, 0)]
		}
	}
	tr.env.Domain.Allreduce(mpi.Sum, sums)
	out := make([]float64, b)
	for k := range out {
		out[k] = tr.flow.LogPrior() - sums[k]
	}
	return out, nil
}

// Samples are proposals of the flow in global order (every rank holds all).
type Samples struct {
	LogQ, Action, LogW []float64 // log q, S and log w = −S − log q
	Plaquette, Charge  []float64 // average plaquette, topological charge
}

// Sample draws n proposals (n and batch divisible by the replicas; the
// last batch may be smaller) from keys of purpose (seed, name), batch at a
// time, without gradients.
func (tr *Trainer) Sample(n, batch int, name string) (*Samples, error) {
	env := tr.env
	if n%env.Replicas != 0 || batch%env.Replicas != 0 || batch < 1 {
		return nil, fmt.Errorf("flow: %d samples in batches of %d do not split over %d replicas", n, batch, env.Replicas)
	}
	out := &Samples{LogQ: make([]float64, n), Action: make([]float64, n), LogW: make([]float64, n),
		Plaquette: make([]float64, n), Charge: make([]float64, n)}
	key := rng.New(tr.seed, name)
	t := tr.tape
	for start := 0; start < n; start += batch {
		b := min(batch, n-start) / env.Replicas
		first := start + env.Replica*b
		t.Reset()
		t.NoGrad = true
		z := tr.flow.Prior(b, first, key)
		theta, logJ, err := tr.flow.Forward(t, z)
		if err != nil {
			t.NoGrad = false
			return nil, err
		}
		logq, err := tr.logQ(logJ)
		if err != nil {
			return nil, err
		}
		for k := 0; k < b; k++ {
			s, err := tr.target.Evaluate(theta, k, 0)
			if err != nil {
				return nil, err
			}
			u := tr.target.Field()
			plaq := u.AveragePlaquette()
			q, err := u.TopologicalCharge()
			if err != nil {
				return nil, err
			}
			if env.Domain.Rank() == 0 {
				i := first + k
				out.LogQ[i], out.Action[i], out.LogW[i] = logq[k], s, -s-logq[k]
				out.Plaquette[i], out.Charge[i] = plaq, q
			}
		}
		t.NoGrad = false
	}
	for _, x := range [][]float64{out.LogQ, out.Action, out.LogW, out.Plaquette, out.Charge} {
		env.World.Allreduce(mpi.Sum, x)
	}
	return out, nil
}
