package halo

import (
	"fmt"
	"math"

	"pfmpi/decomp"
	"pfmpi/mpi"
)

// SelfTestMaxSites bounds the lattice volume on which `pfmpi check` runs
// SelfTest (it holds one small field per rank).
const SelfTestMaxSites = 1 << 22

// SelfTest exercises the communicator and the halo exchanges on a real
// layout, this rank's domain of lat: each site holds its global index, the
// halo must then hold ε(w)·(index of the site it copies), with ε = −1 per
// crossing of the time boundary (twisted, as for fermions), for the
// nearest-neighbour faces and a box of depth up to 3; and the adjoint
// exchange must conserve the sum of a field of ones. It returns the same
// result on every rank of world.
func SelfTest(world, domain mpi.Comm, lat *decomp.Lattice) error {
	ly, err := lat.Layout(domain.Rank())
	if err != nil {
		return err
	}
	nd := lat.NumDims()
	phases := make([]complex128, nd)
	for mu := range phases {
		phases[mu] = 1
	}
	phases[0] = -1 // the twisted time boundary of the zones below
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
		h, err := New[float64](domain, z, 1, phases)
		if err != nil {
			return err
		}
		data := make([]float64, z.Len()) // one value per local site, then the halo cells
		for s := 0; s < ly.Volume(); s++ {
			data[s] = float64(ly.GlobalIndex(s)) + 1
		}
		h.Exchange(data, decomp.All)
		x := make([]int, nd)
		for i, c := range z.Cells() {
			z.CellCoord(i, x)
			want := float64(lat.GlobalIndex(x)) + 1
			if (c.Wrap[0]%2+2)%2 == 1 {
				want = -want
			}
			if data[ly.Volume()+i] != want {
				bad++
			}
		}
		h.Close()
		periodic, err := New[float64](domain, z, 1, nil)
		if err != nil {
			return err
		}
		for i := range data {
			data[i] = 1
		}
		periodic.Adjoint(data, decomp.All)
		periodic.Close()
		sum := 0.0
		for _, v := range data[:ly.Volume()] {
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
