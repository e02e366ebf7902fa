package rundir

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ParseTimeLimit turns a wall-time limit (pfmpi run -t) into the deadline of
// the run:
//
//	slurm          the end of the Slurm allocation this job runs in
//	               (SLURM_JOB_END_TIME, else `squeue -j $SLURM_JOB_ID -o %e`)
//	90m, 1h30m     a Go duration from now
//	MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
//	               Slurm's --time formats, from now
//
// The empty string means no limit.
func ParseTimeLimit(s string, now time.Time, getenv func(string) string) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "slurm":
		return slurmEnd(getenv)
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("-t %s: give a positive time", s)
		}
		return now.Add(d), nil
	}
	d, err := slurmDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-t %s: %v; use \"slurm\", a duration such as 90m or 1h30m, or Slurm's HH:MM:SS / D-HH:MM:SS", s, err)
	}
	return now.Add(d), nil
}

// slurmDuration parses Slurm's time formats ("minutes", "minutes:seconds",
// "hours:minutes:seconds", "days-hours", "days-hours:minutes",
// "days-hours:minutes:seconds").
func slurmDuration(s string) (time.Duration, error) {
	days := 0
	rest := s
	hasDays := false
	if i := strings.IndexByte(s, '-'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad days %q", s[:i])
		}
		days, rest, hasDays = n, s[i+1:], true
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return 0, errors.New("too many fields")
	}
	v := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad field %q", p)
		}
		v[i] = n
	}
	var h, m, sec int
	switch {
	case hasDays: // D-HH[:MM[:SS]]
		h = v[0]
		if len(v) > 1 {
			m = v[1]
		}
		if len(v) > 2 {
			sec = v[2]
		}
	case len(v) == 1: // MM
		m = v[0]
	case len(v) == 2: // MM:SS
		m, sec = v[0], v[1]
	default: // HH:MM:SS
		h, m, sec = v[0], v[1], v[2]
	}
	d := time.Duration(((days*24+h)*60+m)*60+sec) * time.Second
	if d <= 0 {
		return 0, errors.New("the time is zero")
	}
	return d, nil
}

// slurmEnd is the end of the current Slurm allocation.
func slurmEnd(getenv func(string) string) (time.Time, error) {
	if e := getenv("SLURM_JOB_END_TIME"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("-t slurm: SLURM_JOB_END_TIME=%q is not a Unix time", e)
		}
		return time.Unix(sec, 0), nil
	}
	id := getenv("SLURM_JOB_ID")
	if r := getenv("SLURM_PROCID"); id != "" && r != "" && r != "0" {
		// Only world rank 0 watches the clock: spare the controller one
		// squeue per rank.
		return time.Time{}, nil
	}
	if id == "" {
		return time.Time{}, errors.New("-t slurm: not inside a Slurm job (SLURM_JOB_ID and SLURM_JOB_END_TIME are unset); give the time instead, e.g. -t 23:30:00")
	}
	out, err := exec.Command("squeue", "-h", "-j", id, "-o", "%e").Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("-t slurm: SLURM_JOB_END_TIME is unset and squeue failed (%v); give the time instead, e.g. -t 23:30:00", err)
	}
	end, err := time.ParseInLocation("2006-01-02T15:04:05", strings.TrimSpace(string(out)), time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("-t slurm: squeue gave the end time %q: %v", strings.TrimSpace(string(out)), err)
	}
	return end, nil
}

// stopSignals are the signals that ask a run to checkpoint and stop: SIGTERM
// (scancel, the end of an allocation), SIGINT (Ctrl-C), SIGUSR1 (Slurm's
// --signal=USR1@SECONDS). A second one ends the process at once.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1}

// WatchSignals sets flag on the first stop signal and restores the default
// action, so that a second one kills the process; the returned function
// stops watching.
func WatchSignals(flag *atomic.Bool) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			flag.Store(true)
			signal.Reset(stopSignals...)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
