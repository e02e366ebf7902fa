//go:build mpi

package mpitest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"pfmpi/mpi"
)

// jobs carries distributed test bodies to the main goroutine, the only one
// allowed to call MPI.
var (
	jobs  = make(chan func())
	world mpi.Comm
)

// Main initialises MPI on the main goroutine (OS thread locked), runs the tests
// on another goroutine, executes their distributed bodies here, and finalises.
func Main(m *testing.M) {
	runtime.LockOSThread()
	w, err := mpi.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	world = w
	done := make(chan int)
	go func() { done <- m.Run() }()
	for {
		select {
		case f := <-jobs:
			f()
		case code := <-done:
			if err := mpi.Finalize(); err != nil && code == 0 {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
			os.Exit(code)
		}
	}
}

// Run runs body on every complete group of n ranks of the MPI world and fails
// tb on every process if any rank's body fails. It skips tb when the world has fewer than n
// ranks. A panic in a body aborts the whole job, since the other ranks could
// not continue.
func Run(tb testing.TB, n int, body func(c mpi.Comm) error) {
	tb.Helper()
	size := world.Size()
	if n > size {
		tb.Skipf("needs %d ranks; mpirun started %d", n, size)
	}
	var err error
	finished := make(chan struct{})
	jobs <- func() {
		defer close(finished)
		defer func() {
			if p := recover(); p != nil {
				fmt.Fprintf(os.Stderr, "rank %d panicked: %v\n%s", world.Rank(), p, debug.Stack())
				world.Abort(3)
			}
		}()
		color := -1
		if world.Rank() < size/n*n {
			color = world.Rank() / n
		}
		sub := world.Split(color, world.Rank())
		if sub != nil {
			err = body(sub)
			if err != nil {
				err = fmt.Errorf("rank %d of %d (world rank %d of %d): %w", sub.Rank(), n, world.Rank(), size, err)
			}
			sub.Free()
		}
		// Every process leaves the test together: a failure on one rank
		// fails the test on all, so no process skips collective calls
		// (the communicator splits of later Run calls) that the others make.
		failed := []float64{0}
		if err != nil {
			failed[0] = 1
		}
		world.Allreduce(mpi.Max, failed)
		if err == nil && failed[0] != 0 {
			err = fmt.Errorf("world rank %d of %d: another rank failed (see its output)", world.Rank(), size)
		}
	}
	<-finished
	if err != nil {
		tb.Fatal(err)
	}
}

// TempDir returns a temporary directory shared by every process of the MPI
// job (world rank 0 creates it and broadcasts its path; the processes run on
// one machine in tests) and removed by rank 0 when the test ends. Every
// process must call it at the same point of the test, and the removal waits
// until every process has finished the test.
func TempDir(tb testing.TB) string {
	tb.Helper()
	var dir string
	done := make(chan struct{})
	jobs <- func() {
		defer close(done)
		var path []byte
		if world.Rank() == 0 {
			path = []byte(tb.TempDir())
		}
		n := []float64{float64(len(path))}
		world.Bcast(0, mpi.Bytes(n))
		if world.Rank() != 0 {
			path = make([]byte, int(n[0]))
		}
		world.Bcast(0, path)
		dir = string(path)
	}
	<-done
	// Rank 0 removes the directory when its test ends, which may be before
	// other processes finish theirs: wait for all of them first (cleanups
	// run last-registered first, so this precedes the removal).
	tb.Cleanup(func() {
		barrier := make(chan struct{})
		jobs <- func() {
			defer close(barrier)
			world.Barrier()
		}
		<-barrier
	})
	return dir
}

// RunDir is Run with a temporary directory that the ranks of one group
// share and no other group sees (the groups of a world run side by side).
func RunDir(tb testing.TB, n int, body func(c mpi.Comm, dir string) error) {
	tb.Helper()
	root := TempDir(tb)
	Run(tb, n, func(c mpi.Comm) error {
		dir := filepath.Join(root, fmt.Sprintf("group%d", world.Rank()/n))
		var err error
		if c.Rank() == 0 {
			err = os.MkdirAll(dir, 0o755)
		}
		if err = mpi.RootError(c, err); err != nil {
			return err
		}
		return body(c, dir)
	})
}
