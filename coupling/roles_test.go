package coupling

import (
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

// TestRoles: in every layer a quarter of the plaquettes is active, a
// quarter passive and half frozen; the roles agree with the masks the
// SU(3) layer builds (active sites, frozen flags), on one rank and on a
// 2×2 grid; over 8 layers every plaquette is active twice and passive
// twice.
func TestRoles(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			var activeCount, passiveCount []int
			for i := range 8 {
				w, err := newSU3World(c, []int{8, 12}, grid, i)
				if err != nil {
					return err
				}
				roles, err := Roles(w.geo.Layout(), i)
				if err != nil {
					w.close()
					return err
				}
				if activeCount == nil {
					activeCount, passiveCount = make([]int, len(roles)), make([]int, len(roles))
				}
				isActive := make([]bool, len(roles))
				for _, s := range w.layer.(*SU3Layer).active {
					isActive[s] = true
				}
				n := map[Role]int{}
				for s, r := range roles {
					n[r]++
					if (r == Active) != isActive[s] {
						t.Errorf("layer %d, site %d: role %v, layer's active flag %v", i, s, r, isActive[s])
					}
					if (r == Frozen) != (w.layer.(*SU3Layer).frozen[s] == 1) {
						t.Errorf("layer %d, site %d: role %v, layer's frozen flag %v", i, s, r, w.layer.(*SU3Layer).frozen[s])
					}
					switch r {
					case Active:
						activeCount[s]++
					case Passive:
						passiveCount[s]++
					}
				}
				w.close()
				v := len(roles)
				if n[Active] != v/4 || n[Passive] != v/4 || n[Frozen] != v/2 {
					t.Errorf("layer %d: %d active, %d passive, %d frozen of %d", i, n[Active], n[Passive], n[Frozen], v)
				}
			}
			for s := range activeCount {
				if activeCount[s] != 2 || passiveCount[s] != 2 {
					t.Errorf("site %d: active in %d, passive in %d of 8 layers, want 2 and 2", s, activeCount[s], passiveCount[s])
				}
			}
			return nil
		})
	}
}
