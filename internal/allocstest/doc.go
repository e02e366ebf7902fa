// Package allocstest counts the heap allocations of code that runs on
// several goroutines.
//
// testing.AllocsPerRun counts every allocation of the process, including
// those the Go runtime makes for itself and which do not recur: a new OS
// thread when a goroutine locked to its thread (the MPI thread) yields while
// the machine is loaded, or the goroutine wait records (sudogs) that a
// parked goroutine takes from caches every garbage collection empties. A
// worker pool that parks its goroutines therefore shows an occasional
// allocation that is not its own. [PerRun] keeps the collector off while it
// measures and reports the smallest of a few rounds: an allocation the
// measured code makes on every run shows in every round.
package allocstest
