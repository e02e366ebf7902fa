package gauge_test

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// A 2D SU(3) field on two in-process ranks: the cold field has plaquette 1 and
// action −β V; a random gauge transformation leaves the action of a hot field
// unchanged.
func ExampleField_Action() {
	_ = mpi.Run(2, func(c mpi.Comm) error {
		lat, _ := decomp.NewLattice([]int{4, 4}, []int{2, 1}, false)
		ly, _ := lat.Layout(c.Rank())
		sp, err := gauge.NewSpace(c, ly, 3)
		if err != nil {
			return err
		}
		defer sp.Close()
		u := sp.NewField()
		cold := u.Action(6.0)
		u.SetHot(rng.New(1, "example"))
		before := u.Action(6.0)
		u.Transform(sp.RandomTransform(rng.New(2, "omega")))
		after := u.Action(6.0)
		if c.Rank() == 0 {
			fmt.Printf("cold: S = %.1f; hot: invariant = %v\n", cold, abs(after-before) < 1e-12*abs(before))
		}
		return nil
	})
	// Output: cold: S = -96.0; hot: invariant = true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
