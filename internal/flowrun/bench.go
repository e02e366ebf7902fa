package flowrun

import (
	"fmt"
	"slices"
	"time"

	"pfmpi/gemm"
	"pfmpi/nnlayers"
)

// BenchOptions are the knobs of [BenchTrain].
type BenchOptions struct {
	Steps, Warmup int       // timed steps after untimed ones
	Kernels       gemm.Arch // kernel family of the convolutions
}

// TrainBench is what BenchTrain measured: the seconds of every timed step
// and, per kind of work, its time and counted flops per step (averaged over
// the timed steps).
type TrainBench struct {
	Params  int
	Batch   int
	Workers int
	// Copies is the number of copies of the model that trained
	// micro-batches at once (0: one model, its operations spread over the
	// goroutines); with copies, the kinds' times are core-seconds summed
	// over them.
	Copies    int
	Kernels   gemm.Arch
	Precision string
	Seconds   []float64
	Kinds     []KindTime
}

// KindTime is one kind of work of a training step.
type KindTime struct {
	Kind    string
	Seconds float64 // forward + backward, per step
	Flops   float64 // counted, per step
	Conv    bool    // a convolution (its flops are matrix products)
}

// Median is the median of the step times.
func (b *TrainBench) Median() float64 {
	s := slices.Clone(b.Seconds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchTrain times training steps of the run file's model and [train]
// settings on env (the model as `pfmpi run` builds it; no output is
// written): Warmup steps, then Steps timed ones with a profile of the
// tape's operations.
func BenchTrain(env Env, opt BenchOptions) (*TrainBench, error) {
	if env.Config.Train == nil {
		return nil, fmt.Errorf("%s has no [train] section: the training benchmark times its steps", env.Config.File())
	}
	if err := Supported(env.Config); err != nil {
		return nil, err
	}
	m, err := newModel(env)
	if err != nil {
		return nil, err
	}
	defer m.close()
	for _, t := range m.tapes() {
		if err := t.SetKernels(opt.Kernels); err != nil {
			return nil, err
		}
	}
	res := &TrainBench{Params: m.trainer.Params().Size(), Batch: env.Config.Train.Batch, Workers: m.tape.Workers(),
		Copies: len(m.copies), Kernels: opt.Kernels, Precision: m.precision.String()}
	for n := range opt.Warmup {
		if _, err := m.trainer.Step(n); err != nil {
			return nil, err
		}
	}
	prof := nnlayers.NewProfile()
	for _, t := range m.tapes() {
		t.SetProfile(prof)
		defer t.SetProfile(nil)
	}
	for n := range opt.Steps {
		start := time.Now()
		if _, err := m.trainer.Step(opt.Warmup + n); err != nil {
			return nil, err
		}
		res.Seconds = append(res.Seconds, time.Since(start).Seconds())
	}
	steps := float64(max(opt.Steps, 1))
	for _, e := range prof.Entries() {
		res.Kinds = append(res.Kinds, KindTime{Kind: e.Kind, Seconds: (e.Forward + e.Backward).Seconds() / steps,
			Flops: float64(e.Flops) / steps, Conv: e.Products})
	}
	return res, nil
}
