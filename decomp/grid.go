package decomp

import (
	"fmt"
	"strings"

	"pfmpi/mpi"
)

// AutoGrid chooses a process grid of exactly ranks ranks for a lattice of
// extents dims: every entry divides its extent (with even quotients when
// evenOdd is set), and among those the grid with the least halo surface per
// rank, Σ_{μ: G_μ > 1} 2V/l_μ sites, is chosen. Ties go to the grid that splits
// fewer directions (fewer messages), then to the one that splits earlier
// directions more (time first). It fails, listing the rank counts that would
// work, when no grid exists.
func AutoGrid(dims []int, ranks int, evenOdd bool) ([]int, error) {
	if len(dims) < 1 || len(dims) > MaxDims {
		return nil, fmt.Errorf("dims %v has %d directions; pfmpi supports 1 to %d", dims, len(dims), MaxDims)
	}
	if ranks < 1 {
		return nil, fmt.Errorf("%d ranks: need at least one", ranks)
	}
	var best []int
	var bestCost float64
	var bestSplit int
	grid := make([]int, len(dims))
	var search func(mu, left int)
	search = func(mu, left int) {
		if mu == len(dims) {
			if left != 1 {
				return
			}
			cost, split, vol := 0.0, 0, 1.0
			for nu := range dims {
				vol *= float64(dims[nu] / grid[nu])
			}
			for nu := range dims {
				if grid[nu] > 1 {
					cost += 2 * vol / float64(dims[nu]/grid[nu])
					split++
				}
			}
			better := best == nil || cost < bestCost || (cost == bestCost && split < bestSplit)
			if !better && cost == bestCost && split == bestSplit {
				for nu := range dims {
					if grid[nu] != best[nu] {
						better = grid[nu] > best[nu]
						break
					}
				}
			}
			if better {
				best, bestCost, bestSplit = append([]int(nil), grid...), cost, split
			}
			return
		}
		for g := 1; g <= left; g++ {
			if left%g != 0 || dims[mu]%g != 0 || (evenOdd && (dims[mu]/g)%2 != 0) {
				continue
			}
			grid[mu] = g
			search(mu+1, left/g)
		}
	}
	search(0, ranks)
	if best == nil {
		var ok []string
		for n := 1; n <= 4*ranks && len(ok) < 12; n++ {
			if gridExists(dims, n, evenOdd) {
				ok = append(ok, fmt.Sprint(n))
			}
		}
		eo := ""
		if evenOdd {
			eo = " with even local extents (even/odd preconditioning)"
		}
		return nil, fmt.Errorf("no process grid of %d ranks divides dims %v%s; domain sizes that work: %s",
			ranks, dims, eo, strings.Join(ok, ", "))
	}
	return best, nil
}

// gridExists reports whether some process grid of n ranks fits dims.
func gridExists(dims []int, n int, evenOdd bool) bool {
	var exists func(mu, left int) bool
	exists = func(mu, left int) bool {
		if mu == len(dims) {
			return left == 1
		}
		for g := 1; g <= left; g++ {
			if left%g == 0 && dims[mu]%g == 0 && (!evenOdd || (dims[mu]/g)%2 == 0) && exists(mu+1, left/g) {
				return true
			}
		}
		return false
	}
	return exists(0, n)
}

// SplitWorld splits the world communicator into the domain communicator
// (the ranks sharing one lattice, ordered as the process grid) and the
// replica communicator (the ranks at the same grid position in every replica,
// ordered by replica). World rank w is domain rank w mod ΠG of replica
// ⌊w/ΠG⌋. It is collective over world.
func SplitWorld(world mpi.Comm, lat *Lattice) (domain, replica mpi.Comm, err error) {
	if _, err := lat.Replicas(world.Size()); err != nil {
		return nil, nil, err
	}
	d, w := lat.DomainSize(), world.Rank()
	domain = world.Split(w/d, w%d)
	replica = world.Split(w%d, w/d)
	return domain, replica, nil
}
