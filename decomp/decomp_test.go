package decomp

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// cases are the acceptance list's process grids plus some with odd local
// extents (no even/odd) and a 3D lattice.
var cases = append(mpitest.Grids(),
	mpitest.Grid{Dims: []int{6, 5}, Grid: []int{2, 1}},
	mpitest.Grid{Dims: []int{9, 6, 3}, Grid: []int{3, 2, 1}},
)

func mustLattice(t *testing.T, dims, grid []int) *Lattice {
	t.Helper()
	l, err := NewLattice(dims, grid, false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLatticeErrors(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		eo         bool
		want       string
	}{
		{[]int{8, 12}, []int{3, 1}, false, "dims[0] = 8 is not divisible by grid[0] = 3"},
		{[]int{8, 12}, []int{1, 1, 1}, false, "grid [1 1 1] has 3 entries but dims [8 12] has 2"},
		{[]int{8, 6}, []int{1, 2}, true, "dims[1] / grid[1] = 6 / 2 = 3 is odd"},
		{[]int{8, 0}, []int{1, 1}, false, "dims[1] = 0"},
		{[]int{8, 8}, []int{0, 1}, false, "grid[0] = 0"},
		{[]int{2, 2, 2, 2, 2}, []int{1, 1, 1, 1, 1}, false, "supports 1 to 4"},
	} {
		_, err := NewLattice(c.dims, c.grid, c.eo)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewLattice(%v, %v, %v) = %v, want an error containing %q", c.dims, c.grid, c.eo, err, c.want)
		}
	}
	if _, err := NewLattice([]int{8, 6}, []int{1, 2}, false); err != nil {
		t.Errorf("odd local extents without even/odd must be allowed: %v", err)
	}
	l := mustLattice(t, []int{8, 8}, []int{2, 2})
	if _, err := l.Replicas(6); err == nil || !strings.Contains(err.Error(), "not a multiple") {
		t.Errorf("Replicas(6) on a 4-rank grid = %v", err)
	}
	if r, err := l.Replicas(12); r != 3 || err != nil {
		t.Errorf("Replicas(12) = %d, %v; want 3", r, err)
	}
}

// TestSiteNumbering checks the parity-first order, coordinates, global
// indices and ownership on every rank of every case.
func TestSiteNumbering(t *testing.T) {
	for _, c := range cases {
		l := mustLattice(t, c.Dims, c.Grid)
		nd := l.NumDims()
		owned := make([]int, l.GlobalVolume())
		for r := 0; r < l.DomainSize(); r++ {
			ly, err := l.Layout(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.RankAt(ly.Coord()); got != r {
				t.Fatalf("%v: RankAt(Coord(%d)) = %d", c, r, got)
			}
			y, x := make([]int, nd), make([]int, nd)
			for s := 0; s < ly.Volume(); s++ {
				ly.LocalCoord(s, y)
				ly.GlobalCoord(s, x)
				if ly.SiteAt(y) != s {
					t.Fatalf("%v rank %d: SiteAt(LocalCoord(%d)) = %d", c, r, s, ly.SiteAt(y))
				}
				if want := Parity(sum(x) % 2); ly.Parity(s) != want {
					t.Fatalf("%v rank %d: site %d at %v has parity %v, order says %v", c, r, s, x, want, ly.Parity(s))
				}
				g := l.GlobalIndex(x)
				if ly.GlobalIndex(s) != g {
					t.Fatalf("%v rank %d: GlobalIndex(%d) = %d, want %d", c, r, s, ly.GlobalIndex(s), g)
				}
				// C order, direction 0 slowest.
				var want int64
				for mu := 0; mu < nd; mu++ {
					want = want*int64(c.Dims[mu]) + int64(x[mu])
				}
				if g != want {
					t.Fatalf("GlobalIndex(%v) = %d, want %d", x, g, want)
				}
				if or, os := l.Owner(x); or != r || os != s {
					t.Fatalf("%v: Owner(%v) = (%d, %d), want (%d, %d)", c, x, or, os, r, s)
				}
				owned[g]++
				if lex := ly.LexToSite()[l.lexIndex((*[MaxDims]int)(append(slices.Clone(y), make([]int, MaxDims-nd)...)))]; int(lex) != s {
					t.Fatalf("LexToSite disagrees with SiteAt")
				}
			}
			// Parity blocks are contiguous and complete.
			lo, hi := ly.Sites(Even)
			lo2, hi2 := ly.Sites(Odd)
			if lo != 0 || hi != lo2 || hi2 != ly.Volume() {
				t.Fatalf("parity ranges [%d,%d) [%d,%d) do not tile [0,%d)", lo, hi, lo2, hi2, ly.Volume())
			}
		}
		for g, n := range owned {
			if n != 1 {
				t.Fatalf("%v: global site %d owned %d times", c, g, n)
			}
		}
	}
}

// stencil lists the offsets a zone must serve.
func stencil(nd, depth int, shape Shape) [][]int {
	var out [][]int
	n := 1
	for range nd {
		n *= 2*depth + 1
	}
	for i := 0; i < n; i++ {
		d := make([]int, nd)
		k, nonzero := i, 0
		for mu := nd - 1; mu >= 0; mu-- {
			d[mu] = k%(2*depth+1) - depth
			k /= 2*depth + 1
			if d[mu] != 0 {
				nonzero++
			}
		}
		if nonzero == 0 || (shape == Faces && nonzero > 1) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// twistings are the choices of twisted directions a zone test runs with.
func twistings(nd int) map[string][]int {
	all := make([]int, nd)
	for mu := range all {
		all[mu] = mu
	}
	return map[string][]int{"all": all, "none": nil, "time": {0}}
}

// TestZoneGeometry checks every neighbour table entry against coordinates:
// an in-block neighbour is the site at y+δ; a halo cell records the unwrapped
// coordinate x+δ, its owner and site, and its wrap; a neighbour read in place
// across the boundary is this rank's own site reached through untwisted
// directions only.
func TestZoneGeometry(t *testing.T) {
	for _, c := range cases {
		l := mustLattice(t, c.Dims, c.Grid)
		nd := l.NumDims()
		for _, shape := range []Shape{Faces, Box} {
			for depth := 1; depth <= 3; depth++ {
				if depth > slices.Min(c.Dims) {
					continue
				}
				for tname, twisted := range twistings(nd) {
					for r := 0; r < l.DomainSize(); r++ {
						ly, _ := l.Layout(r)
						z, err := ly.NewZone(ZoneSpec{Depth: depth, Shape: shape, Twisted: twisted})
						if err != nil {
							t.Fatal(err)
						}
						checkZone(t, fmt.Sprintf("%v %v depth %d twisted %s rank %d", c, shape, depth, tname, r), ly, z, tname == "all")
					}
				}
			}
		}
	}
}

func checkZone(t *testing.T, name string, ly *Layout, z *Zone, allTwisted bool) {
	t.Helper()
	l := ly.Lattice()
	nd := l.NumDims()
	loc := l.Local()
	if allTwisted {
		// Every neighbour outside the block is a halo cell: the size formula holds.
		want := 1
		if z.Shape() == Box {
			inner := 1
			for _, e := range loc {
				want *= e + 2*z.Depth()
				inner *= e
			}
			want -= inner
		} else {
			want = 0
			for mu := range loc {
				f := 2 * z.Depth()
				for nu := range loc {
					if nu != mu {
						f *= loc[nu]
					}
				}
				want += f
			}
		}
		if z.Size() != want || z.Len() != ly.Volume()+want {
			t.Fatalf("%s: %d halo cells, want %d", name, z.Size(), want)
		}
	}
	twistedWrap := func(x []int) bool {
		for mu := 0; mu < nd; mu++ {
			if floorDiv(x[mu], l.dims[mu]) != 0 && z.Twisted(mu) {
				return true
			}
		}
		return false
	}
	used := make([]bool, z.Size())
	x, y, cx := make([]int, nd), make([]int, nd), make([]int, nd)
	for _, delta := range stencil(nd, z.Depth(), z.Shape()) {
		tab, err := z.Shift(delta)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < ly.Volume(); s++ {
			ly.LocalCoord(s, y)
			ly.GlobalCoord(s, x)
			inside := true
			for mu := 0; mu < nd; mu++ {
				y[mu] += delta[mu]
				x[mu] += delta[mu]
				inside = inside && y[mu] >= 0 && y[mu] < loc[mu]
			}
			n := int(tab[s])
			if inside {
				if n != ly.SiteAt(y) {
					t.Fatalf("%s: site %d + %v = %d, want local site %d", name, s, delta, n, ly.SiteAt(y))
				}
				continue
			}
			or, os := l.Owner(x)
			if n < ly.Volume() {
				if or != ly.Rank() || os != n || twistedWrap(x) {
					t.Fatalf("%s: site %d + %v (%v) is read in place at site %d, but it is (%d, %d) and twisted %v",
						name, s, delta, x, n, or, os, twistedWrap(x))
				}
				continue
			}
			i := n - ly.Volume()
			used[i] = true
			z.CellCoord(i, cx)
			if !slices.Equal(cx, x) {
				t.Fatalf("%s: site %d + %v: cell %d at %v, want %v", name, s, delta, i, cx, x)
			}
			cell := z.Cells()[i]
			if cell.Owner != or || int(cell.Site) != os {
				t.Fatalf("%s: cell %d owner (%d, %d), want (%d, %d)", name, i, cell.Owner, cell.Site, or, os)
			}
			if or == ly.Rank() && !twistedWrap(x) {
				t.Fatalf("%s: cell %d copies this rank's site %d across untwisted boundaries", name, i, os)
			}
			for mu := 0; mu < nd; mu++ {
				if w := floorDiv(x[mu], l.dims[mu]); int(cell.Wrap[mu]) != w {
					t.Fatalf("%s: cell %d wrap %v, want %d in direction %d", name, i, cell.Wrap, w, mu)
				}
			}
		}
	}
	for i, u := range used {
		if !u {
			t.Fatalf("%s: halo cell %d is never a neighbour", name, i)
		}
	}
}

// TestPeersAgree checks that what each rank sends is exactly what its peers
// expect, cell by cell, for both parities.
func TestPeersAgree(t *testing.T) {
	for _, c := range cases {
		l := mustLattice(t, c.Dims, c.Grid)
		for _, shape := range []Shape{Faces, Box} {
			for depth := 1; depth <= 3; depth++ {
				if depth > slices.Min(c.Dims) {
					continue
				}
				for _, twisted := range twistings(l.NumDims()) {
					zones := make([]*Zone, l.DomainSize())
					for r := range zones {
						ly, _ := l.Layout(r)
						zones[r], _ = ly.NewZone(ZoneSpec{Depth: depth, Shape: shape, Twisted: twisted})
					}
					for r, z := range zones {
						received := 0
						for _, p := range z.Peers() {
							var back *Peer
							for i := range zones[p.Rank].Peers() {
								if q := &zones[p.Rank].Peers()[i]; q.Rank == r {
									back = q
								}
							}
							if back == nil {
								t.Fatalf("%v: rank %d lists peer %d, which does not list it", c, r, p.Rank)
							}
							for _, par := range []Parity{Even, Odd, All} {
								lo, hi := p.RecvRange(par)
								slo, shi := back.SendRange(par)
								if hi-lo != shi-slo {
									t.Fatalf("%v: rank %d expects %d %v cells from %d, which sends %d", c, r, hi-lo, par, p.Rank, shi-slo)
								}
								for k := 0; k < hi-lo; k++ {
									cell := z.Cells()[lo+k]
									if cell.Owner != p.Rank || cell.Site != back.Send[slo+k] || (par != All && cell.Parity != par) {
										t.Fatalf("%v: rank %d cell %d = %+v, peer %d sends site %d", c, r, lo+k, cell, p.Rank, back.Send[slo+k])
									}
								}
							}
							covered := 0
							for _, run := range back.Wraps {
								for k := run.Lo; k < run.Hi; k++ {
									if z.Cells()[p.RecvLo+k].Wrap != run.Wrap {
										t.Fatalf("%v: run wrap %v disagrees with cell wrap %v", c, run.Wrap, z.Cells()[p.RecvLo+k].Wrap)
									}
								}
								if run.Lo < back.SendOdd && run.Hi > back.SendOdd {
									t.Fatalf("run [%d,%d) straddles the parity boundary %d", run.Lo, run.Hi, back.SendOdd)
								}
								covered += run.Hi - run.Lo
							}
							if covered != len(back.Send) {
								t.Fatalf("runs cover %d of %d send entries", covered, len(back.Send))
							}
							received += p.RecvHi - p.RecvLo
						}
						if received != z.Size() {
							t.Fatalf("%v: peers deliver %d of %d halo cells", c, received, z.Size())
						}
					}
				}
			}
		}
	}
}

func TestShiftErrors(t *testing.T) {
	l := mustLattice(t, []int{8, 8}, []int{2, 1})
	ly, _ := l.Layout(1)
	z, _ := ly.NewZone(ZoneSpec{Depth: 1, Shape: Faces})
	if _, err := z.Shift([]int{1, 1}); err == nil || !strings.Contains(err.Error(), "box zone") {
		t.Errorf("diagonal offset in a faces zone: %v", err)
	}
	if _, err := z.Shift([]int{2, 0}); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Errorf("offset beyond the depth: %v", err)
	}
	if _, err := ly.NewZone(ZoneSpec{Depth: 9, Shape: Box}); err == nil {
		t.Errorf("a zone deeper than the lattice must be refused")
	}
	if _, err := ly.NewZone(ZoneSpec{Depth: 1, Shape: Box, Twisted: []int{2}}); err == nil {
		t.Errorf("a twisted direction beyond the lattice must be refused")
	}
	// Up and Dn are the unit shifts.
	up, _ := z.Shift([]int{0, 1})
	if !slices.Equal(up, z.Up(1)) {
		t.Errorf("Up(1) differs from Shift(0, 1)")
	}
}

func TestAutoGrid(t *testing.T) {
	for _, c := range []struct {
		dims  []int
		ranks int
		eo    bool
		want  []int
	}{
		{[]int{16, 16}, 1, true, []int{1, 1}},
		{[]int{16, 16}, 4, true, []int{4, 1}},                 // ties with 2×2 and 1×4: fewer split directions, time first
		{[]int{16, 64}, 4, true, []int{1, 4}},                 // the long direction has the small faces
		{[]int{16, 16}, 16, true, []int{4, 4}},                // 16×1 would leave local extent 1
		{[]int{32, 16, 16, 16}, 16, false, []int{8, 2, 1, 1}}, // surface 6144 sites; 2×2×2×2 has 7168
		{[]int{12, 12}, 3, false, []int{3, 1}},
	} {
		g, err := AutoGrid(c.dims, c.ranks, c.eo)
		if err != nil || !slices.Equal(g, c.want) {
			t.Errorf("AutoGrid(%v, %d, %v) = %v, %v; want %v", c.dims, c.ranks, c.eo, g, err, c.want)
		}
		if err == nil {
			if _, err := NewLattice(c.dims, g, c.eo); err != nil {
				t.Errorf("AutoGrid's grid is invalid: %v", err)
			}
		}
	}
	_, err := AutoGrid([]int{6, 6}, 4, true)
	if err == nil || !strings.Contains(err.Error(), "domain sizes that work: 1, 3, 9") {
		t.Errorf("AutoGrid([6 6], 4, eo) = %v; want the valid sizes listed", err)
	}
}

func TestSplitWorld(t *testing.T) {
	l := mustLattice(t, []int{8, 8}, []int{2, 1})
	mpitest.Run(t, 4, func(world mpi.Comm) error {
		dom, rep, err := SplitWorld(world, l)
		if err != nil {
			return err
		}
		defer dom.Free()
		defer rep.Free()
		w := world.Rank()
		if dom.Size() != 2 || dom.Rank() != w%2 || rep.Size() != 2 || rep.Rank() != w/2 {
			return fmt.Errorf("world %d: domain %d/%d, replica %d/%d", w, dom.Rank(), dom.Size(), rep.Rank(), rep.Size())
		}
		// The domain communicator joins the two halves of one lattice: the sum
		// of world ranks over a domain is 2·replica·2 + 0 + 1.
		if s := mpi.SumFloat64(dom, float64(w)); s != float64(4*(w/2)+1) {
			return fmt.Errorf("domain sum %v", s)
		}
		return nil
	})
	mpitest.Run(t, 3, func(world mpi.Comm) error {
		if _, _, err := SplitWorld(world, l); err == nil {
			return fmt.Errorf("3 ranks on a 2-rank grid must be refused")
		}
		return nil
	})
}

// BenchmarkNewZone measures the set-up of halo zones on production-sized
// blocks (built once per run).
func BenchmarkNewZone(b *testing.B) {
	for _, c := range []struct {
		name       string
		dims, grid []int
		depth      int
		shape      Shape
	}{
		{"2D-256x256-grid2x2-faces1", []int{256, 256}, []int{2, 2}, 1, Faces},
		{"2D-64x64-grid2x2-box3", []int{64, 64}, []int{2, 2}, 3, Box},
		{"4D-48x48x48x48-grid3x3x3x3-faces1", []int{48, 48, 48, 48}, []int{3, 3, 3, 3}, 1, Faces},
		{"4D-32x32x32x32-grid2x2x2x2-box1", []int{32, 32, 32, 32}, []int{2, 2, 2, 2}, 1, Box},
	} {
		b.Run(c.name, func(b *testing.B) {
			l, err := NewLattice(c.dims, c.grid, true)
			if err != nil {
				b.Fatal(err)
			}
			ly, _ := l.Layout(l.DomainSize() / 2)
			for b.Loop() {
				if _, err := ly.NewZone(ZoneSpec{Depth: c.depth, Shape: c.shape, Twisted: []int{0}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
