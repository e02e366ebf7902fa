package flowrun

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pfmpi/config"
	"pfmpi/coupling"
	"pfmpi/decomp"
	"pfmpi/flow"
	"pfmpi/internal/atomicfile"
	"pfmpi/internal/driver"
	"pfmpi/internal/mpitest"
	"pfmpi/internal/rundir"
	"pfmpi/measure"
	"pfmpi/mpi"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

const base = `
[run]
seed = 11
output = "%s"
[lattice]
dims = [4, 4]
[parallel]
grid = %s
[action]
beta = 1.5
kappa = %g
[model]
gauge_layers = 4
gauge_hidden = [4]
gauge_dilations = [1]
fermions = "exact"
[train]
steps = %d
batch = 4
lr = 1e-2
eps = 1e-8
checkpoint_every = 3
ess_every = 2
ess_batch = 16
[sample]
n = 64
batch = 16
save_every = 20
`

// jointModel replaces fermions = "exact" in base for the joint model;
// jointAction is added to its [action] section.
const (
	jointModel = `pf_layers = 2
pf_partition = ["rows", "spin"]
n_pt = 2
pt_hidden = 2
pf_context_hidden = 4`
	jointAction = "precondition = \"eo\"\nhasenbusch = [0.05]\ntrain_regulator = 1e-5\n[model]\n"
)

// run runs the phases of text on world and returns the output.
func run(world mpi.Comm, text string) (string, error) {
	var out bytes.Buffer
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		return "", err
	}
	lat, err := decomp.NewLattice(cfg.Lattice.Dims, cfg.Parallel.Grid.Dims, false)
	if err != nil {
		return "", err
	}
	domain, replica, err := decomp.SplitWorld(world, lat)
	if err != nil {
		return "", err
	}
	defer domain.Free()
	defer replica.Free()
	ly, err := lat.Layout(domain.Rank())
	if err != nil {
		return "", err
	}
	dir, err := rundir.Open(world, cfg)
	if err != nil {
		return "", err
	}
	env := driver.Env{World: world, Domain: domain, Replica: replica, Layout: ly, Config: cfg, Dir: dir, Out: &out}
	for _, phase := range cfg.Phases() {
		switch phase {
		case "train":
			err = Train(env)
		case "sample":
			err = Sample(env)
		}
		if err != nil {
			break
		}
	}
	return out.String(), errors.Join(err, dir.Close())
}

func trainRecords(dir string) ([]map[string]any, error) {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		if r["phase"] == "train" {
			delete(r, "seconds")
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

func onRoot(c mpi.Comm, fn func() error) error {
	var err error
	if c.Rank() == 0 {
		err = fn()
	}
	return mpi.RootError(c, err)
}

// TestTrainResumeAndSample trains for 5 steps, resumes a run stopped at 3
// (its checkpoint) and requires the same log and model; then samples and
// checks the summary, on two replicas.
func TestTrainResumeAndSample(t *testing.T) {
	type variant struct {
		kappa float64
		joint bool
		train string // extra train keys
	}
	for _, v := range []variant{{0, false, ""}, {0.2, false, ""}, {0.2, true, ""}, {0.2, true, "gauge_steps = 2\n"}} {
		kappa := v.kappa
		text := func(dir string, steps int) string {
			s := fmt.Sprintf(base, dir, "[1, 1]", kappa, steps)
			if v.joint {
				s = strings.Replace(s, "fermions = \"exact\"", jointModel, 1)
				s = strings.Replace(s, "[model]\n", jointAction, 1)
				s = strings.Replace(s, "save_every = 20", "save_every = 20\nnpf = [1, 2, 4]", 1)
			}
			return strings.Replace(s, "ess_batch = 16\n", "ess_batch = 16\n"+v.train, 1)
		}
		mpitest.RunDir(t, 2, func(c mpi.Comm, tmp string) error {
			straight := filepath.Join(tmp, fmt.Sprint("straight", kappa, v.joint))
			if _, err := run(c, strings.Split(text(straight, 5), "[sample]")[0]); err != nil {
				return err
			}
			resumed := filepath.Join(tmp, fmt.Sprint("resumed", kappa, v.joint))
			if _, err := run(c, strings.Split(text(resumed, 3), "[sample]")[0]); err != nil {
				return err
			}
			out, err := run(c, text(resumed, 5))
			if err != nil {
				return err
			}
			return onRoot(c, func() error {
				if !strings.Contains(out, "resumed      at step 3") || !strings.Contains(out, "sample summary") {
					return fmt.Errorf("output:\n%s", out)
				}
				a, err1 := trainRecords(straight)
				b, err2 := trainRecords(resumed)
				if err := errors.Join(err1, err2); err != nil {
					return err
				}
				// The shorter run measured the ESS at its last step too.
				if len(b) == 5 {
					delete(b[2], "ess")
					delete(b[2], "ess_joint")
					delete(b[2], "ess_marginal")
				}
				if v.joint {
					// Two monomials of 8 even sites × 2 spins: N_tot = 32.
					k, ok1 := a[0]["kl_minus_logz"].(float64)
					l, ok2 := a[0]["loss"].(float64)
					if !ok1 || !ok2 || math.Abs(k-l-32*math.Log(math.Pi)) > 1e-9 {
						return fmt.Errorf("kl_minus_logz %v, loss %v: want loss + 32 log π", a[0]["kl_minus_logz"], a[0]["loss"])
					}
				}
				if len(a) != 5 || !reflect.DeepEqual(a, b) {
					return fmt.Errorf("κ = %g: the resumed training log differs (%d and %d records)\n%v\n%v", kappa, len(a), len(b), a, b)
				}
				x, _ := os.ReadFile(filepath.Join(straight, "checkpoints", "model-0000005.bin"))
				y, _ := os.ReadFile(filepath.Join(resumed, "checkpoints", "model-0000005.bin"))
				if len(x) == 0 || !bytes.Equal(x, y) {
					return fmt.Errorf("κ = %g: the models after 5 steps differ", kappa)
				}
				sb, err := os.ReadFile(filepath.Join(resumed, "summary.json"))
				if err != nil {
					return err
				}
				var sum map[string]json.RawMessage
				if err := json.Unmarshal(sb, &sum); err != nil {
					return err
				}
				keys := []string{"ess", "acceptance", "plaquette", "plaquette_reweighted", "topological_susceptibility"}
				if kappa > 0 {
					keys = append(keys, "ess_marginal")
				}
				plots := []string{"plots/ess.png", "plots/loss.png", "configs/flow-0000019.pfg", "configs/flow-0000059.pfg"}
				if v.joint {
					keys[0] = "ess_joint"
					plots = append(plots, "plots/ess_npf.png")
					var rows []struct {
						Npf        int
						ESS        struct{ Value, Error float64 }
						Acceptance struct{ Value, Error float64 }
						Plaquette  struct{ Value, Error float64 }
					}
					if err := json.Unmarshal(sum["ess_npf"], &rows); err != nil || len(rows) != 3 || rows[2].Npf != 4 || rows[2].ESS.Value <= 0 ||
						!(rows[2].Plaquette.Value > 0 && rows[2].Plaquette.Value < 1) {
						return fmt.Errorf("summary.json ess_npf = %s (%v)", sum["ess_npf"], err)
					}
					// Condition numbers: M and the two monomials; the ratio
					// monomial's kernel is better conditioned than M.
					var cond map[string]struct{ Value, Error float64 }
					if err := json.Unmarshal(sum["condition_number_mean"], &cond); err != nil || len(cond) != 3 ||
						cond["DscDsc†"].Value < 1 || cond["pf0"].Value >= cond["DscDsc†"].Value || cond["pf1"].Value >= cond["DscDsc†"].Value {
						return fmt.Errorf("summary.json condition_number_mean = %s (%v)", sum["condition_number_mean"], err)
					}
				}
				for _, k := range keys {
					var e struct{ Value, Error *float64 }
					if err := json.Unmarshal(sum[k], &e); err != nil || e.Value == nil || e.Error == nil {
						return fmt.Errorf("summary.json %s = %s", k, sum[k])
					}
				}
				for _, name := range plots {
					if _, err := os.Stat(filepath.Join(resumed, name)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// TestSampleWithoutModel is refused with a message naming the fix.
func TestSampleWithoutModel(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		text := strings.Replace(fmt.Sprintf(base, filepath.Join(tmp, "none"), "[1, 1]", 0.0, 5), "[train]", "[unused]", 1)
		text = strings.Split(text, "[unused]")[0] + "[sample]\nn = 16\nbatch = 16\n"
		_, err := run(c, text)
		if err == nil || !strings.Contains(err.Error(), "no trained model") {
			return fmt.Errorf("sampling without a model: %v", err)
		}
		return nil
	})
}

// TestCosineSchedule: train.lr_schedule = "cosine" reaches the optimizer:
// the logged learning rates follow lr_t = lr_min + (lr − lr_min)·½(1 + cos πs),
// s = (t − warm-up)/(steps − warm-up), ending at lr_min on the last step.
func TestCosineSchedule(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		dir := filepath.Join(tmp, "cosine")
		text := strings.Replace(fmt.Sprintf(base, dir, "[1, 1]", 0.0, 5), "ess_batch = 16\n",
			"ess_batch = 16\nlr_schedule = \"cosine\"\nlr_min = 1e-3\nlr_warmup = 1\n", 1)
		text = strings.Split(text, "[sample]")[0]
		if _, err := run(c, text); err != nil {
			return err
		}
		return onRoot(c, func() error {
			recs, err := trainRecords(dir)
			if err != nil {
				return err
			}
			if len(recs) != 5 {
				return fmt.Errorf("%d training records, want 5", len(recs))
			}
			for _, r := range recs {
				step := r["step"].(float64) // from 0: optimizer step t = step + 1
				s := (step + 1 - 1) / (5 - 1)
				want := 1e-3 + (1e-2-1e-3)*0.5*(1+math.Cos(math.Pi*s))
				if got := r["lr"].(float64); math.Abs(got-want) > 1e-15 {
					return fmt.Errorf("step %v: lr %.17g, want %.17g", step, got, want)
				}
			}
			return nil
		})
	})
}

// TestInitFrom: train.init_from starts a run from another run's trained
// parameters. A run initialised from a trained one and trained one step at
// lr 1e-300 (its parameters unchanged to double precision) samples exactly
// like the trained run; the same model on a larger lattice accepts the
// parameters (transfer); a different model or a directory without a
// checkpoint is refused with the key named.
func TestInitFrom(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		text := func(dir string, steps int, extra string) string {
			s := fmt.Sprintf(base, dir, "[1, 1]", 0.0, steps)
			return strings.Replace(s, "ess_batch = 16\n", "ess_batch = 16\n"+extra, 1)
		}
		trained := filepath.Join(tmp, "trained")
		if _, err := run(c, text(trained, 3, "")); err != nil {
			return err
		}
		from := fmt.Sprintf("init_from = %q\n", trained)
		same := filepath.Join(tmp, "same")
		out, err := run(c, strings.Replace(text(same, 1, from), "lr = 1e-2", "lr = 1e-300", 1))
		if err != nil {
			return err
		}
		if err := onRoot(c, func() error {
			if !strings.Contains(out, "initialised  from "+trained+" (its step 3)") {
				return fmt.Errorf("output:\n%s", out)
			}
			var sums [2]map[string]json.RawMessage
			for i, dir := range []string{trained, same} {
				b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
				if err != nil {
					return err
				}
				var all map[string]json.RawMessage
				if err := json.Unmarshal(b, &all); err != nil {
					return err
				}
				if err := json.Unmarshal(all["sample"], &sums[i]); err != nil {
					return fmt.Errorf("%s: sample summary: %v", dir, err)
				}
			}
			for _, k := range []string{"ess", "acceptance", "plaquette"} {
				var x, y struct{ Value, Error float64 }
				if err := errors.Join(json.Unmarshal(sums[0][k], &x), json.Unmarshal(sums[1][k], &y)); err != nil {
					return fmt.Errorf("sample summary %s: %v", k, err)
				}
				a, b := x.Value, y.Value
				if a == 0 || math.Abs(a-b) > 1e-12*math.Abs(a) {
					return fmt.Errorf("%s: trained run %v, initialised from it %v", k, a, b)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		larger := strings.Replace(text(filepath.Join(tmp, "larger"), 1, from), "dims = [4, 4]", "dims = [8, 8]", 1)
		if _, err := run(c, strings.Split(larger, "[sample]")[0]); err != nil {
			return fmt.Errorf("transfer to 8 × 8: %v", err)
		}
		other := strings.Replace(text(filepath.Join(tmp, "other"), 1, from), "gauge_layers = 4", "gauge_layers = 2", 1)
		if _, err := run(c, strings.Split(other, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "train.init_from") {
			return fmt.Errorf("initialised from a different model: %v", err)
		}
		none := text(filepath.Join(tmp, "none"), 1, fmt.Sprintf("init_from = %q\n", filepath.Join(tmp, "missing")))
		if _, err := run(c, strings.Split(none, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "holds no training checkpoint") {
			return fmt.Errorf("initialised from a directory without a run: %v", err)
		}
		return nil
	})
}

// TestInitFromGaugeOnly: a joint run initialised from an exact-determinant
// run loads its gauge flow (the pseudofermion flows start afresh), and
// with train.pf_first covering every step the gauge flow leaves training
// exactly as loaded while the pseudofermion flows move; pf_first without
// pseudofermion flows is refused with the key named. So are the other
// ways to take a gauge flow alone: train.init_gauge_only (the
// pseudofermion flows start afresh even where the models agree), a model
// whose pseudofermion flows differ, and train.init_gauge_from (another
// run's gauge flow over init_from's).
func TestInitFromGaugeOnly(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		exact := filepath.Join(tmp, "exact")
		if _, err := run(c, fmt.Sprintf(base, exact, "[1, 1]", 0.2, 3)); err != nil {
			return err
		}
		joint := filepath.Join(tmp, "joint")
		s := jointText(joint, fmt.Sprintf("init_from = %q\npf_first = 3\n", exact))
		out, err := run(c, strings.Split(s, "[sample]")[0])
		if err != nil {
			return err
		}
		if err := onRoot(c, func() error {
			if !strings.Contains(out, "its gauge flow only") {
				return fmt.Errorf("output:\n%s", out)
			}
			ex, exNames, err := checkpointParams(exact, 3)
			if err != nil {
				return err
			}
			jo, joNames, err := checkpointParams(joint, 3)
			if err != nil {
				return err
			}
			if len(joNames) <= len(exNames) {
				return fmt.Errorf("joint model has %d parameters, the gauge flow %d", len(joNames), len(exNames))
			}
			for _, n := range exNames {
				if !slices.Equal(ex[n], jo[n]) {
					return fmt.Errorf("gauge parameter %s moved during pf_first", n)
				}
			}
			moved := false
			for _, n := range joNames[len(exNames):] {
				for _, v := range jo[n] {
					moved = moved || v != 0
				}
			}
			if !moved {
				return fmt.Errorf("the pseudofermion flows are all zero after 3 steps")
			}
			return nil
		}); err != nil {
			return err
		}
		// From the joint run with train.init_gauge_only: its gauge flow (the
		// exact run's, held) and fresh pseudofermion flows, so the same
		// start as the joint run's and, with the same seed, the same
		// parameters after the same steps.
		again := filepath.Join(tmp, "again")
		s = jointText(again, fmt.Sprintf("init_from = %q\ninit_gauge_only = true\npf_first = 3\n", joint))
		if _, err := run(c, strings.Split(s, "[sample]")[0]); err != nil {
			return err
		}
		// From the joint run into other pseudofermion flows (pt_hidden 3):
		// its gauge flow alone is taken.
		wider := filepath.Join(tmp, "wider")
		s = strings.Replace(jointText(wider, fmt.Sprintf("init_from = %q\npf_first = 3\n", joint)), "pt_hidden = 2", "pt_hidden = 3", 1)
		out, err = run(c, strings.Split(s, "[sample]")[0])
		if err != nil {
			return err
		}
		if err := onRoot(c, func() error {
			if !strings.Contains(out, "its gauge flow only") {
				return fmt.Errorf("pt_hidden 3 from pt_hidden 2, output:\n%s", out)
			}
			jo, names, err := checkpointParams(joint, 3)
			if err != nil {
				return err
			}
			ag, _, err := checkpointParams(again, 3)
			if err != nil {
				return err
			}
			for _, n := range names {
				if !slices.Equal(jo[n], ag[n]) {
					return fmt.Errorf("init_gauge_only: parameter %s differs from the run it should repeat", n)
				}
			}
			wi, _, err := checkpointParams(wider, 3)
			if err != nil {
				return err
			}
			ex, exNames, err := checkpointParams(exact, 3)
			if err != nil {
				return err
			}
			for _, n := range exNames {
				if !slices.Equal(ex[n], wi[n]) {
					return fmt.Errorf("pt_hidden 3: gauge parameter %s is not the loaded one", n)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		// init_gauge_from: the joint run's model with the gauge flow of an
		// exact run of 4 steps (held by pf_first, so still its values).
		exact4 := filepath.Join(tmp, "exact4")
		if _, err := run(c, fmt.Sprintf(base, exact4, "[1, 1]", 0.2, 4)); err != nil {
			return err
		}
		mixed := filepath.Join(tmp, "mixed")
		s = jointText(mixed, fmt.Sprintf("init_from = %q\ninit_gauge_from = %q\npf_first = 3\n", joint, exact4))
		if _, err := run(c, strings.Split(s, "[sample]")[0]); err != nil {
			return err
		}
		if err := onRoot(c, func() error {
			ex4, names, err := checkpointParams(exact4, 4)
			if err != nil {
				return err
			}
			mi, _, err := checkpointParams(mixed, 3)
			if err != nil {
				return err
			}
			ex3, _, err := checkpointParams(exact, 3)
			if err != nil {
				return err
			}
			differ := false
			for _, n := range names {
				if !slices.Equal(ex4[n], mi[n]) {
					return fmt.Errorf("init_gauge_from: gauge parameter %s is not the loaded one", n)
				}
				differ = differ || !slices.Equal(ex4[n], ex3[n])
			}
			if !differ {
				return fmt.Errorf("the gauge flows after 3 and 4 steps are equal: the test cannot tell them apart")
			}
			return nil
		}); err != nil {
			return err
		}
		for _, key := range []string{"init_gauge_from = \"x\"", "init_gauge_only = true"} {
			s = jointText(filepath.Join(tmp, "lone"), key+"\n")
			if _, err := run(c, strings.Split(s, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "train."+strings.Fields(key)[0]) {
				return fmt.Errorf("%s without init_from: %v", key, err)
			}
		}
		bad := strings.Replace(fmt.Sprintf(base, filepath.Join(tmp, "bad"), "[1, 1]", 0.2, 3), "ess_batch = 16\n", "ess_batch = 16\npf_first = 2\n", 1)
		if _, err := run(c, strings.Split(bad, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "train.pf_first") {
			return fmt.Errorf("pf_first without pseudofermion flows: %v", err)
		}
		return nil
	})
}

// TestGaugeLossMarginal: with train.gauge_loss = "marginal" the gauge flow
// of a joint run trains as in a run of the gauge flow alone on the exact
// determinant (same seed, batch and steps: parameters equal to rounding),
// its loss is logged, and the key is refused without pseudofermion flows.
func TestGaugeLossMarginal(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		exact := filepath.Join(tmp, "exact")
		if _, err := run(c, strings.Split(fmt.Sprintf(base, exact, "[1, 1]", 0.2, 3), "[sample]")[0]); err != nil {
			return err
		}
		joint := filepath.Join(tmp, "joint")
		s := jointText(joint, "gauge_loss = \"marginal\"\ngauge_steps = 1\n")
		if _, err := run(c, strings.Split(s, "[sample]")[0]); err != nil {
			return err
		}
		// gauge_steps = 0 (auto) on the exact marginal is 4 steps.
		for _, steps := range []string{"", "gauge_steps = 4\n"} {
			s := jointText(filepath.Join(tmp, "auto"+strings.TrimSuffix(strings.ReplaceAll(steps, " ", ""), "\n")), "gauge_loss = \"marginal\"\n"+steps)
			if _, err := run(c, strings.Split(s, "[sample]")[0]); err != nil {
				return err
			}
		}
		if err := onRoot(c, func() error {
			auto, names, err := checkpointParams(filepath.Join(tmp, "auto"), 3)
			if err != nil {
				return err
			}
			four, _, err := checkpointParams(filepath.Join(tmp, "autogauge_steps=4"), 3)
			if err != nil {
				return err
			}
			one, _, err := checkpointParams(joint, 3)
			if err != nil {
				return err
			}
			differs := false
			for _, n := range names {
				if !slices.Equal(auto[n], four[n]) {
					return fmt.Errorf("parameter %s: gauge_steps = 0 (auto) differs from gauge_steps = 4", n)
				}
				differs = differs || !slices.Equal(auto[n], one[n])
			}
			if !differs {
				return fmt.Errorf("gauge_steps = 0 (auto) trained as gauge_steps = 1")
			}
			return nil
		}); err != nil {
			return err
		}
		if err := onRoot(c, func() error {
			ex, names, err := checkpointParams(exact, 3)
			if err != nil {
				return err
			}
			jo, _, err := checkpointParams(joint, 3)
			if err != nil {
				return err
			}
			// Equal up to the order of the sums (the joint run sums its
			// gradient over goroutine copies, the exact run does not).
			for _, n := range names {
				if len(ex[n]) != len(jo[n]) {
					return fmt.Errorf("gauge parameter %s: %d values against %d", n, len(jo[n]), len(ex[n]))
				}
				far := false
				for i, v := range ex[n] {
					far = far || math.Abs(v-jo[n][i]) > 1e-12*(1+math.Abs(v))
				}
				if far {
					return fmt.Errorf("gauge parameter %s: the joint run with gauge_loss = \"marginal\" differs from the exact-determinant run: %v vs %v", n, jo[n][:3], ex[n][:3])
				}
			}
			b, err := os.ReadFile(filepath.Join(joint, "metrics.jsonl"))
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), `"marginal_loss":`) {
				return fmt.Errorf("metrics.jsonl lacks the marginal loss:\n%s", b)
			}
			return nil
		}); err != nil {
			return err
		}
		bad := strings.Replace(fmt.Sprintf(base, filepath.Join(tmp, "bad"), "[1, 1]", 0.2, 3), "ess_batch = 16\n", "ess_batch = 16\ngauge_loss = \"marginal\"\n", 1)
		if _, err := run(c, strings.Split(bad, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "train.gauge_loss") {
			return fmt.Errorf("gauge_loss = \"marginal\" without pseudofermion flows: %v", err)
		}
		bad = jointText(filepath.Join(tmp, "bad-steps"), "gauge_loss = \"joint\"\ngauge_steps = 2\n")
		if _, err := run(c, strings.Split(bad, "[sample]")[0]); err == nil || !strings.Contains(err.Error(), "train.gauge_steps") {
			return fmt.Errorf("gauge_steps = 2 with the joint gauge loss: %v", err)
		}
		return nil
	})
}

// jointText is base as a joint model (κ = 0.2, 3 steps, one rank) writing
// to dir, with train keys extra.
func jointText(dir, extra string) string {
	s := strings.Replace(fmt.Sprintf(base, dir, "[1, 1]", 0.2, 3), "fermions = \"exact\"", jointModel, 1)
	s = strings.Replace(s, "kappa = 0.2\n", "kappa = 0.2\n"+strings.TrimSuffix(jointAction, "[model]\n"), 1)
	return strings.Replace(s, "ess_batch = 16\n", "ess_batch = 16\n"+extra, 1)
}

// checkpointParams reads the parameters of the model checkpoint of step
// of the run in dir (paramRecord).
func checkpointParams(dir string, step int) (map[string][]float64, []string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "checkpoints", fmt.Sprintf("model-%07d.bin", step)))
	if err != nil {
		return nil, nil, err
	}
	return paramRecord(b)
}

// paramRecord parses the parameter record that starts a model checkpoint
// (magic, count, then per parameter: name length, name, rank, dims,
// values, little endian) into values by name, and the names in order.
func paramRecord(b []byte) (map[string][]float64, []string, error) {
	r := bytes.NewReader(b[8:])
	var count uint32
	if err := binary.Read(r, binary.LittleEndian, &count); err != nil {
		return nil, nil, err
	}
	vals := map[string][]float64{}
	var names []string
	for range count {
		var n uint32
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			return nil, nil, err
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, nil, err
		}
		var rank uint32
		if err := binary.Read(r, binary.LittleEndian, &rank); err != nil {
			return nil, nil, err
		}
		dims := make([]uint32, rank)
		if err := binary.Read(r, binary.LittleEndian, dims); err != nil {
			return nil, nil, err
		}
		size := 1
		for _, d := range dims {
			size *= int(d)
		}
		v := make([]float64, size)
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return nil, nil, err
		}
		vals[string(name)] = v
		names = append(names, string(name))
	}
	return vals, names, nil
}

// TestFitNpf recovers ESS(∞) and C from points on ESS(∞)/(1 + C/Npf).
func TestFitNpf(t *testing.T) {
	var x, y, e []float64
	for _, n := range []int{1, 2, 4, 8, 16, 32, 64} {
		x = append(x, 1/float64(n))
		y = append(y, 0.35/(1+6/float64(n)))
		e = append(e, 0.01)
	}
	f, err := fitNpf(x, y, e)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.essInf.Value-0.35) > 1e-12 || math.Abs(f.c.Value-6) > 1e-10 || !(f.essInf.Error > 0) || !(f.c.Error > 0) {
		t.Errorf("fit: ESS(∞) = %v, C = %v; want 0.35, 6", f.essInf, f.c)
	}
	if _, err := fitNpf([]float64{1, 1}, []float64{0.1, 0.1}, []float64{0.01, 0.01}); err == nil {
		t.Error("a fit through one abscissa was accepted")
	}
}

// TestSU3PureGauge trains and samples a pure-gauge SU(3) flow briefly: the
// summary carries the ESS, the Metropolis plaquette and the exact value.
func TestSU3PureGauge(t *testing.T) {
	mpitest.RunDir(t, 2, func(c mpi.Comm, tmp string) error {
		text := strings.Replace(fmt.Sprintf(base, filepath.Join(tmp, "su3"), "[1, 1]", 0.0, 3), "[lattice]\ndims = [4, 4]", "[lattice]\ndims = [4, 4]\ngroup = \"su3\"", 1)
		text = strings.Replace(text, "beta = 1.5", "beta = 6.0", 1)
		out, err := run(c, text)
		if err != nil {
			return err
		}
		return onRoot(c, func() error {
			sb, err := os.ReadFile(filepath.Join(tmp, "su3", "summary.json"))
			if err != nil {
				return err
			}
			var sum struct {
				ESS, Plaquette struct{ Value, Error float64 }
				PlaquetteExact float64 `json:"plaquette_exact"`
			}
			if err := json.Unmarshal(sb, &sum); err != nil {
				return err
			}
			exact, _ := measure.SU3Plaquette(6, 16)
			if sum.ESS.Value <= 0 || sum.Plaquette.Value <= 0 || math.Abs(sum.PlaquetteExact-exact) > 1e-12 {
				return fmt.Errorf("SU(3) summary %s\n%s", sb, out)
			}
			return nil
		})
	})
}

// TestSU3Fermions runs 2D SU(3) with two Wilson flavours end to end on 4×4:
// the marginal flow against the exact determinant and the joint model
// (even/odd + one Hasenbusch ratio, rows and spin partitions with colour
// carried by the transports), each trained for 3 steps and sampled; the
// summaries carry the ESS (joint and marginal for the joint model), the
// acceptance and the plaquette.
func TestSU3Fermions(t *testing.T) {
	for _, joint := range []bool{false, true} {
		mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
			text := fmt.Sprintf(base, filepath.Join(tmp, "su3nf2"), "[1, 1]", 0.2, 3)
			text = strings.Replace(text, "[lattice]\ndims = [4, 4]", "[lattice]\ndims = [4, 4]\ngroup = \"su3\"", 1)
			text = strings.Replace(text, "beta = 1.5", "beta = 6.0", 1)
			keys := []string{"ess", "acceptance", "plaquette"}
			if joint {
				text = strings.Replace(text, "fermions = \"exact\"", jointModel, 1)
				text = strings.Replace(text, "[model]\n", strings.Replace(jointAction, "0.05", "0.3", 1), 1)
				keys = []string{"ess_joint", "ess_marginal", "acceptance", "plaquette"}
			}
			out, err := run(c, text)
			if err != nil {
				return fmt.Errorf("joint %v: %v\n%s", joint, err, out)
			}
			sb, err := os.ReadFile(filepath.Join(tmp, "su3nf2", "summary.json"))
			if err != nil {
				return err
			}
			var sum map[string]json.RawMessage
			if err := json.Unmarshal(sb, &sum); err != nil {
				return err
			}
			for _, k := range keys {
				var e struct{ Value, Error *float64 }
				if err := json.Unmarshal(sum[k], &e); err != nil || e.Value == nil || !(*e.Value > 0) {
					return fmt.Errorf("joint %v: summary key %s missing or not positive in\n%s", joint, k, sb)
				}
			}
			return nil
		})
	}
}

// TestSampleCheckpointChunks: the sample phase checkpoints its proposals in
// chunks and a later run reuses them: asked for fewer proposals it keeps a
// prefix (the checkpoint restarts as one chunk), asked for more it draws
// only the rest — and the estimates equal those of runs drawn in one go.
// The replicas change between the runs too (1, then 2, with a first chunk
// of 33 that does not split evenly over them).
func TestSampleCheckpointChunks(t *testing.T) {
	if mpi.Backend != "in-process" {
		t.Skip("runs on 1 and then 2 ranks in one directory: in-process only")
	}
	tmp := t.TempDir()
	text := func(dir string, n int, grid string) string {
		s := strings.Replace(fmt.Sprintf(base, dir, grid, 0.0, 2), "n = 64", fmt.Sprintf("n = %d\ncheckpoint_every = 16", n), 1)
		return strings.Replace(s, "save_every = 20", "save_every = 0", 1)
	}
	summary := func(dir string) map[string]any {
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		json.Unmarshal(b, &v)
		s := v["sample"].(map[string]any)
		delete(s, "seconds")
		return s
	}
	chunks := func(dir string) int {
		var ck sampleCheckpoint
		if _, err := atomicfile.ReadJSON(filepath.Join(dir, "checkpoints", sampleCheckpointName), &ck); err != nil {
			t.Fatal(err)
		}
		// The files of this checkpoint and of the one before it stay.
		var prev sampleCheckpoint
		atomicfile.ReadJSON(filepath.Join(dir, "checkpoints", rundir.PreviousName(sampleCheckpointName)), &prev)
		want := map[string]bool{}
		for _, c := range slices.Concat(ck.Chunks, prev.Chunks) {
			want[c.File] = true
		}
		files, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "sample-*.gob"))
		if len(files) != len(want) {
			t.Errorf("%d chunk files for %d chunks of the last two checkpoints", len(files), len(want))
		}
		return len(ck.Chunks)
	}
	ref := map[int]map[string]any{}
	for _, n := range []int{33, 64} {
		dir := filepath.Join(tmp, fmt.Sprint("fresh", n))
		mpitest.Run(t, 1, func(c mpi.Comm) error { _, err := run(c, text(dir, n, "[1, 1]")); return err })
		ref[n] = summary(dir)
	}
	dir := filepath.Join(tmp, "reused")
	steps := []struct {
		n, ranks, chunks int
		want             string
	}{
		{64, 1, 4, ""}, // 4 chunks of 16
		{33, 2, 1, "resumed      with 33 proposals"}, // a prefix, rewritten as one chunk
		{64, 2, 3, "resumed      with 33 proposals"}, // 2 more chunks (16 and 15)
	}
	for _, s := range steps {
		var out string
		mpitest.Run(t, s.ranks, func(c mpi.Comm) error {
			o, err := run(c, text(dir, s.n, "[1, 1]"))
			if c.Rank() == 0 {
				out = o
			}
			return err
		})
		if !strings.Contains(out, s.want) {
			t.Errorf("n = %d on %d ranks: output lacks %q:\n%s", s.n, s.ranks, s.want, out)
		}
		if got := chunks(dir); got != s.chunks {
			t.Errorf("n = %d: %d chunks, want %d", s.n, got, s.chunks)
		}
		if got := summary(dir); !reflect.DeepEqual(got, ref[s.n]) {
			t.Errorf("n = %d on %d ranks: the estimates differ from one fresh run:\n%v\n%v", s.n, s.ranks, got, ref[s.n])
		}
	}
}

// TestSU3MarginalDefault: string flows start with the marginal layers by
// default (layer 0 maps every row: no frozen plaquette), a plaquette flow
// takes none, even with the key set (a written-out run file carries every
// key).
func TestSU3MarginalDefault(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		su3Text := func(extra string) string {
			text := strings.Replace(fmt.Sprintf(base, t.TempDir(), "[1, 1]", 0.0, 3), "[lattice]\ndims = [4, 4]", "[lattice]\ndims = [4, 4]\ngroup = \"su3\"", 1)
			return strings.Replace(text, "fermions = \"exact\"", extra, 1)
		}
		build := func(text string) (*model, error) {
			cfg, err := config.Parse("test.toml", []byte(text))
			if err != nil {
				return nil, err
			}
			lat, err := decomp.NewLattice(cfg.Lattice.Dims, cfg.Parallel.Grid.Dims, false)
			if err != nil {
				return nil, err
			}
			ly, err := lat.Layout(0)
			if err != nil {
				return nil, err
			}
			return newModel(driver.Env{World: c, Domain: c, Replica: c, Layout: ly, Config: cfg, Out: io.Discard})
		}
		for _, tc := range []struct {
			extra    string
			marginal bool
		}{
			{"", true},
			{"su3_marginal = false", false},
			{"su3_coupling = \"plaquette\"", false},
			{"su3_coupling = \"plaquette\"\nsu3_marginal = true", false},
		} {
			m, err := build(su3Text(tc.extra))
			if err != nil {
				return fmt.Errorf("%q: %v", tc.extra, err)
			}
			roles, err := m.flow.(*flow.SU3).LayerRoles(0)
			bridge := false
			for _, p := range m.flow.Params() {
				bridge = bridge || p.Name == "gauge1/bridge"
			}
			m.close()
			if bridge != tc.marginal {
				return fmt.Errorf("%q: bridge parameters of the marginal column layer: %v, want %v (su3_bridge defaults to 3)", tc.extra, bridge, tc.marginal)
			}
			if err != nil {
				return err
			}
			frozen := 0
			for _, r := range roles {
				if r == coupling.Frozen {
					frozen++
				}
			}
			if got := frozen == 0; got != tc.marginal {
				return fmt.Errorf("%q: layer 0 leaves %d of %d plaquettes frozen; marginal layers wanted: %v", tc.extra, frozen, len(roles), tc.marginal)
			}
		}
		// Staged training needs the marginal layers.
		if _, err := build(strings.Replace(su3Text("su3_coupling = \"plaquette\""), "[train]", "[train]\nmarginal_first = 5", 1)); err == nil || !strings.Contains(err.Error(), "train.marginal_first") {
			return fmt.Errorf("marginal_first on a plaquette flow: %v", err)
		}
		m, err := build(strings.Replace(su3Text(""), "[train]", "[train]\nmarginal_first = 5", 1))
		if err != nil {
			return err
		}
		m.close()
		return nil
	})
}
