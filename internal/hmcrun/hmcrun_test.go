package hmcrun

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/internal/driver"
	"pfmpi/internal/mpitest"
	"pfmpi/internal/rundir"
	"pfmpi/mpi"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

const base = `
[run]
seed = 7
output = "%s"
[lattice]
dims = [8, 8]
group = "u1"
[parallel]
grid = %s
[action]
beta = 2.0
kappa = 0.22
precondition = "eo"
hasenbusch = [0.1]
[hmc]
thermalize = 2
trajectories = %d
tau = 0.5
steps = 3
inner_steps = [2]
checkpoint_every = 5
reverse_every = 4
measure_every = 2
save_every = 5
`

// runPhase runs the [hmc] phase of text on the ranks of world; every rank
// returns the same error.
func runPhase(world mpi.Comm, text string) (string, error) {
	var out bytes.Buffer
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		return "", err
	}
	lat, err := decomp.NewLattice(cfg.Lattice.Dims, cfg.Parallel.Grid.Dims, true)
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
	err = Run(driver.Env{World: world, Domain: domain, Replica: replica, Layout: ly, Config: cfg, Dir: dir, Out: &out})
	return out.String(), errors.Join(err, dir.Close())
}

// onRoot runs fn on rank 0 and gives its error to every rank.
func onRoot(c mpi.Comm, fn func() error) error {
	var err error
	if c.Rank() == 0 {
		err = fn()
	}
	return mpi.RootError(c, err)
}

// records reads metrics.jsonl without the wall-clock times.
func records(dir string) ([]map[string]any, error) {
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
		delete(r, "seconds")
		out = append(out, r)
	}
	return out, sc.Err()
}

// copyDir replaces the files of to by those of from.
func copyDir(from, to string) error {
	os.RemoveAll(to)
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// TestResumeAfterCrash interrupts a run between checkpoints and resumes it:
// the log and the chain must equal those of an uninterrupted run bit for bit.
func TestResumeAfterCrash(t *testing.T) {
	mpitest.RunDir(t, 2, func(c mpi.Comm, tmp string) error {
		straight := filepath.Join(tmp, "straight")
		if _, err := runPhase(c, fmt.Sprintf(base, straight, "[2, 1]", 18)); err != nil {
			return err
		}
		broken := filepath.Join(tmp, "broken")
		// Up to the checkpoint after trajectory 10 …
		if _, err := runPhase(c, fmt.Sprintf(base, broken, "[2, 1]", 8)); err != nil {
			return err
		}
		saved := filepath.Join(tmp, "saved-checkpoints")
		if err := onRoot(c, func() error { return copyDir(filepath.Join(broken, "checkpoints"), saved) }); err != nil {
			return err
		}
		// … then on to 15, after which the checkpoint is "lost": the log has
		// records beyond the checkpoint the resumed run starts from.
		if _, err := runPhase(c, fmt.Sprintf(base, broken, "[2, 1]", 13)); err != nil {
			return err
		}
		if err := onRoot(c, func() error { return copyDir(saved, filepath.Join(broken, "checkpoints")) }); err != nil {
			return err
		}
		out, err := runPhase(c, fmt.Sprintf(base, broken, "[2, 1]", 18))
		if err != nil {
			return err
		}
		err = onRoot(c, func() error {
			if !strings.Contains(out, "resumed      at trajectory 10") {
				return fmt.Errorf("the run did not resume from trajectory 10:\n%s", out)
			}
			a, err1 := records(straight)
			b, err2 := records(broken)
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			if len(a) != 20 || !reflect.DeepEqual(a, b) {
				return fmt.Errorf("resumed log differs from the uninterrupted one (%d and %d records)", len(a), len(b))
			}
			for _, name := range []string{"checkpoints/hmc-r0-t0000020.pfg", "configs/hmc-r0-000006.pfg", "configs/hmc-r0-000016.pfg"} {
				x, err1 := os.ReadFile(filepath.Join(straight, name))
				y, err2 := os.ReadFile(filepath.Join(broken, name))
				if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
					return fmt.Errorf("%s differs between the runs (%v, %v)", name, err1, err2)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Resuming on another process grid continues the same chain.
		if _, err := runPhase(c, fmt.Sprintf(base, broken, "[1, 2]", 20)); err != nil {
			return err
		}
		return onRoot(c, func() error {
			r, err := records(broken)
			if err == nil && len(r) != 22 {
				err = fmt.Errorf("after extending to 20 trajectories the log has %d records, want 22", len(r))
			}
			return err
		})
	})
}

// TestReplicasAndSummary runs two replicas and checks the log and every key
// of summary.json.
func TestReplicasAndSummary(t *testing.T) {
	mpitest.RunDir(t, 2, func(c mpi.Comm, tmp string) error {
		dir := filepath.Join(tmp, "replicas")
		out, err := runPhase(c, fmt.Sprintf(base, dir, "[1, 1]", 12))
		if err != nil {
			return err
		}
		return onRoot(c, func() error { return checkReplicas(dir, out) })
	})
}

func checkReplicas(dir, out string) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.Contains(out, "replicas     2 independent chains") || !strings.Contains(out, "hmc summary") {
		bad("output:\n%s", out)
	}
	recs, err := records(dir)
	if err != nil {
		return err
	}
	if len(recs) != 2*14 {
		return fmt.Errorf("%d records, want 28", len(recs))
	}
	plaq := map[float64]map[float64]float64{} // replica → step → plaquette
	for _, r := range recs {
		rep, step := r["replica"].(float64), r["step"].(float64)
		if plaq[rep] == nil {
			plaq[rep] = map[float64]float64{}
		}
		plaq[rep][step] = r["plaquette"].(float64)
		if math.Mod(step+1, 4) == 0 && r["reversibility_link"] == nil {
			bad("trajectory %v has no reversibility check", step)
		}
		if rl, ok := r["reversibility_link"].(float64); ok && rl > 1e-9 {
			bad("trajectory %v: reversibility %g", step, rl)
		}
	}
	if len(plaq) != 2 || plaq[0][5] == plaq[1][5] {
		bad("replicas are not independent chains: %v", plaq)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return err
	}
	var sum map[string]json.RawMessage
	if err := json.Unmarshal(b, &sum); err != nil {
		return err
	}
	for _, k := range []string{"plaquette", "topological_susceptibility", "acceptance", "exp_minus_delta_h",
		"polyakov_loop", "pion_mass", "condition_number_mean", "seconds_per_trajectory"} {
		var e struct{ Value, Error *float64 }
		if err := json.Unmarshal(sum[k], &e); err != nil || e.Value == nil || e.Error == nil {
			bad("summary.json %s = %s: want {value, error}", k, sum[k])
		}
	}
	var tau map[string]struct{ Value, Error float64 }
	if err := json.Unmarshal(sum["tau_int"], &tau); err != nil || tau["plaquette"].Value <= 0 || tau["topological_charge"].Value <= 0 {
		bad("tau_int = %s", sum["tau_int"])
	}
	var byKernel map[string]struct{ Value float64 }
	json.Unmarshal(sum["condition_number_mean_by_kernel"], &byKernel)
	for _, k := range []string{"DD†", "DscDsc†", "pf0", "pf1"} {
		if byKernel[k].Value < 1 {
			bad("condition number of %s: %v", k, byKernel[k])
		}
	}
	// D_sc is better conditioned than D (Eq. 34: 1 + O(κ²)).
	if byKernel["DscDsc†"].Value >= byKernel["DD†"].Value {
		bad("cond(DscDsc†) = %g ≥ cond(DD†) = %g", byKernel["DscDsc†"].Value, byKernel["DD†"].Value)
	}
	if _, ok := sum["hmc"]; !ok {
		bad("summary.json has no hmc object")
	}
	return errors.Join(errs...)
}

func TestStartAndRefusals(t *testing.T) {
	mpitest.RunDir(t, 1, func(c mpi.Comm, tmp string) error {
		first := filepath.Join(tmp, "first")
		if _, err := runPhase(c, fmt.Sprintf(base, first, "[1, 1]", 5)); err != nil {
			return err
		}
		// Start a new run from a configuration the first one saved.
		start := filepath.Join(first, "configs", "hmc-r0-000006.pfg")
		text := fmt.Sprintf(base, filepath.Join(tmp, "second"), "[1, 1]", 3) + fmt.Sprintf("start = %q\n", start)
		if _, err := runPhase(c, text); err != nil {
			return err
		}
		text = fmt.Sprintf(base, filepath.Join(tmp, "third"), "[1, 1]", 3) + "start = \"missing.pfg\"\n"
		if _, err := runPhase(c, text); err == nil || !strings.Contains(err.Error(), "hmc.start") {
			return fmt.Errorf("missing start file: %v", err)
		}
		// A different ensemble in the same directory is refused, naming the key.
		other := strings.Replace(fmt.Sprintf(base, first, "[1, 1]", 5), "beta = 2.0", "beta = 2.5", 1)
		if _, err := runPhase(c, other); err == nil || !strings.Contains(err.Error(), "action.beta") {
			return fmt.Errorf("changed beta: %v", err)
		}
		never := strings.Replace(fmt.Sprintf(base, first, "[1, 1]", 5), "seed = 7", "seed = 7\nresume = \"never\"", 1)
		if _, err := runPhase(c, never); err == nil || !strings.Contains(err.Error(), "run.resume") {
			return fmt.Errorf("resume = never: %v", err)
		}
		require := strings.Replace(fmt.Sprintf(base, filepath.Join(tmp, "empty"), "[1, 1]", 5), "seed = 7", "seed = 7\nresume = \"require\"", 1)
		if _, err := runPhase(c, require); err == nil || !strings.Contains(err.Error(), "run.resume") {
			return fmt.Errorf("resume = require without a run: %v", err)
		}
		return nil
	})
}

// TestReplicasTimesDomains runs the phase on 1, 2 and 4 in-process ranks in
// every split into replicas × process grid: the chain of replica r is the
// same whatever the split (its randomness is keyed by the seed and r, and
// the domain decomposition changes only the order of global sums), so its
// accept/reject history agrees exactly and its observables to rounding.
func TestReplicasTimesDomains(t *testing.T) {
	type chain map[float64][]float64 // step → ΔH, accepted, plaquette
	type split struct {
		ranks int
		grid  string
	}
	splits := []split{{1, "[1, 1]"}, {2, "[2, 1]"}, {2, "[1, 2]"}, {2, "[1, 1]"}, {4, "[2, 2]"}, {4, "[2, 1]"}, {4, "[1, 1]"}}
	if testing.Short() { // under mpirun in CI: a domain split, and replicas × domains
		splits = []split{{1, "[1, 1]"}, {2, "[1, 2]"}, {4, "[2, 1]"}}
	}
	var ref []chain // per replica, from the first split that ran it
	sawFour := false
	for _, s := range splits {
		var got []chain
		mpitest.RunDir(t, s.ranks, func(c mpi.Comm, tmp string) error {
			dir := filepath.Join(tmp, "split")
			if _, err := runPhase(c, fmt.Sprintf(base, dir, s.grid, 6)); err != nil {
				return err
			}
			return onRoot(c, func() error {
				recs, err := records(dir)
				if err != nil {
					return err
				}
				for _, r := range recs {
					rep := int(r["replica"].(float64))
					for len(got) <= rep {
						got = append(got, chain{})
					}
					acc := 0.0
					if r["accepted"].(bool) {
						acc = 1
					}
					got[rep][r["step"].(float64)] = []float64{r["delta_h"].(float64), acc, r["plaquette"].(float64)}
				}
				return nil
			})
		})
		// Under mpirun the process that gathered a split's records is
		// the one that compares them.
		if s.ranks == 4 && s.grid == "[1, 1]" && len(got) == 4 {
			sawFour = true
		}
		for rep, ch := range got {
			if rep >= len(ref) {
				ref = append(ref, ch)
				continue
			}
			worst := 0.0
			for step, want := range ref[rep] {
				have := ch[step]
				if have == nil || have[1] != want[1] {
					t.Fatalf("%d ranks, grid %s: replica %d trajectory %v: %v, want %v", s.ranks, s.grid, rep, step, have, want)
				}
				worst = max(worst, math.Abs(have[0]-want[0]), math.Abs(have[2]-want[2]))
			}
			t.Logf("%d ranks, grid %s: replica %d agrees to %.2g", s.ranks, s.grid, rep, worst)
			if worst > 1e-9 {
				t.Errorf("%d ranks, grid %s: replica %d differs by %g", s.ranks, s.grid, rep, worst)
			}
		}
	}
	if mpi.Backend == "in-process" && !testing.Short() && !sawFour {
		t.Errorf("the split into 4 replicas did not report 4 chains (%d replicas compared)", len(ref))
	}
}
