package rundir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTimeLimit: every form of the -t argument, and Slurm's end of the
// allocation from the environment or squeue.
func TestTimeLimit(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := env(nil)
	for _, c := range []struct {
		arg  string
		want time.Duration
	}{
		{"90m", 90 * time.Minute}, {"1h30m", 90 * time.Minute}, {"45", 45 * time.Minute}, {"45:30", 45*time.Minute + 30*time.Second},
		{"2:00:00", 2 * time.Hour}, {"1-00", 24 * time.Hour}, {"1-02:03", 26*time.Hour + 3*time.Minute},
		{"0-12:00:05", 12*time.Hour + 5*time.Second},
	} {
		got, err := ParseTimeLimit(c.arg, now, none)
		if err != nil || got.Sub(now) != c.want {
			t.Errorf("-t %s: %v, %v; want now + %v", c.arg, got.Sub(now), err, c.want)
		}
	}
	for _, bad := range []string{"-5m", "0", "1:2:3:4", "x", "1-", "0s", "slurm"} {
		if _, err := ParseTimeLimit(bad, now, none); err == nil {
			t.Errorf("-t %s accepted", bad)
		}
	}
	end, err := ParseTimeLimit("slurm", now, env(map[string]string{"SLURM_JOB_END_TIME": "1795953600"}))
	if err != nil || end.Unix() != 1795953600 {
		t.Errorf("-t slurm: %v %v", end, err)
	}
	if _, err := ParseTimeLimit("slurm", now, env(map[string]string{"SLURM_JOB_END_TIME": "soon"})); err == nil {
		t.Error("-t slurm accepted SLURM_JOB_END_TIME=soon")
	}
	// Older Slurm: no SLURM_JOB_END_TIME, ask squeue (a stand-in here);
	// ranks other than 0 do not ask.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "squeue"), []byte("#!/bin/sh\necho 2026-11-29T12:30:00\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	end, err = ParseTimeLimit("slurm", now, env(map[string]string{"SLURM_JOB_ID": "42"}))
	want := time.Date(2026, 11, 29, 12, 30, 0, 0, time.Local)
	if err != nil || !end.Equal(want) {
		t.Errorf("-t slurm via squeue: %v %v, want %v", end, err, want)
	}
	if end, err := ParseTimeLimit("slurm", now, env(map[string]string{"SLURM_JOB_ID": "42", "SLURM_PROCID": "3"})); err != nil || !end.IsZero() {
		t.Errorf("-t slurm on rank 3: %v %v, want no limit", end, err)
	}
}
