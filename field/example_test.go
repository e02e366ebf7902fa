package field_test

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// A Gaussian field drawn on two ranks and gathered is the field drawn on one.
func ExampleGather() {
	key := rng.New(7, "example")
	draw := func(c mpi.Comm, grid []int) []float64 {
		lat, _ := decomp.NewLattice([]int{4, 4}, grid, false)
		ly, _ := lat.Layout(c.Rank())
		z, _ := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces})
		f := field.New[float64](z, 2)
		field.FillNormal(f, key)
		return field.Gather(c, f, 0)
	}
	var one, two []float64
	_ = mpi.Run(1, func(c mpi.Comm) error { one = draw(c, []int{1, 1}); return nil })
	_ = mpi.Run(2, func(c mpi.Comm) error {
		if g := draw(c, []int{2, 1}); c.Rank() == 0 {
			two = g
		}
		return nil
	})
	same := len(one) == 32 && len(two) == 32
	for i := range one {
		same = same && one[i] == two[i]
	}
	fmt.Println("identical:", same)
	// Output: identical: true
}
