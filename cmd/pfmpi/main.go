package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/examples"
	"pfmpi/halo"
	"pfmpi/internal/driver"
	"pfmpi/internal/flowrun"
	"pfmpi/internal/hmcrun"
	"pfmpi/internal/rundir"
	"pfmpi/mpi"
)

// version is pfmpi's release.
const version = "0.1.0-dev"

// MPI is initialised with MPI_THREAD_FUNNELED: every MPI call must come from
// the main goroutine's OS thread.
func init() { runtime.LockOSThread() }

func main() { os.Exit(pfmpi(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `pfmpi — normalizing flows with pseudofermions for lattice gauge theories

Usage:
  pfmpi [run] [FILE.toml] [-ranks N] [-t LIMIT] [-margin D] [-cpuprofile FILE]
                                       run the phases of a run file; with -t (slurm,
                                       90m, HH:MM:SS, D-HH:MM:SS) it checkpoints and
                                       stops before the limit (exit 4); so does a
                                       signal (SIGTERM, SIGINT, SIGUSR1; exit 4) and
                                       the file OUTPUT/STOP (exit 5)
  pfmpi check [FILE.toml] [-ranks N]   validate a run file and its rank layout
  pfmpi info CONFIG [-json] [-beta B]  geometry, plaquette, action, charge, checksum of a configuration
  pfmpi convert IN OUT [-beta B]       convert a configuration (.pfg, .npy, .lime/.ildg by extension)
  pfmpi spectrum CONFIG -kappa K [-eo] [-mu μ] [-json] [-phi PHI.npy]
                                       log det D, condition number of DD†, φ†M⁻¹φ
  pfmpi bench [-ranks N] [-json] [-quick]
                                       dslash, CG and halo GFLOP/s and GB/s over the standard volumes
  pfmpi bench -weak LOCAL | -strong LATTICE [-grid G] [-ops …] [-group G] [-csv FILE]
                                       scaling points of dslash, cg, halo, hmc, train_step,
                                       train_replicas: LOCAL sites per rank, or LATTICE split
  pfmpi bench -report [-png FILE] CSV…  scaling efficiencies, in-process vs MPI
  pfmpi bench -model [-params N] CSV…   calibrate the performance model, predict 64–4096 ranks
  pfmpi bench -train RUN.toml [-steps N] [-workers N] [-precision P]
                                       a training step of a run file's model: s/step, samples/s,
                                       GFLOP/s by kind of work against the core's peak
  pfmpi bench -compare PROGRAM [-quick]
                                       the Dirac operator side by side with the C reference
                                       (make -C bench/cref)
  pfmpi help [config]                  this text, or every run-file key
  pfmpi version                        version, Go, communicator backend

Without FILE.toml the embedded quickstart (examples/quickstart.toml) is used.
Under mpirun/srun (binary built with -tags mpi) the ranks are the launcher's;
-ranks N runs N in-process ranks instead, without MPI.
`

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // bad input or a failed run
	exitUsage    = 2 // bad command line
	exitNotReady = 3 // the phase is not implemented yet
	exitStopped  = 4 // checkpointed and stopped early (wall time, signal): run again to continue
	exitStopFile = 5 // checkpointed and stopped because OUTPUT/STOP asked: the user ended it
)

// pfmpi runs the command line args and returns the exit code.
func pfmpi(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "run", "check", "help", "version", "info", "convert", "spectrum", "bench":
			cmd, args = args[0], args[1:]
		case "-h", "-help", "--help":
			cmd, args = "help", nil
		}
	}
	fs := flag.NewFlagSet("pfmpi "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	switch cmd {
	case "help":
		pos, code, ok := parseArgs(fs, args)
		if !ok {
			return code
		}
		if len(pos) == 1 && pos[0] == "config" {
			config.Help(stdout)
			return exitOK
		}
		if len(pos) > 0 {
			fmt.Fprintf(stderr, "pfmpi help: unknown topic %q; try `pfmpi help config`\n", strings.Join(pos, " "))
			return exitUsage
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version":
		printVersion(stdout)
		return exitOK
	case "info":
		return infoCommand(fs, args, stdout, stderr)
	case "convert":
		return convertCommand(fs, args, stdout, stderr)
	case "spectrum":
		return spectrumCommand(fs, args, stdout, stderr)
	case "bench":
		return benchCommand(fs, args, stdout, stderr)
	}
	ranks := fs.Int("ranks", 0, "run `N` in-process ranks (no MPI)")
	limit := fs.String("t", "", "checkpoint and stop before this wall-time `LIMIT`: slurm, a duration (90m), HH:MM:SS or D-HH:MM:SS")
	margin := fs.Duration("margin", 2*time.Minute, "with -t: stop when less than this `D` plus two steps is left")
	profile := fs.String("cpuprofile", "", "write a CPU profile of this process to `FILE` (go tool pprof)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "pfmpi %s: one run file at a time, got %q\n", cmd, pos)
		return exitUsage
	}
	file := ""
	if len(pos) == 1 {
		file = pos[0]
	}
	if *ranks < 0 {
		fmt.Fprintf(stderr, "pfmpi %s: -ranks %d: give a positive number of in-process ranks\n", cmd, *ranks)
		return exitUsage
	}
	deadline, err := rundir.ParseTimeLimit(*limit, time.Now(), os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "pfmpi %s: %v\n", cmd, err)
		return exitUsage
	}
	if *margin < 0 {
		fmt.Fprintf(stderr, "pfmpi %s: -margin %v: give a duration ≥ 0\n", cmd, *margin)
		return exitUsage
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "pfmpi %s: -cpuprofile: %v\n", cmd, err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "pfmpi %s: -cpuprofile: %v\n", cmd, err)
			return exitError
		}
		defer pprof.StopCPUProfile()
	}
	limits := rundir.Limits{Deadline: deadline, Margin: *margin, Signalled: new(atomic.Bool)}
	if cmd == "run" {
		defer rundir.WatchSignals(limits.Signalled)()
	}
	return launch(cmd, file, *ranks, limits, stdout, stderr)
}

// parseArgs parses flags anywhere among the arguments and returns the
// positional ones; ok is false (with the exit code) on a bad or help flag.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			return pos, exitOK, true
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// launch starts the world (MPI or in-process ranks) and runs cmd on every rank.
func launch(cmd, file string, ranks int, limits rundir.Limits, stdout, stderr io.Writer) int {
	return launchBody(ranks, stderr, func(c mpi.Comm) error { return execute(c, cmd, file, limits, stdout) })
}

// launchBody runs body on every rank of the world: MPI's, or ranks
// in-process ranks; it returns the exit code.
func launchBody(ranks int, stderr io.Writer, body func(c mpi.Comm) error) int {
	world, err := mpi.Init()
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi:", err)
		return exitError
	}
	defer mpi.Finalize()
	switch {
	case ranks > 0 && world.Size() > 1:
		if world.Rank() == 0 {
			fmt.Fprintf(stderr, "pfmpi: -ranks %d runs in-process ranks, but mpirun started %d processes; use one or the other\n", ranks, world.Size())
		}
		return exitUsage
	case ranks > 0:
		err = mpi.Run(ranks, body)
	default:
		err = body(world)
	}
	var nr notReady
	stopped, isStopped := rundir.IsStopped(err)
	switch {
	case err == nil:
		return exitOK
	case isStopped:
		if world.Rank() == 0 {
			fmt.Fprintln(stderr, "pfmpi:", stopped)
		}
		if stopped.Reason == rundir.StopRequested {
			return exitStopFile
		}
		return exitStopped
	case errors.As(err, &nr):
		if world.Rank() == 0 {
			fmt.Fprintln(stderr, "pfmpi:", err)
		}
		return exitNotReady
	case mpi.Backend == "mpi" && world.Size() > 1 && !isCollective(err):
		// An error on some ranks only: the others may be waiting for this
		// one in a collective, so end the whole job rather than hang.
		fmt.Fprintf(stderr, "pfmpi: rank %d of %d: %v\npfmpi: aborting the job (MPI_Abort)\n", world.Rank(), world.Size(), err)
		world.Abort(exitError)
		return exitError
	default:
		if world.Rank() == 0 {
			// Bad input fails every rank alike: report the file's errors
			// without the rank that happened to fail first.
			var re *mpi.RankError
			if errors.As(err, &re) && isInputError(re.Err) {
				err = re.Err
			}
			fmt.Fprintln(stderr, "pfmpi:", err)
		}
		return exitError
	}
}

// isCollective reports whether err is one every rank returns alike, so
// that the ranks can end together without MPI_Abort.
func isCollective(err error) bool {
	return isInputError(err) || mpi.IsShared(err)
}

// isInputError reports whether err is about the run file, which every rank
// reads alike.
func isInputError(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}

// notReady reports a phase whose issue has not landed.
type notReady struct{ phase, why string }

func (e notReady) Error() string {
	if e.why != "" {
		return fmt.Sprintf("the %s phase is not implemented yet for this run: %s; `pfmpi check` validates the file and the rank layout", e.phase, e.why)
	}
	return fmt.Sprintf("the %s phase is not implemented yet; `pfmpi check` validates the file and the rank layout", e.phase)
}

// execute runs cmd on one rank. Output comes from world rank 0 only.
func execute(world mpi.Comm, cmd, file string, limits rundir.Limits, stdout io.Writer) error {
	p := func(format string, args ...any) {
		if world.Rank() == 0 {
			fmt.Fprintf(stdout, format, args...)
		}
	}
	cfg, name, err := loadConfig(world, file)
	if err != nil {
		return err
	}
	ly, err := resolveLayout(cfg, world.Size())
	if err != nil {
		return err
	}
	domain, replica, err := decomp.SplitWorld(world, ly.lat)
	if err != nil {
		return err
	}
	defer domain.Free()
	defer replica.Free()

	p("pfmpi %s: %s\n", cmd, name)
	p("  lattice      %s, %s, direction 0 = time\n", times(ly.lat.Dims()), cfg.Lattice.Group)
	ly.describe(p)
	phases := cfg.Phases()
	if len(phases) == 0 {
		phases = []string{"none (add [hmc], [train], [sample] or [bench])"}
	}
	p("  phases       %s\n", strings.Join(phases, ", "))
	threads := float64(runtime.GOMAXPROCS(0))
	lo, hi := -mpi.MaxFloat64(world, -threads), mpi.MaxFloat64(world, threads)
	share := ""
	if mpi.Backend == "in-process" && world.Size() > 1 {
		share = ", shared by the in-process ranks"
	}
	if lo == hi {
		p("  backend      %s, %d rank(s); GOMAXPROCS %v%s\n", mpi.Backend, world.Size(), hi, share)
	} else {
		p("  backend      %s, %d rank(s); GOMAXPROCS %v to %v: give every rank the same cores\n", mpi.Backend, world.Size(), lo, hi)
	}
	if ly.ranks <= 64 {
		if err := ly.rankTable(p); err != nil {
			return err
		}
	}
	if ly.lat.GlobalVolume() <= halo.SelfTestMaxSites {
		if err := halo.SelfTest(world, domain, ly.lat); err != nil {
			return err
		}
		p("  self-test    halo exchange (faces depth 1, box depth ≤ 3, antiperiodic time) and its adjoint: OK\n")
	} else {
		p("  self-test    skipped: the lattice has more than %d sites\n", halo.SelfTestMaxSites)
	}
	var missing error // a phase not implemented for this run
	for _, phase := range cfg.Phases() {
		if phase == "train" || phase == "sample" {
			if err := flowrun.Supported(cfg); err != nil {
				if isInputError(err) {
					return err
				}
				missing = notReady{phase: phase, why: err.Error()}
			}
		}
	}
	if err := startFileExists(cfg); err != nil {
		return err
	}
	if cmd == "check" {
		if missing != nil {
			p("  note         %v\n", missing)
		}
		p("%s: OK\n", name)
		return nil
	}
	if len(cfg.Phases()) == 0 {
		return fmt.Errorf("%s has no phase section; add [hmc], [train], [sample] or [bench]", name)
	}
	if missing != nil {
		return missing
	}
	dir, err := rundir.Open(world, cfg)
	if err != nil {
		return err
	}
	defer dir.Close()
	dir.SetLimits(limits)
	if !limits.Deadline.IsZero() {
		p("  wall time    stop with a checkpoint before %s (margin %v)\n", limits.Deadline.Format(time.RFC3339), limits.Margin)
	}
	if dir.Resumed() {
		p("  output       %s (resuming the run there)\n", cfg.Run.Output)
	} else {
		p("  output       %s\n", cfg.Run.Output)
	}
	dly, err := ly.lat.Layout(domain.Rank())
	if err != nil {
		return err
	}
	env := driver.Env{World: world, Domain: domain, Replica: replica, Layout: dly, Config: cfg, Dir: dir, Out: stdout}
	for _, phase := range cfg.Phases() {
		switch phase {
		case "train", "sample":
			run := flowrun.Train
			if phase == "sample" {
				run = flowrun.Sample
			}
			if err := run(env); err != nil {
				return err
			}
		case "hmc":
			if err := hmcrun.Run(env); err != nil {
				return err
			}
		case "bench":
			p("phase bench\n")
			if err := benchPhase(world, domain, cfg, ly, stdout); err != nil {
				return err
			}
		default:
			return notReady{phase: phase}
		}
	}
	return nil
}

// startFileExists checks that the configuration hmc.start names can be
// read (it is relative to the run file), before any output is written.
func startFileExists(cfg *config.Config) error {
	h := cfg.HMC
	if h == nil || h.Start == "cold" || h.Start == "hot" {
		return nil
	}
	path := h.Start
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(cfg.File()), path)
	}
	if _, err := os.Stat(path); err != nil {
		return cfg.Errorf("hmc.start", "%v; give \"cold\", \"hot\" or a configuration file (relative to the run file)", err)
	}
	return nil
}

// loadConfig reads the run file on rank 0, broadcasts it and parses it on
// every rank (one file read, however many ranks).
func loadConfig(world mpi.Comm, file string) (*config.Config, string, error) {
	name := file
	var data []byte
	var readErr error
	if file == "" {
		name, data = "examples/quickstart.toml (embedded)", examples.Quickstart
	} else if world.Rank() == 0 {
		data, readErr = os.ReadFile(file)
	}
	// Broadcast the length (−1: rank 0 could not read the file), then the text.
	n := []float64{float64(len(data))}
	if readErr != nil {
		n[0] = -1
	}
	world.Bcast(0, mpi.Bytes(n))
	if n[0] < 0 {
		if readErr == nil {
			readErr = fmt.Errorf("cannot read %s on rank 0", file)
		}
		return nil, name, readErr
	}
	if world.Rank() != 0 {
		data = make([]byte, int(n[0]))
	}
	world.Bcast(0, data)
	cfg, err := config.Parse(name, data)
	return cfg, name, err
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "pfmpi %s\n", version)
	fmt.Fprintf(w, "  go        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  backend   %s\n", mpi.Backend)
	fmt.Fprintf(w, "  MPI       %s\n", firstLine(mpi.LibraryVersion()))
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.modified", "-tags", "GOAMD64", "GOEXPERIMENT":
				fmt.Fprintf(w, "  %-9s %s\n", strings.TrimPrefix(s.Key, "-"), s.Value)
			}
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
