package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"pfmpi/decomp"
	"pfmpi/gemm"
	"pfmpi/internal/flowrun"
	"pfmpi/mpi"
)

// trainBenchOptions are the flags of `pfmpi bench -train`.
type trainBenchOptions struct {
	file           string
	steps, warmup  int
	workers        int
	kernels        string
	precision      string
	asJSON         bool
	peakSeconds    float64
	stdout, stderr io.Writer
}

// trainBenchReport is the JSON form of `pfmpi bench -train`.
type trainBenchReport struct {
	File          string              `json:"file"`
	Params        int                 `json:"params"`
	Batch         int                 `json:"batch"`
	Precision     string              `json:"precision"`
	Kernels       string              `json:"kernels"`
	Workers       int                 `json:"workers"`
	Copies        int                 `json:"copies"`
	PeakF64       float64             `json:"peak_gflops_float64"`
	PeakF32       float64             `json:"peak_gflops_float32"`
	Seconds       []float64           `json:"seconds"`
	Median        float64             `json:"median_seconds"`
	SamplesPerSec float64             `json:"samples_per_second"`
	Kinds         []flowrun.KindTime  `json:"kinds"`
	Conv          trainBenchConvTotal `json:"convolutions"`
	PeakRSS       float64             `json:"peak_rss_mib"`
}

type trainBenchConvTotal struct {
	Seconds float64 `json:"seconds"`
	GFlops  float64 `json:"gflop"`
	Rate    float64 `json:"gflops"`
	OfPeak  float64 `json:"of_peak"`
}

// trainBench is `pfmpi bench -train RUN.toml`: training steps of the run
// file's model on one in-process rank (its lattice held whole), with the
// time and counted flops of every kind of work and the core's peak.
func trainBench(o trainBenchOptions) int {
	if o.steps < 1 || o.warmup < 0 || o.workers < 0 {
		fmt.Fprintln(o.stderr, "pfmpi bench -train: -steps ≥ 1, -warmup ≥ 0 and -workers ≥ 0")
		return exitUsage
	}
	arch, err := gemm.ParseArch(o.kernels)
	if err == nil && !gemm.Available(arch) {
		err = fmt.Errorf("this CPU does not run the %s kernels (it runs %v)", arch, gemm.Archs())
	}
	if err != nil {
		fmt.Fprintln(o.stderr, "pfmpi bench -kernels:", err)
		return exitUsage
	}
	if o.workers > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.workers))
	}
	var rep *trainBenchReport
	code := launchBody(1, o.stderr, func(c mpi.Comm) error {
		cfg, name, err := loadConfig(c, o.file)
		if err != nil {
			return err
		}
		if o.precision != "" {
			cfg.Model.Precision = o.precision
		}
		grid := make([]int, len(cfg.Lattice.Dims))
		for i := range grid {
			grid[i] = 1
		}
		lat, err := decomp.NewLattice(cfg.Lattice.Dims, grid, cfg.Action.Precondition == "eo" && cfg.Action.Kappa > 0)
		if err != nil {
			return err
		}
		ly, err := lat.Layout(0)
		if err != nil {
			return err
		}
		// The peak first, on a quiet core.
		peakDur := time.Duration(o.peakSeconds * float64(time.Second))
		p64, p32 := gemm.PeakFlops[float64](arch, peakDur), gemm.PeakFlops[float32](arch, peakDur)
		b, err := flowrun.BenchTrain(flowrun.Env{World: c, Domain: c, Replica: c, Layout: ly, Config: cfg},
			flowrun.BenchOptions{Steps: o.steps, Warmup: o.warmup, Kernels: arch})
		if err != nil {
			return err
		}
		rep = &trainBenchReport{File: name, Params: b.Params, Batch: b.Batch, Precision: b.Precision, Kernels: arch.String(),
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
		return nil
	})
	if code != exitOK {
		return code
	}
	rep.PeakRSS = peakRSS()
	if o.asJSON {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(o.stderr, "pfmpi bench -train:", err)
			return exitError
		}
		return exitOK
	}
	printTrainBench(o.stdout, rep)
	return exitOK
}

// kindCores is the number of cores behind one second of a kind's time:
// all the goroutines when they share each operation, one when copies of
// the model ran micro-batches at once (the times are then core-seconds).
func (r *trainBenchReport) kindCores() float64 {
	if r.Copies > 0 {
		return 1
	}
	return float64(r.Workers)
}

func printTrainBench(w io.Writer, r *trainBenchReport) {
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
