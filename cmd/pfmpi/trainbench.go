package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"pfmpi/decomp"
	"pfmpi/gemm"
	"pfmpi/internal/driver"
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
	var rep *flowrun.TrainBenchReport
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
		b, err := flowrun.BenchTrain(driver.Env{World: c, Domain: c, Replica: c, Layout: ly, Config: cfg},
			flowrun.BenchOptions{Steps: o.steps, Warmup: o.warmup, Kernels: arch})
		if err != nil {
			return err
		}
		rep = flowrun.NewTrainBenchReport(b, name, p64, p32)
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
	rep.WriteText(o.stdout)
	return exitOK
}
