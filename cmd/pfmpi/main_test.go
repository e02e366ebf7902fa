package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/internal/npy"
	"pfmpi/internal/specrun"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// The CLI tests start in-process ranks; with -tags mpi the binary itself is
// tested under mpirun by .ci/run instead.
func TestMain(m *testing.M) {
	if os.Getenv(asPfmpi) == "1" { // the test binary re-executed as pfmpi (faults_test.go)
		os.Exit(pfmpi(os.Args[1:], os.Stdout, os.Stderr))
	}
	if mpi.Backend != "in-process" {
		fmt.Fprintln(os.Stderr, "cmd/pfmpi: the CLI tests run in-process ranks; under -tags mpi .ci/run tests the binary with mpirun")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runCLI runs pfmpi with args and returns the exit code and both outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := pfmpi(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckGoodFilePrintsLayout(t *testing.T) {
	f := writeFile(t, "[lattice]\ndims = [8, 12]\n[parallel]\ngrid = [2, 2]\n[action]\nbeta = 2.0\nkappa = 0.25\n[train]\nbatch = 8\n")
	code, out, errOut := runCLI(t, "check", f, "-ranks", "8")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"8 = 2 replica(s) × grid 2 × 2 (from parallel.grid)",
		"4 × 6 = 24 sites per rank; 12 even + 12 odd",
		"phases       train",
		"in-process, 8 rank(s)",
		"self-test    halo exchange",
		"OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The rank table: world rank 5 is domain rank 1 of replica 1, grid (0, 1),
	// origin (0, 6), with halo peers 4 and 7 (its neighbours in replica 1).
	if !strings.Contains(out, "5      1        1       [0 1]          [0 6]          [4 7]") {
		t.Errorf("rank table wrong:\n%s", out)
	}
}

// TestAutoGridKeepsOneRankFlowsWhole: with parallel.grid = "auto", a flow
// whose layers need each lattice on one rank (here the U(1) holonomy
// layer, or training on the exact marginal) runs every rank as a replica,
// the same file without it splits the lattice, and an HMC-only file is not
// affected by the model keys.
func TestAutoGridKeepsOneRankFlowsWhole(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"[model]\nu1_holonomy = true\n[train]\nbatch = 8\ngauge_loss = \"joint\"\n", "4 = 4 replica(s) × grid 1 × 1 (auto: the flow needs each lattice on one rank)"},
		// The holonomy layer is on by default for 2D U(1).
		{"[train]\nbatch = 8\ngauge_loss = \"joint\"\n", "4 = 4 replica(s) × grid 1 × 1 (auto: the flow needs each lattice on one rank)"},
		{"[model]\nu1_holonomy = false\n[train]\nbatch = 8\ngauge_loss = \"joint\"\n", "4 = 1 replica(s) × grid 4 × 1 (auto: least halo surface)"},
		// gauge_loss = "auto" on 128 Dirac rows: the exact marginal, one rank.
		{"[train]\nbatch = 8\n", "4 = 4 replica(s) × grid 1 × 1 (auto: the flow needs each lattice on one rank)"},
		{"[model]\nfermions = \"exact\"\nu1_holonomy = false\n[train]\nbatch = 8\n", "4 = 1 replica(s) × grid 4 × 1 (auto: least halo surface)"},
		{"[model]\nu1_holonomy = true\n[hmc]\n", "4 = 1 replica(s) × grid 4 × 1 (auto: least halo surface)"},
	} {
		f := writeFile(t, "[lattice]\ndims = [8, 8]\n[action]\nbeta = 2.0\nkappa = 0.25\n"+c.text)
		code, out, errOut := runCLI(t, "check", f, "-ranks", "4")
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", c.text, code, errOut)
		}
		if !strings.Contains(out, c.want) {
			t.Errorf("%q: output lacks %q:\n%s", c.text, c.want, out)
		}
	}
}

func TestCheckEmbeddedQuickstart(t *testing.T) {
	code, out, errOut := runCLI(t, "check", "-ranks", "4")
	if code != exitOK || !strings.Contains(out, "examples/quickstart.toml (embedded): OK") ||
		!strings.Contains(out, "4 = 4 replica(s) × grid 1 × 1") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestCheckBadFiles(t *testing.T) {
	for _, c := range []struct {
		name, text string
		ranks      string
		want       []string
	}{
		{"unknown key", "[lattice]\ndims = [8, 8]\ndimz = 3\n", "1",
			[]string{"run.toml:3:", `unknown key "dimz"`, `did you mean "dims"`}},
		{"indivisible grid", "[lattice]\ndims = [8, 10]\n[parallel]\ngrid = [1, 4]\n", "4",
			[]string{"run.toml:4:", "parallel.grid", "dims[1] = 10 is not divisible by grid[1] = 4", "divisors [1 2 5 10]"}},
		{"wrong rank count", "[lattice]\ndims = [8, 8]\n[parallel]\ngrid = [2, 2]\n", "6",
			[]string{"run.toml:4:", "6 ranks is not a multiple of the process grid [2 2]", "multiple of 4 ranks"}},
		{"odd local extent with even/odd", "[lattice]\ndims = [8, 6]\n[parallel]\ngrid = [1, 2]\n[action]\nkappa = 0.2\n", "2",
			[]string{"parallel.grid", "is odd", "even/odd"}},
		{"auto impossible", "[lattice]\ndims = [6, 6]\n[action]\nkappa = 0.2\n", "4",
			[]string{"parallel.grid", "no process grid of 4 ranks", "domain sizes that work"}},
		{"replicas disagree", "[lattice]\ndims = [8, 8]\n[parallel]\ngrid = [2, 1]\nreplicas = 3\n", "4",
			[]string{"run.toml:5:", "parallel.replicas", "make 2 replicas"}},
		{"batch split", "[lattice]\ndims = [8, 8]\n[parallel]\ngrid = [1, 1]\n[action]\nbeta = 1.0\n[train]\nbatch = 10\n", "4",
			[]string{"train.batch", "10 configurations do not split evenly over 4 replicas"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "check", writeFile(t, c.text), "-ranks", c.ranks)
			if code != exitError {
				t.Fatalf("exit %d, want %d\n%s", code, exitError, out)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if strings.Contains(errOut, "rank ") {
				t.Errorf("input errors should not name a rank: %q", errOut)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	if code, out, _ := runCLI(t, "help", "config"); code != exitOK {
		t.Fatalf("help config: exit %d", code)
	} else {
		var want bytes.Buffer
		config.Help(&want)
		if out != want.String() {
			t.Errorf("help config does not print the schema's help")
		}
	}
	// Every mode of bench is in the usage text.
	if code, out, _ := runCLI(t, "help"); code != exitOK {
		t.Errorf("help: exit %d", code)
	} else {
		for _, mode := range []string{"bench [-ranks", "bench -weak", "bench -report", "bench -model", "bench -train", "bench -compare"} {
			if !strings.Contains(out, "pfmpi "+mode) {
				t.Errorf("help does not list pfmpi %s", mode)
			}
		}
	}
	if code, out, _ := runCLI(t, "version"); code != exitOK || !strings.Contains(out, "backend") {
		t.Errorf("version: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "check", "a.toml", "b.toml"); code != exitUsage {
		t.Errorf("two files: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI(t, "check", "-ranks", "-2"); code != exitUsage {
		t.Errorf("negative ranks: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCLI(t, "check", "/nonexistent/run.toml"); code != exitError || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	// Phases not implemented yet say so with their own exit code.
	flow3d := writeFile(t, "[run]\noutput = \"out3d\"\n[lattice]\ndims = [4, 4, 4]\ngroup = \"su3\"\n[action]\nbeta = 6.0\n[train]\n")
	if code, _, errOut := runCLI(t, "run", flow3d, "-ranks", "2"); code != exitNotReady || !strings.Contains(errOut, "3D flows are not implemented yet") {
		t.Errorf("run: exit %d, %q", code, errOut)
	}
	// The bare form `pfmpi FILE.toml` is `pfmpi run FILE.toml`.
	f := writeFile(t, "[lattice]\ndims = [4, 4, 4, 4]\ngroup = \"su3\"\n[action]\nbeta = 1.0\n[train]\n")
	if code, out, _ := runCLI(t, f); code != exitNotReady || !strings.Contains(out, "pfmpi run: "+f) {
		t.Errorf("bare file: exit %d\n%s", code, out)
	}
}

// writeConfig saves a near-identity SU(3) or hot U(1) field for the tools.
func writeConfig(t *testing.T, path string, dims []int, nc int) {
	t.Helper()
	err := mpi.Run(1, func(c mpi.Comm) error {
		grid := make([]int, len(dims))
		for i := range grid {
			grid[i] = 1
		}
		lat, err := decomp.NewLattice(dims, grid, false)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(0)
		sp, err := gauge.NewSpace(c, ly, nc)
		if err != nil {
			return err
		}
		defer sp.Close()
		u := sp.NewField()
		u.SetNearIdentity(rng.New(3, "tools"), 0.4)
		return gaugeio.Save(u, path, gaugeio.Meta{Beta: 2.5})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInfoAndConvert(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "u1.pfg")
	writeConfig(t, src, []int{8, 8}, 1)
	code, out, errOut := runCLI(t, "info", src)
	if code != exitOK {
		t.Fatalf("info: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"8 × 8, u1", "crc32c", "ok", "(agrees)", "at β = 2.5", "Q = ", "polyakov"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	var first gaugeio.Summary
	code, out, _ = runCLI(t, "info", "-json", src)
	if code != exitOK || json.Unmarshal([]byte(out), &first) != nil {
		t.Fatalf("info -json: exit %d\n%s", code, out)
	}
	// Converting through every format keeps the configuration bit for bit:
	// the plaquette, charge and Polyakov loop are identical.
	prev := src
	for _, ext := range []string{".npy", ".lime", ".pfg"} {
		next := filepath.Join(dir, "copy"+ext)
		if code, _, errOut := runCLI(t, "convert", prev, next); code != exitOK {
			t.Fatalf("convert %s %s: exit %d: %s", prev, next, code, errOut)
		}
		var rep gaugeio.Summary
		code, out, _ := runCLI(t, "info", next, "-json", "-beta", "2.5")
		if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("info %s: exit %d\n%s", next, code, out)
		}
		if rep.Plaquette != first.Plaquette || *rep.TopologicalCharge != *first.TopologicalCharge ||
			rep.PolyakovRe != first.PolyakovRe || *rep.Action != *first.Action {
			t.Errorf("%s differs from the original: %+v vs %+v", next, rep, first)
		}
		prev = next
	}
	// 4D SU(3) goes to a standard ILDG file.
	su3 := filepath.Join(dir, "su3.pfg")
	writeConfig(t, su3, []int{4, 2, 2, 2}, 3)
	ildg := filepath.Join(dir, "su3.ildg")
	if code, _, errOut := runCLI(t, "convert", su3, ildg); code != exitOK {
		t.Fatalf("convert to ILDG: %s", errOut)
	}
	if code, out, _ := runCLI(t, "info", ildg); code != exitOK || !strings.Contains(out, "scidac suma") {
		t.Errorf("info on ILDG: exit %d\n%s", code, out)
	}
	// Bad input.
	if code, _, errOut := runCLI(t, "convert", src, filepath.Join(dir, "x.cfg")); code != exitUsage || !strings.Contains(errOut, ".pfg") {
		t.Errorf("unknown output extension: exit %d %q", code, errOut)
	}
	bad := filepath.Join(dir, "bad.pfg")
	data, _ := os.ReadFile(src)
	os.WriteFile(bad, data[:len(data)-20], 0o644)
	if code, _, errOut := runCLI(t, "info", bad); code != exitError || !strings.Contains(errOut, "bad.pfg") {
		t.Errorf("truncated file: exit %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "info"); code != exitUsage {
		t.Errorf("info without a file: exit %d", code)
	}
}

func TestSpectrum(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "u1.pfg")
	writeConfig(t, cfg, []int{4, 4}, 1)
	// φ as a .npy of shape [4, 4, 2, 1]
	phi := make([]complex128, 4*4*2)
	s := rng.New(5, "phi").Stream(0)
	for i := range phi {
		phi[i] = s.ComplexNormal()
	}
	phiPath := filepath.Join(dir, "phi.npy")
	f, _ := os.Create(phiPath)
	if err := npy.WriteComplex128(f, []int{4, 4, 2, 1}, phi); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var plain, eo specrun.Report
	for _, c := range []struct {
		args []string
		rep  *specrun.Report
	}{
		{[]string{"spectrum", cfg, "-kappa", "0.2", "-mu", "0.01", "-json", "-phi", phiPath}, &plain},
		{[]string{"spectrum", cfg, "-kappa", "0.2", "-eo", "-json", "-phi", phiPath}, &eo},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != exitOK || json.Unmarshal([]byte(out), c.rep) != nil {
			t.Fatalf("%v: exit %d %s\n%s", c.args, code, errOut, out)
		}
	}
	if plain.LogAbsDetD2 == nil || eo.LogDetSchur == nil || math.Abs(*plain.LogAbsDetD2-*eo.LogDetSchur) > 1e-10 {
		t.Errorf("log|det D|² = %v, log det D_sc D_sc† = %v: Eq. (34) says they are equal", plain.LogAbsDetD2, eo.LogDetSchur)
	}
	if plain.PhiAction == nil || *plain.PhiAction <= 0 || plain.CGResidual > 1e-10 || eo.PhiAction == nil {
		t.Errorf("φ†M⁻¹φ missing or not positive: %+v", plain)
	}
	if !(eo.Condition < plain.Condition) || plain.LambdaMin < 0.01 {
		t.Errorf("condition numbers: unpreconditioned %v (λ_min %v ≥ μ), even/odd %v", plain.Condition, plain.LambdaMin, eo.Condition)
	}
	if code, _, _ := runCLI(t, "spectrum", cfg); code != exitUsage {
		t.Errorf("missing -kappa: exit %d", code)
	}
	wrong := filepath.Join(dir, "wrong.npy")
	f, _ = os.Create(wrong)
	npy.WriteComplex128(f, []int{4, 4, 2}, phi[:32])
	f.Close()
	if code, _, errOut := runCLI(t, "spectrum", cfg, "-kappa", "0.2", "-phi", wrong); code != exitError || !strings.Contains(errOut, "[4 4 2 1]") {
		t.Errorf("wrong φ shape: exit %d %q", code, errOut)
	}
}

func TestBenchPhaseAndCommand(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, fmt.Sprintf("[run]\noutput = %q\n[lattice]\ndims = [8, 8]\ngroup = \"su3\"\n[action]\nbeta = 6.0\nkappa = 0.1\n[model]\ngauge_layers = 2\ngauge_hidden = [4]\npf_layers = 1\npf_context_hidden = 4\n[bench]\nops = [\"dslash\", \"cg\", \"halo\", \"train_step\"]\nrepeats = 1\n", dir))
	code, out, errOut := runCLI(t, "run", f, "-ranks", "2")
	if code != exitOK {
		t.Fatalf("run with [bench]: exit %d %s\n%s", code, errOut, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results []map[string]any
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, r := range results {
		ops[r["op"].(string)] = true
	}
	for _, op := range []string{"triad", "dslash", "cg", "halo", "train_step"} {
		if !ops[op] {
			t.Errorf("bench.json lacks %s: %s", op, data)
		}
	}
	if !strings.Contains(out, "train_step") || !strings.Contains(out, "median of 1 step(s), batch 64 over 1 replica(s)") || !strings.Contains(out, "% of triad") {
		t.Errorf("output:\n%s", out)
	}
	code, out, _ = runCLI(t, "bench", "-quick", "-repeats", "1", "-json")
	if code != exitOK || strings.Count(out, "\"op\":\"dslash\"") != 3 {
		t.Errorf("bench -quick: exit %d\n%s", code, out)
	}
}

func TestHMCPhase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	text := fmt.Sprintf(`[run]
output = %q
[lattice]
dims = [4, 8]
[parallel]
grid = [1, 2]
[action]
beta = 2.0
kappa = 0.2
hasenbusch = [0.2]
[hmc]
thermalize = 1
trajectories = 4
steps = 3
measure_every = 2
`, dir)
	f := writeFile(t, text)
	code, out, errOut := runCLI(t, f, "-ranks", "2")
	if code != exitOK {
		t.Fatalf("exit %d %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"phase hmc", "pf0: φ†(1 + (0.2 − 0)(DscDsc†)⁻¹)φ", "hmc summary", "plaquette"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"config.toml", "metrics.jsonl", "summary.json", "checkpoints/hmc.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	// Running it again resumes the finished run: nothing to do but the summary.
	code, out, _ = runCLI(t, f, "-ranks", "2")
	if code != exitOK || !strings.Contains(out, "resuming the run there") || strings.Contains(out, "hmc      1/") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
}

func TestFlowPhases(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	f := writeFile(t, fmt.Sprintf(`[run]
output = %q
[lattice]
dims = [4, 4]
[parallel]
grid = [1, 1]
[action]
beta = 1.0
[model]
gauge_layers = 2
gauge_hidden = [4]
[train]
steps = 3
batch = 4
ess_every = 3
ess_batch = 8
[sample]
n = 32
batch = 8
`, dir))
	code, out, errOut := runCLI(t, "run", f, "-ranks", "2")
	if code != exitOK {
		t.Fatalf("exit %d %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"phase train", "train summary", "phase sample", "sample summary", "plaquette_exact"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"summary.json", "checkpoints/train.json", "plots/ess.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

// TestBenchTrain: `pfmpi bench -train` times steps of a joint model with
// its breakdown by kind of work, as a table and as JSON whose kinds add up
// to at most the cores' share of the step.
func TestBenchTrain(t *testing.T) {
	f := writeFile(t, `[run]
output = "unused"
[lattice]
dims = [4, 4]
[action]
beta = 1.0
kappa = 0.2
precondition = "eo"
[model]
gauge_layers = 2
gauge_hidden = [4]
pf_layers = 2
pf_context_hidden = 4
[train]
batch = 4
`)
	code, out, errOut := runCLI(t, "bench", "-train", f, "-steps", "2", "-warmup", "1", "-peak-time", "0.01", "-workers", "1")
	if code != exitOK || !strings.Contains(out, "kind of work") || !strings.Contains(out, "convolutions together") {
		t.Fatalf("bench -train: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "bench", "-train", f, "-steps", "2", "-warmup", "1", "-peak-time", "0.01", "-workers", "1", "-json")
	var rep struct {
		Params  int       `json:"params"`
		Seconds []float64 `json:"seconds"`
		Median  float64   `json:"median_seconds"`
		Kinds   []struct {
			Seconds float64 `json:"Seconds"`
			Flops   float64 `json:"Flops"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil {
		t.Fatalf("bench -train -json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	sum, flops := 0.0, 0.0
	for _, k := range rep.Kinds {
		sum += k.Seconds
		flops += k.Flops
	}
	if rep.Params <= 0 || len(rep.Seconds) != 2 || rep.Median <= 0 || len(rep.Kinds) == 0 || flops <= 0 || sum > 1.5*rep.Median {
		t.Errorf("bench -train -json: %+v (kinds: %.3g s, %.3g flops)", rep, sum, flops)
	}
}

// TestCheckRefusesBadCombinations: what the file alone cannot tell (the
// rank layout, the flow's masks, files it names) is refused by check, before
// anything is written, naming the key.
func TestCheckRefusesBadCombinations(t *testing.T) {
	const base = "[run]\noutput = \"unused\"\n[lattice]\ndims = %s\n[parallel]\ngrid = %s\n[action]\nbeta = 1.0\nkappa = %s\n%s"
	for _, c := range []struct {
		name, dims, grid, kappa, phases string
		ranks                           int
		want                            []string
	}{
		{"eo with odd local extent", "[12, 8]", "[4, 1]", "0.2", "[hmc]\n", 4, []string{"parallel.grid", "3 is odd", "even/odd"}},
		{"flow masks", "[6, 8]", "[1, 1]", "0", "[train]\n", 1, []string{"lattice.dims", "not divisible by 4"}},
		{"batch over replicas", "[8, 8]", "[1, 1]", "0", "[train]\nbatch = 3\n", 2, []string{"train.batch", "multiple of 2"}},
		{"missing start", "[8, 8]", "[1, 1]", "0", "[hmc]\nstart = \"nowhere.pfg\"\n", 1, []string{"hmc.start", "nowhere.pfg"}},
		{"checkerboard with eo", "[8, 8]", "[1, 1]", "0.2", "[model]\npf_partition = [\"checkerboard\"]\n[train]\n", 1, []string{"model.pf_partition", "checkerboard"}},
	} {
		f := writeFile(t, fmt.Sprintf(base, c.dims, c.grid, c.kappa, c.phases))
		code, out, errOut := runCLI(t, "check", f, "-ranks", fmt.Sprint(c.ranks))
		if code != exitError {
			t.Errorf("%s: exit %d\n%s%s", c.name, code, out, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: %q lacks %q", c.name, errOut, w)
			}
		}
	}
}

// TestScalingCommands runs tiny weak- and strong-scaling series on 1 and 2
// in-process ranks (strong also on both 2-rank grids), then the report and
// the model on their CSV.
func TestScalingCommands(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "scaling.csv")
	ops := "dslash,cg,halo,hmc,train_step,train_replicas"
	for _, args := range [][]string{
		{"-weak", "8x8", "-ranks", "1"}, {"-weak", "8x8", "-ranks", "2"},
		{"-strong", "8x16", "-ranks", "1"}, {"-strong", "8x16", "-ranks", "2"}, {"-strong", "8x16", "-ranks", "2", "-grid", "2x1"},
	} {
		code, out, errOut := runCLI(t, append([]string{"bench", "-ops", ops, "-repeats", "1", "-csv", csv}, args...)...)
		if code != exitOK || !strings.Contains(out, "train_replicas") || !strings.Contains(out, "CG iterations") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "bench", "-report", "-png", filepath.Join(t.TempDir(), "scaling.png"), csv)
	if code != exitOK || strings.Count(out, "| weak | ") != 10 || strings.Count(out, "| strong | ") != 14 {
		t.Fatalf("report: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "bench", "-model", csv)
	if code != exitOK || !strings.Contains(out, "Calibrated on this machine") || !strings.Contains(out, "| train_replicas | u1 | 16x16 | 64 |") {
		t.Fatalf("model: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "bench", "-strong", "8x8", "-grid", "3x1", "-ranks", "2", "-ops", "cg"); code != exitError {
		t.Errorf("a grid of 3 ranks on 2: exit %d", code)
	}
	if code, _, _ := runCLI(t, "bench", "-weak", "8x8", "-strong", "8x8"); code != exitUsage {
		t.Errorf("-weak with -strong: exit %d", code)
	}
	if code, _, _ := runCLI(t, "bench", "-weak", "8x8", "-ops", "fft"); code != exitUsage {
		t.Errorf("unknown op: exit %d", code)
	}
}

// Only errors every rank shares end an MPI job without MPI_Abort.
func TestCollectiveErrors(t *testing.T) {
	cfg, err := config.Parse("x.toml", []byte("[lattice]\ndims = [4, 4]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var shared error
	mpi.Run(2, func(c mpi.Comm) error {
		e := mpi.RootError(c, errors.New("disk full"))
		if c.Rank() == 1 {
			shared = e
		}
		return nil
	})
	for _, c := range []struct {
		err  error
		want bool
	}{
		{cfg.Errorf("lattice.dims", "bad"), true},
		{shared, true},
		{fmt.Errorf("phase: %w", shared), true},
		{errors.New("rank-local failure"), false},
	} {
		if got := isCollective(c.err); got != c.want {
			t.Errorf("isCollective(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
