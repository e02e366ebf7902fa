package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"pfmpi/config"
	"pfmpi/internal/atomicfile"
	"pfmpi/mpi"
)

// Changeable lists the keys that may differ between a run and its resumption:
// they do not change the Markov chains or the models.
var Changeable = []string{
	"run.resume", "run.output", "parallel.grid",
	"hmc.trajectories", "hmc.save_every", "hmc.checkpoint_every", "hmc.reverse_every",
	"hmc.measure_every", "hmc.measure", "hmc.pion_fit",
	"bench.ops", "bench.repeats",
	"train.steps", "train.checkpoint_every", "train.ess_every", "train.ess_batch",
	"sample.n", "sample.npf", "sample.metropolis", "sample.save_every", "sample.batch",
	"sample.checkpoint_every",
}

// Dir is an open output directory.
type Dir struct {
	path    string
	world   mpi.Comm
	resumed bool
	metrics *os.File // rank 0
	buf     *bufio.Writer
	lock    *os.File // rank 0: held while the run lasts
	limits  Limits
}

// Open prepares cfg's output directory for a run (collective over world).
func Open(world mpi.Comm, cfg *config.Config) (*Dir, error) {
	d := &Dir{path: cfg.Run.Output, world: world}
	var err error
	if world.Rank() == 0 {
		err = d.open(cfg)
	}
	if err = mpi.RootError(world, err); err != nil {
		if d.metrics != nil {
			d.metrics.Close()
		}
		if d.lock != nil {
			d.lock.Close()
		}
		return nil, err
	}
	flag := []byte{0}
	if d.resumed {
		flag[0] = 1
	}
	world.Bcast(0, flag)
	d.resumed = flag[0] == 1
	return d, nil
}

func (d *Dir) open(cfg *config.Config) error {
	var resolved bytes.Buffer
	if err := cfg.WriteTOML(&resolved); err != nil {
		return err
	}
	old, err := os.ReadFile(filepath.Join(d.path, "config.toml"))
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	switch {
	case exists && cfg.Run.Resume == "never":
		return cfg.Errorf("run.resume", "%s already holds a run and resume = \"never\"; choose another run.output, remove the directory, or set resume = \"auto\"", d.path)
	case !exists && cfg.Run.Resume == "require":
		return cfg.Errorf("run.resume", "resume = \"require\" but %s holds no run (no config.toml)", d.path)
	case exists:
		diff, err := differences(old, resolved.Bytes())
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(d.path, "config.toml"), err)
		}
		if len(diff) > 0 {
			return cfg.Errorf("run.output", "%s holds a different run: %s differ from its config.toml; resume it with the same values, or choose another run.output",
				d.path, strings.Join(diff, ", "))
		}
		d.resumed = true
	}
	if err := os.MkdirAll(filepath.Join(d.path, "checkpoints"), 0o755); err != nil {
		return err
	}
	if d.lock, err = lock(d.path); err != nil {
		return err
	}
	if d.resumed {
		if err := repair(d.path); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(d.path, "config.toml"), 0o644, func(w io.Writer) error {
		_, err := w.Write(resolved.Bytes())
		return err
	}); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.path, "metrics.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.metrics, d.buf = f, bufio.NewWriter(f)
	return nil
}

// repair undoes what a killed run may have left: a last metrics record
// cut mid-write (the log is cut back to its last complete line; records
// after the last checkpoint are dropped on resumption anyway) and the
// temporary files of writes that never reached their rename.
func repair(dir string) error {
	path := filepath.Join(dir, "metrics.jsonl")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		if err := os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1)); err != nil {
			return err
		}
	}
	for _, pattern := range []string{".*.tmp-*", filepath.Join("checkpoints", ".*.tmp-*"), filepath.Join("configs", ".*.tmp-*")} {
		stale, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range stale {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// differences lists the keys of two resolved run files that differ and may
// not (sections present in only one of them are phases switched on or off).
// A key missing from a (the stored file was written before the key
// existed) is read as its default, so that a newer pfmpi resumes older runs
// whose new keys keep their defaults.
func differences(a, b []byte) ([]string, error) {
	var ma, mb, md map[string]any
	if _, err := toml.Decode(string(a), &ma); err != nil {
		return nil, err
	}
	if _, err := toml.Decode(string(b), &mb); err != nil {
		return nil, err
	}
	if _, err := toml.Decode(config.Defaults(), &md); err != nil {
		return nil, err
	}
	var diff []string
	for sec, va := range ma {
		sa, ok1 := va.(map[string]any)
		sb, ok2 := mb[sec].(map[string]any)
		if !ok1 || !ok2 {
			continue
		}
		if def, ok := md[sec].(map[string]any); ok {
			sa = maps.Clone(sa)
			for k, v := range def {
				if _, present := sa[k]; !present {
					sa[k] = v
				}
			}
		}
		keys := map[string]bool{}
		for k := range sa {
			keys[k] = true
		}
		for k := range sb {
			keys[k] = true
		}
		for k := range keys {
			name := sec + "." + k
			if slices.Contains(Changeable, name) || reflect.DeepEqual(sa[k], sb[k]) {
				continue
			}
			diff = append(diff, fmt.Sprintf("%s (%v, now %v)", name, show(sa[k]), show(sb[k])))
		}
	}
	sort.Strings(diff)
	return diff, nil
}

func show(v any) string {
	if v == nil {
		return "absent"
	}
	return fmt.Sprint(v)
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Resumed reports whether the directory held this run already.
func (d *Dir) Resumed() bool { return d.resumed }

// Checkpoints is the checkpoint directory.
func (d *Dir) Checkpoints() string { return filepath.Join(d.path, "checkpoints") }

// Log appends one record to metrics.jsonl (rank 0; other ranks ignore it).
// Records are buffered; Sync makes them durable.
func (d *Dir) Log(record any) error {
	if d.world.Rank() != 0 {
		return nil
	}
	b, err := json.Marshal(record)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = d.buf.Write(b)
	return err
}

// Sync flushes metrics.jsonl to disk (rank 0).
func (d *Dir) Sync() error {
	if d.world.Rank() != 0 {
		return nil
	}
	if err := d.buf.Flush(); err != nil {
		return err
	}
	return d.metrics.Sync()
}

// Close flushes and closes the log.
func (d *Dir) Close() error {
	if d.world.Rank() != 0 || d.metrics == nil {
		return nil
	}
	err := d.Sync()
	err = errors.Join(err, d.metrics.Close())
	if d.lock != nil {
		err = errors.Join(err, d.lock.Close())
	}
	return err
}

// Step is the part of a metrics record that Records and Truncate read.
type Step struct {
	Phase string `json:"phase"`
	Step  int    `json:"step"`
}

// Records returns the raw records of phase in metrics.jsonl (rank 0; nil
// elsewhere).
func (d *Dir) Records(phase string) ([]json.RawMessage, error) {
	if d.world.Rank() != 0 {
		return nil, nil
	}
	if err := d.buf.Flush(); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	err := d.scan(func(line []byte, s Step) error {
		if s.Phase == phase {
			out = append(out, json.RawMessage(slices.Clone(line)))
		}
		return nil
	})
	return out, err
}

func (d *Dir) scan(fn func(line []byte, s Step) error) error {
	f, err := os.Open(filepath.Join(d.path, "metrics.jsonl"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var s Step
		if err := json.Unmarshal(line, &s); err != nil {
			return fmt.Errorf("%s line %d: %w", f.Name(), n, err)
		}
		if err := fn(line, s); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Truncate removes the records of phase with step ≥ from (they were logged
// after the checkpoint a resumed run continues from) by rewriting the file
// atomically (collective).
func (d *Dir) Truncate(phase string, from int) error {
	var err error
	if d.world.Rank() == 0 {
		err = d.truncate(phase, from)
	}
	return mpi.RootError(d.world, err)
}

func (d *Dir) truncate(phase string, from int) error {
	if err := d.buf.Flush(); err != nil {
		return err
	}
	var keep bytes.Buffer
	dropped := 0
	err := d.scan(func(line []byte, s Step) error {
		if s.Phase == phase && s.Step >= from {
			dropped++
			return nil
		}
		keep.Write(line)
		keep.WriteByte('\n')
		return nil
	})
	if err != nil || dropped == 0 {
		return err
	}
	path := filepath.Join(d.path, "metrics.jsonl")
	d.metrics.Close()
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(keep.Bytes())
		return err
	}); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.metrics = f
	d.buf.Reset(f)
	return nil
}

// Summarize merges a phase's summary (a struct or map that encodes to a
// JSON object; nil: nothing) into summary.json: every key at the top level
// (a later phase overwrites a key an earlier one wrote) and the whole set
// under the phase's name (rank 0; collective).
func (d *Dir) Summarize(phase string, summary any) error {
	var err error
	if d.world.Rank() == 0 {
		err = d.summarize(phase, summary)
	}
	return mpi.RootError(d.world, err)
}

func (d *Dir) summarize(phase string, summary any) error {
	b, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("summary of %s: %w", phase, err)
	}
	var values map[string]any
	if err := json.Unmarshal(b, &values); err != nil {
		return fmt.Errorf("summary of %s is not a JSON object: %w", phase, err)
	}
	path := filepath.Join(d.path, "summary.json")
	sum := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &sum); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for k, v := range values {
		sum[k] = v
	}
	sum[phase] = values
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	})
}
