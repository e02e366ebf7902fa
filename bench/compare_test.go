package bench

import (
	"os/exec"
	"path/filepath"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

// TestCompareWithC builds the C reference of bench/cref and checks, on a
// small lattice of each kind, that it computes the same operator as
// package dslash (Compare fails beyond 1e-12 relative): the two share no
// code, only the conventions of dslash/doc.go.
func TestCompareWithC(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	bin := filepath.Join(t.TempDir(), "wilson-cref")
	if out, err := exec.Command(cc, "-O2", "-std=c11", "-o", bin, "cref/wilson.c").CombinedOutput(); err != nil {
		t.Fatalf("building the C reference: %v\n%s", err, out)
	}
	setups := append(CompareVolumes(true), Setup{Dims: []int{4, 6, 2, 4}, Nc: 3, Kappa: 0.13})
	mpitest.Run(t, 1, func(comm mpi.Comm) error {
		n := 0
		err := Compare(comm, bin, setups, 1, func(r CompareRow) {
			n++
			if r.CNs <= 0 || r.GoNs <= 0 || r.MaxDiff > 1e-12 {
				t.Errorf("%v", r)
			}
		})
		if err == nil && n != len(setups) {
			t.Errorf("%d rows for %d lattices", n, len(setups))
		}
		return err
	})
}
