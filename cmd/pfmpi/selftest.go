package main

import (
	"fmt"
	"math"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/field"
	"pfmpi/halo"
	"pfmpi/mpi"
)

// selfTestMaxSites bounds the lattice volume on which check runs the
// communication self-test (it holds one small field per rank).
const selfTestMaxSites = 1 << 22

// haloSelfTest exercises the communicator and the halo code on the real
// layout: each site holds its global index, the halo must then hold
// ε(w)·(index of the site it copies), with ε = −1 per crossing of the time
// boundary; and the adjoint exchange must conserve the sum of a field of ones.
// It returns the same result on every rank of world.
func haloSelfTest(world, domain mpi.Comm, lat *decomp.Lattice) error {
	ly, err := lat.Layout(domain.Rank())
	if err != nil {
		return err
	}
	nd := lat.NumDims()
	phases := dslash.HaloPhases(nd)
	depth := 3
	for _, l := range lat.Dims() {
		depth = min(depth, l)
	}
	bad := 0.0
	for _, zs := range []struct {
		depth int
		shape decomp.Shape
	}{{1, decomp.Faces}, {depth, decomp.Box}} {
		z, err := ly.NewZone(decomp.ZoneSpec{Depth: zs.depth, Shape: zs.shape, Twisted: []int{0}})
		if err != nil {
			return err
		}
		h, err := halo.New[float64](domain, z, 1, phases)
		if err != nil {
			return err
		}
		f := field.New[float64](z, 1)
		for s := 0; s < ly.Volume(); s++ {
			f.Site(s)[0] = float64(ly.GlobalIndex(s)) + 1
		}
		h.Exchange(f.Data(), decomp.All)
		x := make([]int, nd)
		for i, c := range z.Cells() {
			z.CellCoord(i, x)
			want := float64(lat.GlobalIndex(x)) + 1
			if (c.Wrap[0]%2+2)%2 == 1 {
				want = -want
			}
			if f.Site(ly.Volume() + i)[0] != want {
				bad++
			}
		}
		h.Close()
		periodic, err := halo.New[float64](domain, z, 1, nil)
		if err != nil {
			return err
		}
		data := f.Data()
		for i := range data {
			data[i] = 1
		}
		periodic.Adjoint(data, decomp.All)
		periodic.Close()
		sum := 0.0
		for _, v := range f.Local() {
			sum += v
		}
		if math.Abs(mpi.SumFloat64(domain, sum)-float64(lat.DomainSize()*z.Len())) > 0.5 {
			bad++
		}
	}
	if bad = mpi.SumFloat64(world, bad); bad != 0 {
		return fmt.Errorf("halo self-test failed: %v wrong values; the communicator or the MPI installation is broken", bad)
	}
	return nil
}
