package mpitest

// Grid is a global lattice and a process grid over it.
type Grid struct {
	Dims, Grid []int
}

// Ranks is the number of ranks of the process grid.
func (g Grid) Ranks() int {
	n := 1
	for _, p := range g.Grid {
		n *= p
	}
	return n
}

// Grids returns the process grids every distributed test runs on: 1×1, 2×1,
// 1×2, 2×2, 4×1 and 1×4 in 2D, 2×1×1×2 and 1×2×2×1 in 4D. The extents make
// some blocks thinner than a depth-3 halo, and the last case has odd local
// extents.
func Grids() []Grid {
	return []Grid{
		{[]int{8, 12}, []int{1, 1}},
		{[]int{8, 12}, []int{2, 1}},
		{[]int{8, 12}, []int{1, 2}},
		{[]int{8, 12}, []int{2, 2}},
		{[]int{8, 12}, []int{4, 1}},
		{[]int{8, 12}, []int{1, 4}},
		{[]int{4, 4, 4, 4}, []int{2, 1, 1, 2}},
		{[]int{4, 4, 6, 4}, []int{1, 2, 2, 1}},
	}
}
