package flowrun

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"pfmpi/gemm"
	"pfmpi/internal/driver"
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
func BenchTrain(env driver.Env, opt BenchOptions) (*TrainBench, error) {
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

// TrainBenchReport is what `pfmpi bench -train` prints (WriteText) or
// writes as JSON: a TrainBench with the core's peak and the convolutions' share.
type TrainBenchReport struct {
	File          string         `json:"file"`
	Params        int            `json:"params"`
	Batch         int            `json:"batch"`
	Precision     string         `json:"precision"`
	Kernels       string         `json:"kernels"`
	Workers       int            `json:"workers"`
	Copies        int            `json:"copies"`
	PeakF64       float64        `json:"peak_gflops_float64"`
	PeakF32       float64        `json:"peak_gflops_float32"`
	Seconds       []float64      `json:"seconds"`
	Median        float64        `json:"median_seconds"`
	SamplesPerSec float64        `json:"samples_per_second"`
	Kinds         []KindTime     `json:"kinds"`
	Conv          TrainBenchConv `json:"convolutions"`
	PeakRSS       float64        `json:"peak_rss_mib"`
}

// TrainBenchConv sums the convolutions of a step.
type TrainBenchConv struct {
	Seconds float64 `json:"seconds"`
	GFlops  float64 `json:"gflop"`
	Rate    float64 `json:"gflops"`
	OfPeak  float64 `json:"of_peak"`
}

// NewTrainBenchReport is the report of b, measured on the run file named
// file, with the core's peak rates p64 and p32 (flop/s, float64 and float32).
func NewTrainBenchReport(b *TrainBench, file string, p64, p32 float64) *TrainBenchReport {
	rep := &TrainBenchReport{File: file, Params: b.Params, Batch: b.Batch, Precision: b.Precision, Kernels: b.Kernels.String(),
		Workers: b.Workers, Copies: b.Copies, PeakF64: p64 / 1e9, PeakF32: p32 / 1e9, Seconds: b.Seconds, Median: b.Median(), Kinds: b.Kinds}
	rep.SamplesPerSec = float64(b.Batch) / rep.Median
	peak := rep.PeakF64
	if b.Precision == "float32" {
		peak = rep.PeakF32
	}
	for _, k := range b.Kinds {
		if k.Conv {
			rep.Conv.Seconds += k.Seconds
			rep.Conv.GFlops += k.Flops / 1e9
		}
	}
	if rep.Conv.Seconds > 0 {
		rep.Conv.Rate = rep.Conv.GFlops / rep.Conv.Seconds
		rep.Conv.OfPeak = rep.Conv.Rate / (peak * rep.kindCores())
	}
	return rep
}

// kindCores is the number of cores behind one second of a kind's time:
// all the goroutines when they share each operation, one when copies of
// the model ran micro-batches at once (the times are then core-seconds).
func (r *TrainBenchReport) kindCores() float64 {
	if r.Copies > 0 {
		return 1
	}
	return float64(r.Workers)
}

// WriteText prints the report as a table.
func (r *TrainBenchReport) WriteText(w io.Writer) {
	peak := r.PeakF64
	if r.Precision == "float32" {
		peak = r.PeakF32
	}
	peak *= r.kindCores()
	// The time the kinds share: the step's, on every core for copies.
	budget := r.Median * float64(r.Workers) / r.kindCores()
	s := slices.Clone(r.Seconds)
	slices.Sort(s)
	fmt.Fprintf(w, "pfmpi bench -train %s\n", r.File)
	fmt.Fprintf(w, "  model        %d parameters, batch %d, %s networks\n", r.Params, r.Batch, r.Precision)
	mode := "each operation spread over them"
	if r.Copies > 0 {
		mode = fmt.Sprintf("%d copies of the model, micro-batches at once", r.Copies)
	}
	fmt.Fprintf(w, "  kernels      %s, %d goroutine(s) (GOMAXPROCS %d), %s\n", r.Kernels, r.Workers, runtime.GOMAXPROCS(0), mode)
	fmt.Fprintf(w, "  core peak    %.1f GFLOP/s float64, %.1f float32 per core (register FMA chains)\n", r.PeakF64, r.PeakF32)
	fmt.Fprintf(w, "  step         %.3f s (median of %d; min %.3f, max %.3f) = %.1f samples/s\n",
		r.Median, len(s), s[0], s[len(s)-1], r.SamplesPerSec)
	total := 0.0
	for _, k := range r.Kinds {
		total += k.Flops
	}
	unit := "s/step"
	if r.Copies > 0 {
		unit = "core-s/step"
	}
	fmt.Fprintf(w, "  counted      %.2f GFLOP per step, %.2f of them in convolutions\n", total/1e9, r.Conv.GFlops)
	fmt.Fprintf(w, "  %-38s %11s %6s %10s %9s %9s\n", "kind of work", unit, "share", "GFLOP/step", "GFLOP/s", "of peak")
	sum := 0.0
	for _, k := range r.Kinds {
		sum += k.Seconds
		line := fmt.Sprintf("  %-38s %11.4f %5.1f%%", k.Kind, k.Seconds, 100*k.Seconds/budget)
		if k.Flops > 0 {
			line += fmt.Sprintf(" %10.3f %9.2f", k.Flops/1e9, k.Flops/1e9/k.Seconds)
			if k.Conv {
				line += fmt.Sprintf(" %8.1f%%", 100*k.Flops/1e9/k.Seconds/peak)
			}
		}
		fmt.Fprintln(w, line)
	}
	other := "other (outside the profile)"
	if r.Copies > 0 {
		other = "other (outside the profile, idle cores)"
	}
	fmt.Fprintf(w, "  %-38s %11.4f %5.1f%%\n", other, budget-sum, 100*(budget-sum)/budget)
	fmt.Fprintf(w, "  convolutions together: %.3f %s, %.2f GFLOP/s = %.1f%% of the peak of %.0f core(s)\n",
		r.Conv.Seconds, unit, r.Conv.Rate, 100*r.Conv.OfPeak, r.kindCores())
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "  peak RSS     %.0f MiB\n", r.PeakRSS)
	}
}
