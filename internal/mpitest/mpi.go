//go:build mpi

package mpitest

import (
	"fmt"
	"os"
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
// tb if this rank's body fails. It skips tb when the world has fewer than n
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
		if sub == nil {
			return
		}
		err = body(sub)
		if err != nil {
			err = fmt.Errorf("rank %d of %d (world rank %d of %d): %w", sub.Rank(), n, world.Rank(), size, err)
		}
		sub.Free()
	}
	<-finished
	if err != nil {
		tb.Fatal(err)
	}
}
