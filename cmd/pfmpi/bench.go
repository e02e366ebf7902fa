package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"

	"pfmpi/bench"
	"pfmpi/config"
	"pfmpi/group"
	"pfmpi/internal/atomicfile"
	"pfmpi/internal/flowrun"
	"pfmpi/internal/rundir"
	"pfmpi/mpi"
)

// benchCommand is `pfmpi bench`: the standard sweep of volumes.
func benchCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	ranks := fs.Int("ranks", 0, "run `N` in-process ranks (no MPI)")
	asJSON := fs.Bool("json", false, "one JSON object per result")
	quick := fs.Bool("quick", false, "tiny volumes (a smoke test)")
	repeats := fs.Int("repeats", 5, "timed repetitions (best counts; HMC and training: median of steps)")
	weak := fs.String("weak", "", "weak scaling: measure -ops with `LOCAL` sites per rank (e.g. 32x32) on these ranks")
	strong := fs.String("strong", "", "strong scaling: measure -ops on a `LATTICE` (e.g. 64x64) split over these ranks")
	gridFlag := fs.String("grid", "", "with -weak/-strong: the process `GRID` (e.g. 2x1; default: ranks spread over the directions)")
	ops := fs.String("ops", strings.Join(bench.ScalingOps(), ","), "with -weak/-strong: the `operations`")
	groupName := fs.String("group", group.U1.String(), "with -weak/-strong: the gauge `group` (u1, su3)")
	csvPath := fs.String("csv", "", "with -weak/-strong: append the points to `FILE` (CSV)")
	report := fs.Bool("report", false, "read the CSV files given as arguments and print the weak-scaling efficiencies")
	png := fs.String("png", "", "with -report: also plot them to `FILE`")
	model := fs.Bool("model", false, "calibrate the performance model on the CSV files given as arguments and print its predictions")
	latency := fs.Duration("latency", 2000, "with -model: network latency α per message on the cluster to predict")
	bandwidth := fs.Float64("bandwidth", 5, "with -model: network bandwidth β per rank, GB/s")
	sumLatency := fs.Duration("sum-latency", 3000, "with -model: latency per stage of a global sum")
	params := fs.Int("params", 20000, "with -model: parameters of the flow whose gradient is all-reduced")
	train := fs.String("train", "", "time training steps of the model of `RUN.toml` with a breakdown by kind of work")
	steps := fs.Int("steps", 10, "with -train: timed steps")
	warmup := fs.Int("warmup", 2, "with -train: untimed steps first")
	workers := fs.Int("workers", 0, "with -train: goroutines (GOMAXPROCS; 0: as the process has)")
	kernels := fs.String("kernels", "auto", "with -train: kernel `family` of the convolutions (auto, avx512, avx2, generic)")
	precision := fs.String("precision", "", "with -train: override model.precision (float64, float32)")
	peakTime := fs.Float64("peak-time", 0.3, "with -train: seconds to measure the core's peak")
	compare := fs.String("compare", "", "time D side by side with the C reference `PROGRAM` (build it: make -C bench/cref) on one rank")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark to `FILE` (go tool pprof)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if *train != "" {
		if len(pos) != 0 {
			fmt.Fprintln(stderr, "pfmpi bench -train RUN.toml takes no other arguments")
			return exitUsage
		}
		if *precision != "" && *precision != "float64" && *precision != "float32" {
			fmt.Fprintf(stderr, "pfmpi bench -precision %q: use float64 or float32\n", *precision)
			return exitUsage
		}
		if *profile != "" {
			f, err := os.Create(*profile)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(stderr, "pfmpi bench -cpuprofile:", err)
				return exitError
			}
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		return trainBench(trainBenchOptions{file: *train, steps: *steps, warmup: *warmup, workers: *workers, kernels: *kernels,
			precision: *precision, asJSON: *asJSON, peakSeconds: *peakTime, stdout: stdout, stderr: stderr})
	}
	if *compare != "" {
		if len(pos) != 0 || *repeats < 1 || *ranks > 1 {
			fmt.Fprintln(stderr, "pfmpi bench -compare PROGRAM [-quick] [-repeats R] [-json]: one rank, no other arguments")
			return exitUsage
		}
		return launchBody(*ranks, stderr, func(c mpi.Comm) error {
			return bench.Compare(c, *compare, bench.CompareVolumes(*quick), *repeats, func(r bench.CompareRow) {
				if *asJSON {
					b, _ := json.Marshal(r)
					fmt.Fprintln(stdout, string(b))
					return
				}
				fmt.Fprintln(stdout, r)
			})
		})
	}
	if *report || *model {
		if len(pos) == 0 {
			fmt.Fprintln(stderr, "pfmpi bench -report/-model: give the scaling CSV files as arguments")
			return exitUsage
		}
		var err error
		if *report {
			err = bench.Report(pos, *png, stdout)
		} else {
			err = bench.ModelReport(pos, bench.Model{Latency: latency.Seconds(), Bandwidth: *bandwidth * 1e9, SumLatency: sumLatency.Seconds()}, *params, stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "pfmpi bench:", err)
			return exitError
		}
		return exitOK
	}
	if len(pos) != 0 || *repeats < 1 || *ranks < 0 {
		fmt.Fprintln(stderr, "pfmpi bench: usage: pfmpi bench [-ranks N] [-json] [-quick] [-repeats R] | -weak LOCAL [-ops …] [-group G] [-csv FILE] | -report CSV… [-png FILE] | -model CSV…; a run file's [bench] section runs with `pfmpi run FILE`")
		return exitUsage
	}
	if *weak != "" && *strong != "" {
		fmt.Fprintln(stderr, "pfmpi bench: -weak and -strong are two series; give one")
		return exitUsage
	}
	if *weak != "" || *strong != "" {
		size, err := bench.ParseDims(*weak + *strong)
		if err != nil {
			fmt.Fprintln(stderr, "pfmpi bench -weak/-strong:", err)
			return exitUsage
		}
		var grid []int
		if *gridFlag != "" {
			if grid, err = bench.ParseDims(*gridFlag); err != nil {
				fmt.Fprintln(stderr, "pfmpi bench -grid:", err)
				return exitUsage
			}
		}
		grp, err := group.Parse(*groupName)
		if err != nil {
			fmt.Fprintln(stderr, "pfmpi bench -group:", err)
			return exitUsage
		}
		opList := strings.Split(*ops, ",")
		for _, op := range opList {
			if !slices.Contains(bench.ScalingOps(), op) {
				fmt.Fprintf(stderr, "pfmpi bench -ops: unknown %q; use %s\n", op, strings.Join(bench.ScalingOps(), ","))
				return exitUsage
			}
		}
		return launchBody(*ranks, stderr, func(c mpi.Comm) error {
			sw := bench.Sweep{Ops: opList, Size: size, Strong: *strong != "", Grid: grid, Group: grp, Repeats: *repeats,
				Run: runFile}
			pts, err := sw.Points(c)
			if err != nil || c.Rank() != 0 {
				return err
			}
			for _, p := range pts {
				fmt.Fprintf(stdout, "%-6s %-14s %-10s %s ranks %d = %d × %s, lattice %s, local %s: %.4g s", p.Scaling, p.Op, p.Backend, p.Group, p.Ranks, p.Replicas,
					bench.Dims(p.Grid), bench.Dims(p.Global()), bench.Dims(p.Local), p.Seconds)
				if p.Work > 0 {
					fmt.Fprintf(stdout, " (%g CG iterations)", p.Work)
				}
				if p.Bytes > 0 {
					fmt.Fprintf(stdout, " (%g halo bytes per rank)", p.Bytes)
				}
				fmt.Fprintln(stdout)
			}
			if *csvPath != "" {
				return bench.AppendCSV(*csvPath, pts)
			}
			return nil
		})
	}
	opt := bench.Options{Ops: []string{"dslash", "cg", "halo"}, Repeats: *repeats, Iterations: 10, TriadN: 1 << 23}
	if *quick {
		opt.Iterations, opt.TriadN = 3, 1<<16
	}
	return launchBody(*ranks, stderr, func(c mpi.Comm) error {
		return bench.Run(c, bench.Volumes(*quick), opt, printer(c.Rank() == 0, stdout, *asJSON))
	})
}

// trainStepBench times training steps of the run file's own model and
// [train] settings (defaults without one) on the run's ranks: the median of
// bench.repeats steps after a first one.
func trainStepBench(world mpi.Comm, cfg *config.Config, ly *layout, report func(bench.Result)) error {
	base := bench.Result{Op: "train_step", Dims: cfg.Lattice.Dims, Group: cfg.Lattice.Group, Ranks: world.Size(), Grid: ly.lat.Grid()}
	if err := flowrun.Supported(cfg); err != nil {
		base.Note = "skipped: " + err.Error()
		report(base)
		return nil
	}
	c := *cfg
	var t config.Train
	if cfg.Train != nil {
		t = *cfg.Train
	} else {
		d, err := config.Parse("defaults", []byte("[lattice]\ndims = [4, 4]\n[action]\nbeta = 1.0\n[train]\n"))
		if err != nil {
			return err
		}
		t = *d.Train
	}
	t.Steps, t.ESSEvery, t.CheckpointEvery = cfg.Bench.Repeats+1, 0, 0
	c.Train, c.Sample, c.HMC, c.Bench = &t, nil, nil, nil
	note := ""
	if split := ly.lat.DomainSize() > 1; split && c.Lattice.GaugeGroup() == group.SU3 && c.Model.SU3Coupling != "plaquette" {
		c.Model.SU3Coupling = "plaquette"
		note = "; SU(3) plaquette layers (string layers need each lattice on one rank)"
	}
	c.Run.Output, c.Run.Resume = bench.OutputPlaceholder, "never"
	var text strings.Builder
	if err := c.WriteTOML(&text); err != nil {
		return err
	}
	sec, _, err := bench.PhaseSeconds(world, runFile, text.String())
	if err != nil {
		return err
	}
	base.Seconds = sec
	base.Note = fmt.Sprintf("median of %d step(s), batch %d over %d replica(s)%s", cfg.Bench.Repeats, t.Batch, ly.replicas, note)
	report(base)
	return nil
}

// runFile runs a run file quietly (the benchmarks that time whole phases).
func runFile(world mpi.Comm, file string) error {
	return execute(world, "run", file, rundir.Limits{}, io.Discard)
}

// printer reports results on the root rank only.
func printer(root bool, w io.Writer, asJSON bool) func(bench.Result) {
	return func(r bench.Result) {
		if !root {
			return
		}
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(w, string(b))
			return
		}
		fmt.Fprintln(w, r)
	}
}

// benchPhase is the [bench] phase of a run file: its ops on the file's
// lattice and layout (every replica measures at once), printed and written
// to OUTPUT/bench.json by world rank 0.
func benchPhase(world, domain mpi.Comm, cfg *config.Config, ly *layout, stdout io.Writer) error {
	kappa := cfg.Action.Kappa
	if kappa == 0 {
		kappa = 0.12
	}
	s := bench.Setup{Dims: cfg.Lattice.Dims, Grid: ly.lat.Grid(), Nc: cfg.Lattice.GaugeGroup().Nc(), Kappa: kappa}
	ops := slices.DeleteFunc(slices.Clone(cfg.Bench.Ops), func(op string) bool { return op == "train_step" })
	opt := bench.Options{Ops: ops, Repeats: cfg.Bench.Repeats, Iterations: 10, TriadN: 1 << 23}
	var all []bench.Result
	root := world.Rank() == 0
	p := printer(root, stdout, false)
	report := func(r bench.Result) {
		all = append(all, r)
		p(r)
	}
	err := bench.Run(domain, []bench.Setup{s}, opt, report)
	if err == nil && len(ops) < len(cfg.Bench.Ops) {
		err = trainStepBench(world, cfg, ly, report)
	}
	if err != nil || !root {
		return err
	}
	if err := os.MkdirAll(cfg.Run.Output, 0o755); err != nil {
		return err
	}
	path := filepath.Join(cfg.Run.Output, "bench.json")
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(slices.Clip(all))
	})
}
