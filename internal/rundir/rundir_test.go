package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pfmpi/config"
	"pfmpi/mpi"
)

func open(t *testing.T, dir string) (*Dir, error) {
	t.Helper()
	cfg, err := config.Parse("run.toml", []byte("[run]\noutput = \""+dir+"\"\n[lattice]\ndims = [4, 4]\n[action]\nbeta = 1.0\n[train]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var d *Dir
	err = mpi.Run(1, func(c mpi.Comm) error {
		var err error
		d, err = Open(c, cfg)
		return err
	})
	return d, err
}

// A killed run leaves a metrics record cut mid-write and temporary files of
// writes that never reached their rename: resuming repairs both, and the
// log reads again.
func TestResumeRepairsAKilledRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := open(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := d.Log(Step{Phase: "train", Step: i}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"phase":"train","st`) // the kill
	f.Close()
	tmp := filepath.Join(dir, "checkpoints", ".model-0000004.bin.tmp-123")
	os.WriteFile(tmp, []byte("half a model"), 0o644)

	d, err = open(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Resumed() {
		t.Fatal("not resumed")
	}
	recs, err := d.Records("train")
	if err != nil || len(recs) != 3 || !strings.Contains(string(recs[2]), `"step":2`) {
		t.Fatalf("records after the repair: %q, %v", recs, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept: %v", err)
	}
}

func TestStopDecision(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	l := Limits{Deadline: now.Add(10 * time.Minute), Margin: 2 * time.Minute}
	for _, c := range []struct {
		longest  time.Duration
		stopFile bool
		limits   Limits
		want     Reason
	}{
		{time.Minute, false, l, NoStop},       // 10 min left > 2 + 2·1
		{5 * time.Minute, false, l, WallTime}, // 10 < 2 + 2·5
		{4 * time.Minute, true, l, StopRequested},
		{time.Hour, false, Limits{}, NoStop}, // no deadline
	} {
		if got := decide(now, c.limits, c.longest, c.stopFile); got != c.want {
			t.Errorf("longest %v, STOP %v: %v, want %v", c.longest, c.stopFile, got, c.want)
		}
	}
}

// Two runs never write one directory: the second is refused while the
// first holds it, naming the process, and accepted once it has ended.
func TestOneRunPerDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	first, err := open(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, dir); err == nil || !strings.Contains(err.Error(), "in use by another pfmpi run") ||
		!strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second run while the first holds the directory: %v", err)
	}
	first.Close()
	second, err := open(t, dir)
	if err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
	second.Close()
}

// A resumed run knows how long its steps took before: its first step is
// judged against the deadline too.
func TestLongestStep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := open(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, s := range []float64{0.5, 2.25, 1} {
		d.Log(map[string]any{"phase": "train", "step": i, "seconds": s})
	}
	d.Log(map[string]any{"phase": "hmc", "step": 0, "seconds": 9})
	var got, none time.Duration
	err = mpi.Run(1, func(c mpi.Comm) error {
		d.world = c
		var err error
		if got, err = d.LongestStep("train"); err != nil {
			return err
		}
		none, err = d.LongestStep("sample")
		return err
	})
	if err != nil || got != 2250*time.Millisecond || none != 0 {
		t.Errorf("LongestStep: %v and %v (%v), want 2.25s and 0", got, none, err)
	}
}

// A run file stored by an older pfmpi lacks the keys added since: they read
// as their defaults, so the run resumes while they keep them; a real change
// of any key is still refused.
func TestResumeRunFromOlderVersion(t *testing.T) {
	resolved := func(train string) string {
		cfg, err := config.Parse("run.toml", []byte("[run]\noutput = \"x\"\n[lattice]\ndims = [4, 4]\n[action]\nbeta = 1.0\n[train]\n"+train))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := cfg.WriteTOML(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// The stored file of a version without the cosine schedule and init_from.
	var older []string
	for _, line := range strings.Split(resolved(""), "\n") {
		if k := strings.TrimSpace(line); !strings.HasPrefix(k, "lr_schedule") && !strings.HasPrefix(k, "lr_min") && !strings.HasPrefix(k, "init_from") {
			older = append(older, line)
		}
	}
	if len(older) != strings.Count(resolved(""), "\n")+1-3 {
		t.Fatalf("the resolved run file does not hold the three keys:\n%s", resolved(""))
	}
	for _, c := range []struct {
		train string
		want  string // "" when resumable
	}{
		// The key absent from the stored file reads as the default it had
		// when added (step), not today's (cosine): resuming under today's
		// default is refused rather than switching the schedule silently.
		{"", "train.lr_schedule (step, now cosine)"},
		{"lr_schedule = \"step\"\nlr_min = 0.0\n", ""},
		{"lr_schedule = \"cosine\"\n", "train.lr_schedule (step, now cosine)"},
		{"lr_schedule = \"step\"\nlr_min = 1e-5\n", "train.lr_min (0, now 1e-05)"},
		{"lr_schedule = \"step\"\nlr = 0.5\n", "train.lr (0.001, now 0.5)"},
	} {
		diff, err := differences([]byte(strings.Join(older, "\n")), []byte(resolved(c.train)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(diff, ", "); got != c.want {
			t.Errorf("stored file without the new keys, run file %q: differences %q, want %q", c.train, got, c.want)
		}
	}
}

// TestSteps checks the phase loop: the checkpoints it asks for, and a STOP
// file that ends it with the progress saved and the file removed.
func TestSteps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := open(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = mpi.Run(1, func(c mpi.Comm) error {
		d.world = c
		var ran, saved []int
		step := func(n int) error {
			ran = append(ran, n)
			if n == 5 { // a STOP file appears during step 5
				return os.WriteFile(filepath.Join(dir, StopFile), nil, 0o644)
			}
			return nil
		}
		save := func(n int) error { saved = append(saved, n); return nil }
		if err := d.Steps("train", 2, 9, 3, step, save); err == nil {
			return fmt.Errorf("the loop ran through a STOP file")
		} else if s, ok := IsStopped(err); !ok || s.Reason != StopRequested || s.Done != 6 || s.Total != 9 {
			return fmt.Errorf("stopped with %v, want a STOP request after 6 of 9", err)
		}
		if !slices.Equal(ran, []int{2, 3, 4, 5}) || !slices.Equal(saved, []int{3, 6}) {
			return fmt.Errorf("ran %v and saved before steps %v; want 2…5 and 3, 6", ran, saved)
		}
		if _, err := os.Stat(filepath.Join(dir, StopFile)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("the STOP file was not removed: %v", err)
		}
		ran, saved = nil, nil
		if err := d.Steps("train", 6, 9, 0, step, save); err != nil {
			return err
		}
		if !slices.Equal(ran, []int{6, 7, 8}) || !slices.Equal(saved, []int{9}) {
			return fmt.Errorf("resumed: ran %v and saved %v; want 6…8 and 9", ran, saved)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
