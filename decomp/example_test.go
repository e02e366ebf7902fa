package decomp_test

import (
	"fmt"

	"pfmpi/decomp"
)

// An 8×8 lattice on a 2×1 process grid, seen from domain rank 1: its block,
// its parity-first site order and where the neighbours across the time
// boundary live.
func ExampleLattice_Layout() {
	lat, err := decomp.NewLattice([]int{8, 8}, []int{2, 1}, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	ly, _ := lat.Layout(1)
	fmt.Println("local", lat.Local(), "origin", ly.Origin(), "even sites", ly.EvenCount())

	z, _ := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
	s := ly.SiteAt([]int{3, 5}) // the last time slice of the block
	n := int(z.Up(0)[s])        // its neighbour in +t lies in the halo
	cell := z.Cells()[n-ly.Volume()]
	fmt.Printf("site %d + e0 -> halo cell held by rank %d (site %d), wrap %v\n", s, cell.Owner, cell.Site, cell.Wrap[:2])
	// Output:
	// local [4 8] origin [4 0] even sites 16
	// site 14 + e0 -> halo cell held by rank 0 (site 18), wrap [1 0]
}

func ExampleAutoGrid() {
	grid, _ := decomp.AutoGrid([]int{16, 64}, 4, true)
	fmt.Println(grid)
	// Output: [1 4]
}
