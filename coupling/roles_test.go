package coupling

import (
	"fmt"
	"math/cmplx"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
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

// TestStringRoles: in a string layer the active rows hold the mapped
// plaquettes and one seam each; the log-Jacobian density is nonzero
// exactly on the mapped plaquettes, and every plaquette off the active
// rows is left unchanged by the layer.
func TestStringRoles(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		dims := []int{8, 6}
		for i := range 8 {
			w, err := newSU3WorldOf(c, dims, []int{1, 1}, i, stringLayer)
			if err != nil {
				return err
			}
			roles, err := StringRoles(w.geo.Layout(), RegularStringPattern(dims, i))
			if err != nil {
				w.close()
				return err
			}
			l := w.layer.(*SU3StringLayer)
			// Nonzero parameters so that log J ≠ 0 where a plaquette is mapped.
			st := rng.New(9, "roles").Stream(uint64(i))
			for _, p := range l.Params() {
				for k := range p.Value {
					p.Value[k] = 0.3 * st.Normal()
				}
			}
			u := haarLinks(w.geo, 1, rng.New(10, "roles-links"))
			out, ld, err := w.forward(u, true)
			if err != nil {
				w.close()
				return err
			}
			for s, r := range roles {
				mapped := ld.Data[s] != 0
				if mapped != (r == Active) {
					t.Errorf("layer %d, site %d: role %v, log J %g", i, s, r, ld.Data[s])
				}
				tr := func(x *nnlayers.Tensor) complex128 {
					u1, u2, u3, u4 := l.plaquette01(x, s, 0)
					return u1.Mul(u2).MulAdj(u3).MulAdj(u4).Trace()
				}
				if changed := cmplx.Abs(tr(out)-tr(u)) > 1e-9; changed == (r == Frozen) {
					t.Errorf("layer %d, site %d: role %v, Tr P moved by %g", i, s, r, cmplx.Abs(tr(out)-tr(u)))
				}
			}
			w.close()
		}
		return nil
	})
}

// TestMarginalStringPatternsLeaveOneSeam: the first marginal layer maps
// every plaquette but one per row (its seams in one column), the second
// maps that column but one plaquette: exactly one plaquette is never
// mapped by either.
func TestMarginalStringPatternsLeaveOneSeam(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		dims := []int{8, 6}
		geo, err := testGeometry(c, dims, []int{1, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		pats := MarginalStringPatterns(dims)
		first, err := StringRoles(geo.Layout(), pats[0])
		if err != nil {
			return err
		}
		second, err := StringRoles(geo.Layout(), pats[1])
		if err != nil {
			return err
		}
		unmapped := 0
		for s := range first {
			if first[s] == Frozen {
				return fmt.Errorf("site %d frozen in the all-rows layer", s)
			}
			if first[s] == Passive && second[s] != Active {
				unmapped++
			}
			if first[s] == Active && second[s] != Frozen {
				return fmt.Errorf("site %d mapped by the first layer is touched by the second (%v)", s, second[s])
			}
		}
		if unmapped != 1 {
			return fmt.Errorf("%d plaquettes left unmapped, want 1", unmapped)
		}
		return nil
	})
}
