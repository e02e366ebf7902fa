package allocstest

import (
	"runtime/debug"
	"testing"
)

// rounds is the number of measurements PerRun takes at most.
const rounds = 4

// PerRun returns the smallest over a few rounds of the average number of
// allocations of f over runs calls (after one warm-up call, as
// testing.AllocsPerRun), with the garbage collector off. It always calls f
// the same number of times, so f may be collective (every rank of a
// communicator measures together).
func PerRun(runs int, f func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	best := testing.AllocsPerRun(runs, f)
	for range rounds - 1 {
		best = min(best, testing.AllocsPerRun(runs, f))
	}
	return best
}
