package hmc_test

import (
	"fmt"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/hmc"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// Two-flavour Schwinger model on 8×8 with even/odd preconditioning and one
// Hasenbusch shift: the gauge force on an inner time scale, the
// pseudofermions outside, Omelyan on both.
func Example() {
	err := mpi.Run(2, func(comm mpi.Comm) error {
		lat, err := decomp.NewLattice([]int{8, 8}, []int{2, 1}, true)
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
		op, err := dslash.NewWilson(u, 0.26)
		if err != nil {
			return err
		}
		defer op.Close()
		pfs, err := action.NewPseudofermions(comm, op, action.Fermions{EvenOdd: true, Shifts: []float64{0.1}, Solves: action.DefaultSolves})
		if err != nil {
			return err
		}
		monomials := []action.Monomial{action.NewGauge(u, 2), pfs[0], pfs[1]}
		levels, err := hmc.Assign([]int{6, 3}, monomials, []int{1, 0, 0})
		if err != nil {
			return err
		}
		md, err := hmc.NewMD(u, levels, hmc.Omelyan)
		if err != nil {
			return err
		}
		chain, err := hmc.NewChain(u, md, 1, rng.New(1, "hmc"))
		if err != nil {
			return err
		}
		accepted := 0
		for range 5 {
			rec, err := chain.Run(false)
			if err != nil {
				return err
			}
			if rec.Accepted {
				accepted++
			}
		}
		plaq := u.AveragePlaquette() // collective: every rank calls it
		if comm.Rank() == 0 {
			fmt.Printf("accepted %d of 5, plaquette below 1: %v\n", accepted, plaq < 1)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// accepted 5 of 5, plaquette below 1: true
}
