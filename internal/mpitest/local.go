//go:build !mpi

package mpitest

import (
	"os"
	"testing"

	"pfmpi/mpi"
)

// Main runs the tests. Without MPI there is nothing to set up.
func Main(m *testing.M) { os.Exit(m.Run()) }

// Run runs body on n in-process ranks and fails tb if any rank fails.
func Run(tb testing.TB, n int, body func(c mpi.Comm) error) {
	tb.Helper()
	if err := mpi.Run(n, body); err != nil {
		tb.Fatalf("%d ranks: %v", n, err)
	}
}

// TempDir returns a temporary directory for the test, removed when it ends.
func TempDir(tb testing.TB) string { return tb.TempDir() }

// RunDir is Run with a temporary directory that the ranks of one group
// share and no other group sees (under mpirun, groups run side by side).
func RunDir(tb testing.TB, n int, body func(c mpi.Comm, dir string) error) {
	tb.Helper()
	dir := tb.TempDir()
	Run(tb, n, func(c mpi.Comm) error { return body(c, dir) })
}
