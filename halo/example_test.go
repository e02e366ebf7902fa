package halo_test

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/mpi"
)

// A fermion-like field on a 4×4 lattice split over two ranks in time, with
// antiperiodic boundary conditions in time: the halo copy of a site across the
// global time boundary carries a minus sign.
func ExampleHalo_Exchange() {
	err := mpi.Run(2, func(c mpi.Comm) error {
		lat, err := decomp.NewLattice([]int{4, 4}, []int{2, 1}, false)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(c.Rank())
		z, _ := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
		h, err := halo.New[complex128](c, z, 1, []complex128{-1, 1})
		if err != nil {
			return err
		}
		defer h.Close()
		f := make([]complex128, z.Len()) // one value per site, then the halo
		x := make([]int, 2)
		for s := 0; s < ly.Volume(); s++ {
			ly.GlobalCoord(s, x)
			f[s] = complex(float64(10*x[0]+x[1]), 0)
		}
		h.Start(f, decomp.All)
		// ... interior work here ...
		h.Finish(f, decomp.All)
		if c.Rank() == 0 {
			s := ly.SiteAt([]int{0, 2}) // global (0, 2)
			fmt.Println("(0,2) - e0 holds", real(f[z.Dn(0)[s]]), "(the site (3,2) times -1)")
			fmt.Println("(0,2) + e0 holds", real(f[z.Up(0)[s]]))
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// (0,2) - e0 holds -32 (the site (3,2) times -1)
	// (0,2) + e0 holds 12
}
