package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"pfmpi/mpi"
)

// StopFile is the name of the file in the output directory that asks a
// running job to checkpoint and end (`touch OUTPUT/STOP`).
const StopFile = "STOP"

// Limits tell a run when it must end early. The zero value never stops it.
type Limits struct {
	// Deadline is the end of the allocation (zero: none). A phase stops
	// with a checkpoint when less than Margin plus twice its longest step
	// (including the checkpoint write) is left.
	Deadline time.Time
	Margin   time.Duration
	// Signalled reports a signal asking this process to stop (SIGTERM,
	// SIGUSR1 from the batch system); nil: none.
	Signalled *atomic.Bool
}

// Reason says why a run stopped early.
type Reason int

// The reasons, in priority order (a STOP file wins).
const (
	NoStop Reason = iota
	WallTime
	Signal
	StopRequested
)

func (r Reason) String() string {
	switch r {
	case WallTime:
		return "the wall-time limit is near"
	case Signal:
		return "a signal asked it to stop"
	case StopRequested:
		return "the STOP file asked it to stop"
	}
	return "not stopped"
}

// Stopped is the error a phase returns when it ended early with a
// checkpoint: running the same command again continues the run.
type Stopped struct {
	Reason Reason
	Phase  string
	Done   int // steps, proposals or trajectories completed and checkpointed
	Total  int
}

func (e *Stopped) Error() string {
	return fmt.Sprintf("stopped in the %s phase after %d of %d, with a checkpoint, because %s; run the same command again (resume = \"auto\") to continue",
		e.Phase, e.Done, e.Total, e.Reason)
}

// IsStopped reports whether err is a clean early stop, and returns it.
func IsStopped(err error) (*Stopped, bool) {
	var s *Stopped
	ok := errors.As(err, &s)
	return s, ok
}

// SetLimits sets when the run must end early (every rank, before a phase).
func (d *Dir) SetLimits(l Limits) { d.limits = l }

// StopReason decides, collectively, whether a phase must stop now: the
// longest unit of work so far (a step and its checkpoint) sets how close to
// the deadline the next one may start. World rank 0 looks at the STOP file
// and the clock; a signal on any rank counts. Every rank gets the same
// answer.
func (d *Dir) StopReason(longest time.Duration) Reason {
	local := NoStop
	if d.limits.Signalled != nil && d.limits.Signalled.Load() {
		local = Signal
	}
	if d.world.Rank() == 0 {
		_, err := os.Stat(filepath.Join(d.path, StopFile))
		local = max(local, decide(time.Now(), d.limits, longest, err == nil))
	}
	return Reason(mpi.MaxFloat64(d.world, float64(local)))
}

// decide is rank 0's verdict.
func decide(now time.Time, l Limits, longest time.Duration, stopFile bool) Reason {
	switch {
	case stopFile:
		return StopRequested
	case !l.Deadline.IsZero() && l.Deadline.Sub(now) < l.Margin+2*longest:
		return WallTime
	}
	return NoStop
}

// Stop ends a phase early after its checkpoint was written: it removes an
// honoured STOP file (so that the next run continues) and returns the
// Stopped error (collective).
func (d *Dir) Stop(r Reason, phase string, done, total int) error {
	var err error
	if d.world.Rank() == 0 && r == StopRequested {
		if err = os.Remove(filepath.Join(d.path, StopFile)); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err := mpi.RootError(d.world, err); err != nil {
		return err
	}
	return &Stopped{Reason: r, Phase: phase, Done: done, Total: total}
}

// LongestStep is the longest step a previous run of phase logged in
// metrics.jsonl ("seconds"), so that a resumed run judges its first step
// against the deadline too (collective; 0 without records).
func (d *Dir) LongestStep(phase string) (time.Duration, error) {
	longest := 0.0
	var err error
	if d.world.Rank() == 0 {
		var raws []json.RawMessage
		raws, err = d.Records(phase)
		for _, r := range raws {
			var s struct {
				Seconds float64 `json:"seconds"`
			}
			if e := json.Unmarshal(r, &s); e == nil {
				longest = max(longest, s.Seconds)
			}
		}
	}
	if err := mpi.RootError(d.world, err); err != nil {
		return 0, err
	}
	longest = mpi.MaxFloat64(d.world, longest)
	return time.Duration(longest * float64(time.Second)), nil
}

// Steps is the step loop every phase runs: steps next, …, total−1 of phase,
// each by step(n). Before a step it asks StopReason (the longest step so far,
// with its checkpoint, from this run or the metrics of an earlier one) and,
// when the run must stop, saves the progress not yet saved (save(n): the
// state before step n) and returns the Stopped error. After step n it saves
// when n+1 is a multiple of every (every ≤ 0: only at the end) and after the
// last step. Collective.
func (d *Dir) Steps(phase string, next, total, every int, step func(n int) error, save func(n int) error) error {
	longest, err := d.LongestStep(phase)
	if err != nil {
		return err
	}
	saved := next
	for n := next; n < total; n++ {
		if r := d.StopReason(longest); r != NoStop {
			if n > saved {
				if err := save(n); err != nil {
					return err
				}
			}
			return d.Stop(r, phase, n, total)
		}
		t0 := time.Now()
		if err := step(n); err != nil {
			return err
		}
		if (every > 0 && (n+1)%every == 0) || n+1 == total {
			if err := save(n + 1); err != nil {
				return err
			}
			saved = n + 1
		}
		longest = max(longest, time.Since(t0))
	}
	return nil
}
