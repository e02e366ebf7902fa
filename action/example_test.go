package action_test

import (
	"fmt"
	"math"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// The monomials of even/odd preconditioned Nf = 2 with two Hasenbusch
// shifts on a 2D U(1) field, refreshed by the heat bath.
func Example() {
	err := mpi.Run(1, func(comm mpi.Comm) error {
		lat, err := decomp.NewLattice([]int{8, 8}, []int{1, 1}, true)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(comm.Rank())
		sp, err := gauge.NewSpace(comm, ly, 1)
		if err != nil {
			return err
		}
		defer sp.Close()
		u := sp.NewField()
		u.SetNearIdentity(rng.New(1, "gauge"), 0.5)
		op, err := dslash.NewWilson(u, 0.26)
		if err != nil {
			return err
		}
		defer op.Close()
		pfs, err := action.NewPseudofermions(comm, op, action.Fermions{
			EvenOdd: true, Shifts: []float64{0.01, 0.1}, Solves: action.DefaultSolves})
		if err != nil {
			return err
		}
		for i, p := range pfs {
			if err := p.Refresh(rng.New(1, "pf").Derive(uint64(i))); err != nil {
				return err
			}
			s, err := p.Action()
			if err != nil {
				return err
			}
			// After the heat bath S = η†η, about one per complex component.
			fmt.Printf("%s   S/N ≈ 1: %v\n", p, math.Abs(s/float64(p.Len())-1) < 0.3)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// pf0: φ†(1 + (0.01 − 0)(DscDsc†)⁻¹)φ   S/N ≈ 1: true
	// pf1: φ†(1 + (0.1 − 0.01)(DscDsc† + 0.01)⁻¹)φ   S/N ≈ 1: true
	// pf2: φ†(DscDsc† + 0.1)⁻¹φ   S/N ≈ 1: true
}
