package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pfmpi/examples"
)

const minimal = "[lattice]\ndims = [8, 8]\n"

// TestExperimentRunFilesParse parses the run files under experiments/.
func TestExperimentRunFilesParse(t *testing.T) {
	names, err := filepath.Glob("../experiments/*/*.toml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no experiment run files: %v", err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(name, data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestShippedRunFilesParse(t *testing.T) {
	names, err := fs.Glob(examples.Files, "*.toml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded run files: %v", err)
	}
	for _, name := range names {
		data, _ := fs.ReadFile(examples.Files, name)
		c, err := Parse(name, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "contract.toml" {
			// The contract's example switches every phase on with the values it shows.
			if !slices.Equal(c.Phases(), []string{"hmc", "train", "sample", "bench"}) {
				t.Errorf("contract phases = %v", c.Phases())
			}
			if !slices.Equal(c.Action.Hasenbusch, []float64{0.001, 0.01, 0.05}) || c.Sample.NPF[6] != 64 ||
				c.Parallel.Grid.Auto || !slices.Equal(c.Parallel.Grid.Dims, []int{1, 1}) || c.HMC.Integrator != "omelyan" {
				t.Errorf("contract values not read: %+v", c)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("min.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Run.Seed != 1234 || c.Run.Resume != "auto" || c.Lattice.Group != "u1" || !c.Parallel.Grid.Auto ||
		c.Action.Precondition != "eo" || c.Model.GaugeLayers != 24 || !slices.Equal(c.Model.GaugeHidden, []int{32, 32}) {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Train != nil || c.HMC != nil || len(c.Phases()) != 0 {
		t.Errorf("phases switched on without their sections: %v", c.Phases())
	}
	// The holonomy layer: on for 2D U(1), ignored elsewhere.
	for _, c := range []struct {
		text string
		want bool
	}{
		{minimal, true},
		{minimal + "[model]\nu1_holonomy = false\n", false},
		{minimal + "group = \"su3\"\n", false},
		{"[lattice]\ndims = [4, 4, 4, 4]\n", false},
	} {
		cfg, err := Parse("h.toml", []byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.U1HolonomyLayer(); got != c.want {
			t.Errorf("%q: holonomy layer %v, want %v", c.text, got, c.want)
		}
	}
	// An empty phase section switches the phase on with its defaults.
	c, err = Parse("t.toml", []byte(minimal+"[action]\nbeta = 2\n[train]\n"))
	if err != nil || c.Train == nil || c.Train.Batch != 64 || c.Train.LR != 1e-3 || c.Train.LRSchedule != "cosine" || c.Train.GaugeSteps != 0 {
		t.Fatalf("empty [train]: %+v, %v", c.Train, err)
	}
}

// TestErrors checks that every kind of mistake is reported with the file,
// the line, the key and a way out.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"unknown key", minimal + "dimz = 3\n", []string{"bad.toml:3:", `unknown key "dimz" in [lattice]`, `did you mean "dims"`}},
		{"unknown section", minimal + "[lattise]\nx = 1\n", []string{"bad.toml:3:", "unknown section [lattise]", "did you mean [lattice]"}},
		{"key outside sections", "seed = 3\n" + minimal, []string{"bad.toml:1:", `unknown key "seed" outside any section`, "belongs in [run]"}},
		{"wrong type", "[lattice]\ndims = \"8\"\n", []string{"bad.toml:2:", "lattice.dims", "got a TOML string", "expects an array of integers", "dims = [8, 8]"}},
		{"float for int", minimal + "[train]\nbatch = 6.5\n[action]\nbeta = 1\n", []string{"bad.toml:4:", "train.batch", "expects an integer"}},
		{"enum", minimal + "group = \"su2\"\n", []string{"bad.toml:3:", "lattice.group", `"su2" is not allowed`, `"u1" | "su3"`}},
		{"bound", minimal + "[train]\nbatch = 0\n[action]\nbeta = 1\n", []string{"bad.toml:4:", "train.batch", "must be ≥ 1"}},
		{"strict bound", minimal + "[action]\nbeta = 0.0\n", []string{"bad.toml:4:", "action.beta", "must be > 0"}},
		{"enum in array", minimal + "[model]\npf_partition = [\"rows\", \"cols\"]\n", []string{"bad.toml:4:", "model.pf_partition", `entry 1, "cols"`}},
		{"grid", minimal + "[parallel]\ngrid = [2, 0]\n", []string{"bad.toml:4:", "parallel.grid", "grid[1] = 0"}},
		{"grid word", minimal + "[parallel]\ngrid = \"best\"\n", []string{"bad.toml:4:", `"auto"`}},
		{"grid length", minimal + "[parallel]\ngrid = [2, 1, 1]\n", []string{"bad.toml:4:", "3 entries but lattice.dims [8 8] has 2"}},
		{"dims length", "[lattice]\ndims = [8]\n", []string{"bad.toml:2:", "lattice.dims", "2, 3 or 4"}},
		{"missing dims", "[run]\nseed = 1\n", []string{"lattice.dims", "required", "dims = [8, 8]"}},
		{"missing beta", minimal + "[train]\n", []string{"action.beta", "required by the train phase", "beta = 2.0"}},
		{"hasenbusch order", minimal + "[action]\nkappa = 0.2\nhasenbusch = [0.1, 0.01]\n", []string{"bad.toml:5:", "strictly increasing"}},
		{"hasenbusch without fermions", minimal + "[action]\nhasenbusch = [0.1]\n", []string{"action.hasenbusch", "kappa > 0"}},
		{"pf depths per monomial", minimal + "[action]\nkappa = 0.2\nhasenbusch = [0.1]\n[model]\npf_monomial_layers = [8, 4, 2]\n", []string{"bad.toml:7:", "model.pf_monomial_layers", "3 entries for 2 pseudofermion monomials"}},
		{"decay", minimal + "[action]\nbeta = 1\n[train]\nlr_decay_factor = 2.0\n", []string{"bad.toml:6:", "exceeds 1"}},
		{"lr_min", minimal + "[action]\nbeta = 1\n[train]\nlr = 1e-3\nlr_schedule = \"cosine\"\nlr_min = 0.01\n", []string{"bad.toml:8:", "train.lr_min", "exceeds train.lr"}},
		{"lr_schedule", minimal + "[action]\nbeta = 1\n[train]\nlr_schedule = \"linear\"\n", []string{"bad.toml:6:", "train.lr_schedule", "cosine"}},
		{"step decay under cosine", minimal + "[action]\nbeta = 1\n[train]\nlr_decay_every = 300\n", []string{"bad.toml:6:", "train.lr_decay_every", `lr_schedule = "step"`}},
		{"decay factor under cosine", minimal + "[action]\nbeta = 1\n[train]\nlr_decay_factor = 0.3\n", []string{"bad.toml:6:", "train.lr_decay_factor", `lr_schedule = "step"`}},
		{"syntax", "[lattice\ndims = [8, 8]\n", []string{"bad.toml:2:", "to end table name", "1 | [lattice"}},
		{"empty output", minimal + "[run]\noutput = \" \"\n", []string{"bad.toml:4:", "run.output", "is empty"}},
		{"negative seed", minimal + "[run]\nseed = -1\n", []string{"bad.toml:4:", "run.seed", "≥ 0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(c.text))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.text)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestAllProblemsReported(t *testing.T) {
	_, err := Parse("bad.toml", []byte(minimal+"[train]\nbatch = 0\nsteps = 0\n"))
	for _, w := range []string{"action.beta", "train.batch", "train.steps"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not report %s", err, w)
		}
	}
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	data, _ := fs.ReadFile(examples.Files, "contract.toml")
	c, err := Parse("contract.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", buf.Bytes())
	if err != nil {
		t.Fatalf("resolved file does not parse: %v\n%s", err, buf.String())
	}
	c.file, c.lines, back.file, back.lines = "", nil, "", nil
	if !reflect.DeepEqual(c, back) {
		t.Errorf("round trip changed the configuration:\n%+v\n%+v", c, back)
	}
}

// TestHelpIsAValidRunFile: the help is generated from the schema and is
// itself a run file; parsing it gives every default (and the examples of the
// required keys), with every phase switched on.
func TestHelpIsAValidRunFile(t *testing.T) {
	var buf bytes.Buffer
	Help(&buf)
	c, err := Parse("help", buf.Bytes())
	if err != nil {
		t.Fatalf("the help is not a valid run file: %v\n%s", err, buf.String())
	}
	if !slices.Equal(c.Phases(), []string{"hmc", "train", "sample", "bench"}) {
		t.Errorf("help phases = %v", c.Phases())
	}
	for _, s := range sections() {
		for _, k := range s.keys {
			if !strings.Contains(buf.String(), "\n"+k.name+" = ") {
				t.Errorf("help lacks %s.%s", s.name, k.name)
			}
		}
	}
	d, _ := Parse("min", []byte(minimal+"[action]\nbeta = 2.0\n[hmc]\n[train]\n[sample]\n[bench]\n"))
	c.file, c.lines, d.file, d.lines = "", nil, "", nil
	if !reflect.DeepEqual(c, d) {
		t.Errorf("the help's values differ from the parser's defaults:\n%+v\n%+v", c, d)
	}
}

// TestUpperBound: keys with upper bounds refuse values beyond them (strict
// and inclusive).
func TestUpperBound(t *testing.T) {
	_, err := Parse("x.toml", []byte(minimal+"[model]\nspectral_bound = 1.0\n"))
	if err == nil || !strings.Contains(err.Error(), "model.spectral_bound") || !strings.Contains(err.Error(), "< 1") {
		t.Errorf("spectral_bound = 1 accepted or unclear: %v", err)
	}
	if _, err := Parse("x.toml", []byte(minimal+"[model]\nspectral_bound = 0.95\n")); err != nil {
		t.Error(err)
	}
	_, err = Parse("x.toml", []byte(minimal+"[model]\nspectral_steps = 9\n"))
	if err == nil || !strings.Contains(err.Error(), "model.spectral_steps") || !strings.Contains(err.Error(), "≤ 8") {
		t.Errorf("spectral_steps = 9 accepted or unclear: %v", err)
	}
	if _, err := Parse("x.toml", []byte(minimal+"[model]\nspectral_steps = 8\n")); err != nil {
		t.Error(err)
	}
}
