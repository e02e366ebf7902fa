package bench

import (
	"math"
	"strings"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// TestSmoke runs every measurement on tiny lattices on two ranks and checks
// that they produce finite, positive numbers consistent with the operators'
// counts (no assertion on speed: machines are noisy).
func TestSmoke(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		triad := Triad(c, 1<<12, 2)
		if !(triad > 0) || math.IsInf(triad, 0) {
			t.Errorf("triad %v", triad)
		}
		for _, s := range []Setup{
			{Dims: []int{8, 8}, Grid: []int{2, 1}, Nc: 1, Kappa: 0.1},
			{Dims: []int{4, 4, 4, 4}, Grid: []int{1, 1, 1, 2}, Nc: 3, Kappa: 0.1},
		} {
			var all []Result
			for _, f := range []func() ([]Result, error){
				func() ([]Result, error) { return Dslash(c, s, 2, triad) },
				func() ([]Result, error) { return CG(c, s, 2, 3, triad) },
				func() ([]Result, error) { return Halo(c, s, 2) },
			} {
				rs, err := f()
				if err != nil {
					return err
				}
				all = append(all, rs...)
			}
			for _, r := range all {
				if !(r.Seconds > 0) || r.Ranks != 2 || r.String() == "" {
					t.Errorf("%v: %+v", s.Dims, r)
				}
				if r.Op != "halo" && (!(r.GFlops > 0) || !(r.GBytes > 0) || math.Abs(r.Fraction-r.GBytes/triad) > 1e-12*r.Fraction) {
					t.Errorf("%v %s: rates %+v", s.Dims, r.Op, r)
				}
			}
			if !strings.Contains(all[2].Note, "bytes per rank") {
				t.Errorf("halo note %q", all[2].Note)
			}
		}
		return nil
	})
}
