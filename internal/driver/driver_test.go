package driver

import (
	"strings"
	"testing"

	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/mpi"
)

func theory(t *testing.T, c mpi.Comm, text string) (*Theory, error) {
	t.Helper()
	cfg, err := config.Parse("run.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	lat, err := decomp.NewLattice(cfg.Lattice.Dims, []int{1, 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	ly, err := lat.Layout(0)
	if err != nil {
		t.Fatal(err)
	}
	return BuildTheory(c, ly, cfg)
}

// TestTheory builds the theory of run files: the group, the operator only
// with fermions, one monomial per Hasenbusch mass plus the last, and the
// regulator shifting every kernel's mass; a bad chain is reported by key.
func TestTheory(t *testing.T) {
	const head = "[run]\noutput = \"out\"\n[lattice]\ndims = [4, 4]\ngroup = \"su3\"\n[hmc]\n[action]\nbeta = 6.0\n"
	err := mpi.Run(1, func(c mpi.Comm) error {
		th, err := theory(t, c, head)
		if err != nil {
			return err
		}
		if th.Space.Nc() != 3 || th.Op != nil {
			t.Errorf("pure gauge: Nc %d, operator %v", th.Space.Nc(), th.Op)
		}
		if pfs, err := th.Pseudofermions(0); err != nil || pfs != nil {
			t.Errorf("pure gauge: pseudofermions %v, %v", pfs, err)
		}
		th.Close()
		th, err = theory(t, c, head+"kappa = 0.12\nprecondition = \"eo\"\nhasenbusch = [0.01, 0.1]\n")
		if err != nil {
			return err
		}
		defer th.Close()
		plain, err := th.Pseudofermions(0)
		if err != nil {
			return err
		}
		reg, err := th.Pseudofermions(0.001)
		if err != nil {
			return err
		}
		if th.Op == nil || len(plain) != 3 || len(reg) != 3 {
			t.Fatalf("κ > 0: operator %v, %d and %d monomials, want 3", th.Op, len(plain), len(reg))
		}
		for i := range plain {
			_, _, s0 := plain[i].Coefficients()
			_, _, s1 := reg[i].Coefficients()
			if d := s1 - s0; d < 0.001-1e-15 || d > 0.001+1e-15 {
				t.Errorf("monomial %d: the regulator shifts σ by %g", i, d)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = mpi.Run(1, func(c mpi.Comm) error {
		th, err := theory(t, c, head+"kappa = 0.12\nhasenbusch = [0.01, 0.1]\n")
		if err != nil {
			return err
		}
		defer th.Close()
		th.cfg.Action.Hasenbusch = []float64{0.1, 0.01} // not increasing: as if validation let it through
		_, err = th.Pseudofermions(0)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "action.hasenbusch") {
		t.Errorf("a decreasing Hasenbusch chain gave %v, want an error naming action.hasenbusch", err)
	}
}
