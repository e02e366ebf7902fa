package latticetest

import (
	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/mpi"
)

// Layout returns rank c.Rank()'s layout of the lattice dims split over grid
// (nil: one rank), even/odd ordered when evenOdd is set.
func Layout(c mpi.Comm, dims, grid []int, evenOdd bool) (*decomp.Layout, error) {
	if grid == nil {
		grid = make([]int, len(dims))
		for i := range grid {
			grid[i] = 1
		}
	}
	lat, err := decomp.NewLattice(dims, grid, evenOdd)
	if err != nil {
		return nil, err
	}
	return lat.Layout(c.Rank())
}

// Space returns rank c.Rank()'s gauge space of SU(nc) (U(1) for nc = 1) on
// the lattice dims split over grid (nil: one rank), with the even/odd
// layout when evenOdd is set. The caller closes it.
func Space(c mpi.Comm, dims, grid []int, evenOdd bool, nc int) (*gauge.Space, error) {
	ly, err := Layout(c, dims, grid, evenOdd)
	if err != nil {
		return nil, err
	}
	return gauge.NewSpace(c, ly, nc)
}
