package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"pfmpi/bench"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/internal/atomicfile"
	"pfmpi/mpi"
)

// sweep is the standard set of volumes of `pfmpi bench`.
func sweep(quick bool) []bench.Setup {
	var s []bench.Setup
	add := func(nd, nc int, ls ...int) {
		for _, l := range ls {
			dims := make([]int, nd)
			for i := range dims {
				dims[i] = l
			}
			s = append(s, bench.Setup{Dims: dims, Nc: nc, Kappa: 0.12})
		}
	}
	if quick {
		add(2, 1, 16)
		add(2, 3, 8)
		add(4, 3, 4)
		return s
	}
	add(2, 1, 64, 128, 256, 512, 1024)
	add(2, 3, 32, 64, 128, 256)
	add(4, 3, 8, 12, 16, 20, 24)
	return s
}

// benchOptions are the knobs of one benchmark run.
type benchOptions struct {
	ops        []string
	repeats    int
	iterations int // CG iterations per timing
	triadN     int
}

// runBench measures ops on each setup over comm and reports every result
// (rank 0 prints); setups whose lattice the ranks cannot split are noted and
// skipped.
func runBench(comm mpi.Comm, setups []bench.Setup, opt benchOptions, report func(bench.Result)) error {
	triad := bench.Triad(comm, opt.triadN, opt.repeats)
	report(bench.Result{Op: "triad", Ranks: comm.Size(), GBytes: triad, Note: fmt.Sprintf("%.3f GB/s memory bandwidth of these ranks (STREAM triad, 3 arrays of %d KiB per rank)", triad, opt.triadN*8>>10)})
	for _, s := range setups {
		if s.Grid == nil {
			g, err := decomp.AutoGrid(s.Dims, comm.Size(), false)
			if err != nil {
				report(bench.Result{Op: "skip", Dims: s.Dims, Ranks: comm.Size(), Note: err.Error()})
				continue
			}
			s.Grid = g
		}
		for _, op := range opt.ops {
			var rs []bench.Result
			var err error
			switch op {
			case "dslash":
				rs, err = bench.Dslash(comm, s, opt.repeats, triad)
			case "cg":
				rs, err = bench.CG(comm, s, opt.repeats, opt.iterations, triad)
			case "halo":
				rs, err = bench.Halo(comm, s, opt.repeats)
			default:
				rs = []bench.Result{{Op: op, Dims: s.Dims, Ranks: comm.Size(), Note: "not implemented yet (the training-step benchmark arrives with the production and scaling issue; time a step with `pfmpi run` on a short [train] section meanwhile)"}}
			}
			if err != nil {
				return err
			}
			for _, r := range rs {
				report(r)
			}
		}
	}
	return nil
}

// benchCommand is `pfmpi bench`: the standard sweep of volumes.
func benchCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	ranks := fs.Int("ranks", 0, "run `N` in-process ranks (no MPI)")
	asJSON := fs.Bool("json", false, "one JSON object per result")
	quick := fs.Bool("quick", false, "tiny volumes (a smoke test)")
	repeats := fs.Int("repeats", 5, "timed repetitions (best counts)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 || *repeats < 1 || *ranks < 0 {
		fmt.Fprintln(stderr, "pfmpi bench: usage: pfmpi bench [-ranks N] [-json] [-quick] [-repeats R]; a run file's [bench] section runs with `pfmpi run FILE`")
		return exitUsage
	}
	opt := benchOptions{ops: []string{"dslash", "cg", "halo"}, repeats: *repeats, iterations: 10, triadN: 1 << 23}
	if *quick {
		opt.iterations, opt.triadN = 3, 1<<16
	}
	return launchBody(*ranks, stderr, func(c mpi.Comm) error {
		return runBench(c, sweep(*quick), opt, printer(c.Rank() == 0, stdout, *asJSON))
	})
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
	nc := 1
	if cfg.Lattice.Group == "su3" {
		nc = 3
	}
	s := bench.Setup{Dims: cfg.Lattice.Dims, Grid: ly.lat.Grid(), Nc: nc, Kappa: kappa}
	opt := benchOptions{ops: cfg.Bench.Ops, repeats: cfg.Bench.Repeats, iterations: 10, triadN: 1 << 23}
	var all []bench.Result
	root := world.Rank() == 0
	p := printer(root, stdout, false)
	err := runBench(domain, []bench.Setup{s}, opt, func(r bench.Result) {
		all = append(all, r)
		p(r)
	})
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
