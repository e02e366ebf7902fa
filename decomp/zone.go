package decomp

import (
	"cmp"
	"fmt"
	"slices"
)

// Shape says which cells around the local block a Zone holds.
type Shape int

const (
	// Faces holds the cells x ± k e_μ, 1 ≤ k ≤ depth: axis stencils.
	Faces Shape = iota
	// Box holds the whole padded block [−depth, l+depth)^D: D-dimensional kernels.
	Box
)

func (s Shape) String() string {
	switch s {
	case Faces:
		return "faces"
	case Box:
		return "box"
	}
	return fmt.Sprintf("Shape(%d)", int(s))
}

// ZoneSpec describes a halo zone.
type ZoneSpec struct {
	Depth int   // d ≥ 1
	Shape Shape // Faces or Box
	// Twisted lists the directions in which fields on the zone may carry a
	// boundary phase other than 1 (fermions: direction 0). Across the global
	// boundary of any other direction a neighbour held by this rank is read
	// in place, without a halo copy.
	Twisted []int
}

// Cell is one halo cell: a copy of a site held by Owner.
type Cell struct {
	Owner  int           // domain rank holding the site
	Site   int32         // the site's index on Owner
	Parity Parity        // the site's parity
	Wrap   [MaxDims]int8 // crossings of the global boundary per direction
}

// WrapRun is a range [Lo, Hi) of a Peer's Send entries that share one wrap.
type WrapRun struct {
	Lo, Hi int
	Wrap   [MaxDims]int8
}

// Peer is what a rank exchanges with one rank of its domain (possibly itself).
// The fields are read-only.
type Peer struct {
	Rank int
	// Halo cells received from Rank: even-site cells [RecvLo, RecvOdd), odd
	// ones [RecvOdd, RecvHi). Indices count from 0 at the first halo cell.
	RecvLo, RecvOdd, RecvHi int
	// Local sites sent to Rank, in Rank's cell order: even ones
	// Send[:SendOdd], odd ones Send[SendOdd:].
	Send    []int32
	SendOdd int
	// Wraps cover Send with runs of consecutive entries of equal wrap; none
	// straddles SendOdd.
	Wraps []WrapRun
}

// RecvRange returns the halo cells [lo, hi) received from the peer for parity p.
func (p *Peer) RecvRange(par Parity) (lo, hi int) {
	switch par {
	case Even:
		return p.RecvLo, p.RecvOdd
	case Odd:
		return p.RecvOdd, p.RecvHi
	}
	return p.RecvLo, p.RecvHi
}

// SendRange returns the range [lo, hi) of Send entries sent for parity p.
func (p *Peer) SendRange(par Parity) (lo, hi int) {
	switch par {
	case Even:
		return 0, p.SendOdd
	case Odd:
		return p.SendOdd, len(p.Send)
	}
	return 0, len(p.Send)
}

// Zone is a halo zone around one rank's block, with its neighbour tables and
// the communication pattern that fills it. It is immutable.
type Zone struct {
	ly      *Layout
	depth   int
	shape   Shape
	twisted [MaxDims]bool
	cells   []Cell
	coords  [][MaxDims]int32 // unwrapped local coordinate of each cell
	peers   []Peer
	padExt  [MaxDims]int // l_μ + 2 depth
	padIdx  []int32      // padded-block lexicographic index → site or V+cell, −1 if outside the zone
	up, dn  [MaxDims][]int32
}

// rawCell is a halo cell during construction.
type rawCell struct {
	y     [MaxDims]int
	owner int
	site  int32
	par   Parity
	wrap  [MaxDims]int8
}

// NewZone builds the halo zone spec describes around ly.
func (ly *Layout) NewZone(spec ZoneSpec) (*Zone, error) {
	l := ly.lat
	depth, shape := spec.Depth, spec.Shape
	if depth < 1 {
		return nil, fmt.Errorf("halo depth %d: must be ≥ 1", depth)
	}
	if shape != Faces && shape != Box {
		return nil, fmt.Errorf("unknown halo shape %v", shape)
	}
	for mu := 0; mu < l.nd; mu++ {
		if depth > l.dims[mu] {
			// A deeper halo would wrap around the whole lattice; no stencil
			// on a lattice this small needs that.
			return nil, fmt.Errorf("halo depth %d exceeds the lattice extent dims[%d] = %d", depth, mu, l.dims[mu])
		}
	}
	z := &Zone{ly: ly, depth: depth, shape: shape}
	for _, mu := range spec.Twisted {
		if mu < 0 || mu >= l.nd {
			return nil, fmt.Errorf("twisted direction %d: the lattice has directions 0 to %d", mu, l.nd-1)
		}
		z.twisted[mu] = true
	}
	raw := z.haloCells(ly.origin, ly.rank, -1)
	z.cells = make([]Cell, len(raw))
	z.coords = make([][MaxDims]int32, len(raw))
	for i, c := range raw {
		z.cells[i] = Cell{Owner: c.owner, Site: c.site, Parity: c.par, Wrap: c.wrap}
		for mu := 0; mu < l.nd; mu++ {
			z.coords[i][mu] = int32(c.y[mu])
		}
	}
	z.buildPad(raw)
	z.buildPeers(raw)
	for mu := 0; mu < l.nd; mu++ {
		var e [MaxDims]int
		e[mu] = 1
		z.up[mu], _ = z.Shift(e[:l.nd])
		e[mu] = -1
		z.dn[mu], _ = z.Shift(e[:l.nd])
	}
	return z, nil
}

// haloCells lists, in zone order, the halo cells of the block of rank
// receiver with the given origin, or only those held by rank owner if owner ≥
// 0. It works for any block, so a rank can compute what its neighbours expect
// from it. (Zone order is a total order, so sorting a subset gives the subset
// of the sorted list.) A site the receiver holds itself, reached across
// untwisted boundaries only, is no halo cell: it is read in place.
func (z *Zone) haloCells(origin [MaxDims]int, receiver, owner int) []rawCell {
	l, depth, shape := z.ly.lat, z.depth, z.shape
	nd := l.nd
	var cells []rawCell
	// A region picks, per direction, below (0), inside (1) or above (2) the block.
	nRegions := 1
	for range nd {
		nRegions *= 3
	}
	for reg := 0; reg < nRegions; reg++ {
		var lo, hi [MaxDims]int
		outside := 0
		r := reg
		for mu := nd - 1; mu >= 0; mu-- {
			switch r % 3 {
			case 0:
				lo[mu], hi[mu] = -depth, 0
				outside++
			case 1:
				lo[mu], hi[mu] = 0, l.local[mu]
			case 2:
				lo[mu], hi[mu] = l.local[mu], l.local[mu]+depth
				outside++
			}
			r /= 3
		}
		if outside == 0 || (shape == Faces && outside > 1) {
			continue
		}
		y := lo
		for {
			c := rawCell{y: y}
			var x [MaxDims]int
			sumx := 0
			for mu := 0; mu < nd; mu++ {
				g := origin[mu] + y[mu]
				w := floorDiv(g, l.dims[mu])
				c.wrap[mu] = int8(w)
				x[mu] = g - w*l.dims[mu]
				sumx += x[mu]
			}
			o, s := l.Owner(x[:nd])
			if (owner < 0 || o == owner) && !(o == receiver && !z.twistedWrap(c.wrap)) {
				c.owner, c.site, c.par = o, int32(s), Parity(sumx%2)
				cells = append(cells, c)
			}
			// odometer over the region, last direction fastest
			mu := nd - 1
			for ; mu >= 0; mu-- {
				y[mu]++
				if y[mu] < hi[mu] {
					break
				}
				y[mu] = lo[mu]
			}
			if mu < 0 {
				break
			}
		}
	}
	slices.SortFunc(cells, func(a, b rawCell) int {
		if c := cmp.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		if c := cmp.Compare(a.par, b.par); c != 0 {
			return c
		}
		for mu := 0; mu < nd; mu++ {
			if c := cmp.Compare(a.wrap[mu], b.wrap[mu]); c != 0 {
				return c
			}
		}
		for mu := 0; mu < nd; mu++ {
			if c := cmp.Compare(a.y[mu], b.y[mu]); c != 0 {
				return c
			}
		}
		return 0
	})
	return cells
}

// twistedWrap reports whether a wrap crosses the boundary of a twisted direction.
func (z *Zone) twistedWrap(w [MaxDims]int8) bool {
	for mu := 0; mu < z.ly.lat.nd; mu++ {
		if w[mu] != 0 && z.twisted[mu] {
			return true
		}
	}
	return false
}

// Twisted reports whether direction mu may carry a boundary phase on this zone.
func (z *Zone) Twisted(mu int) bool { return z.twisted[mu] }

func (z *Zone) padIndex(y *[MaxDims]int) int {
	i := 0
	for mu := 0; mu < z.ly.lat.nd; mu++ {
		i = i*z.padExt[mu] + y[mu] + z.depth
	}
	return i
}

func (z *Zone) buildPad(raw []rawCell) {
	l := z.ly.lat
	n := 1
	for mu := 0; mu < l.nd; mu++ {
		z.padExt[mu] = l.local[mu] + 2*z.depth
		n *= z.padExt[mu]
	}
	z.padIdx = make([]int32, n)
	for i := range z.padIdx {
		z.padIdx[i] = -1
	}
	var y [MaxDims]int
	for s := 0; s < l.volume; s++ {
		z.ly.LocalCoord(s, y[:l.nd])
		z.padIdx[z.padIndex(&y)] = int32(s)
	}
	for i, c := range raw {
		z.padIdx[z.padIndex(&c.y)] = int32(l.volume + i)
	}
	// Sites of this rank reached across untwisted boundaries only: in place.
	var x [MaxDims]int
	for i := range z.padIdx {
		if z.padIdx[i] >= 0 {
			continue
		}
		k, outside, wrap := i, 0, [MaxDims]int8{}
		for mu := l.nd - 1; mu >= 0; mu-- {
			y[mu] = k%z.padExt[mu] - z.depth
			k /= z.padExt[mu]
			if y[mu] < 0 || y[mu] >= l.local[mu] {
				outside++
			}
			g := z.ly.origin[mu] + y[mu]
			w := floorDiv(g, l.dims[mu])
			wrap[mu] = int8(w)
			x[mu] = g - w*l.dims[mu]
		}
		if outside == 0 || (z.shape == Faces && outside > 1) {
			continue
		}
		if o, s := l.Owner(x[:l.nd]); o == z.ly.rank && !z.twistedWrap(wrap) {
			z.padIdx[i] = int32(s)
		}
	}
}

// buildPeers groups the receive side by owner and computes the send side by
// listing the halo cells of every rank within reach and keeping this rank's.
func (z *Zone) buildPeers(raw []rawCell) {
	l, me := z.ly.lat, z.ly.rank
	byRank := map[int]*Peer{}
	peer := func(r int) *Peer {
		if p, ok := byRank[r]; ok {
			return p
		}
		p := &Peer{Rank: r}
		byRank[r] = p
		return p
	}
	for i := 0; i < len(raw); {
		j := i
		for j < len(raw) && raw[j].owner == raw[i].owner {
			j++
		}
		p := peer(raw[i].owner)
		p.RecvLo, p.RecvOdd, p.RecvHi = i, j, j
		for k := i; k < j; k++ {
			if raw[k].par == Odd {
				p.RecvOdd = k
				break
			}
		}
		i = j
	}
	for _, r := range l.ranksWithin(z.ly.coord, z.depth, z.shape) {
		var origin [MaxDims]int
		var c [MaxDims]int
		l.RankCoord(r, c[:l.nd])
		for mu := 0; mu < l.nd; mu++ {
			origin[mu] = c[mu] * l.local[mu]
		}
		mine := z.haloCells(origin, r, me)
		if len(mine) == 0 {
			continue
		}
		p := peer(r)
		p.Send = make([]int32, len(mine))
		p.SendOdd = len(mine)
		for k, cell := range mine {
			p.Send[k] = cell.site
			if cell.par == Odd && p.SendOdd == len(mine) {
				p.SendOdd = k
			}
			if k == 0 || cell.wrap != mine[k-1].wrap || cell.par != mine[k-1].par {
				p.Wraps = append(p.Wraps, WrapRun{Lo: k, Wrap: cell.wrap})
			}
			p.Wraps[len(p.Wraps)-1].Hi = k + 1
		}
	}
	for _, p := range byRank {
		z.peers = append(z.peers, *p)
	}
	slices.SortFunc(z.peers, func(a, b Peer) int { return cmp.Compare(a.Rank, b.Rank) })
}

// ranksWithin lists the domain ranks whose halo zones of the given depth and
// shape can hold sites of the block at grid coordinate c, including c's own
// rank. A faces halo reaches along one axis only, so for Faces the ranks
// differ from c in one grid direction at most.
func (l *Lattice) ranksWithin(c [MaxDims]int, depth int, shape Shape) []int {
	var offsets [MaxDims][]int
	for mu := 0; mu < l.nd; mu++ {
		reach := (depth + l.local[mu] - 1) / l.local[mu]
		if 2*reach+1 >= l.grid[mu] {
			for g := 0; g < l.grid[mu]; g++ {
				offsets[mu] = append(offsets[mu], g)
			}
			continue
		}
		for d := -reach; d <= reach; d++ {
			offsets[mu] = append(offsets[mu], mod(c[mu]+d, l.grid[mu]))
		}
	}
	seen := map[int]bool{}
	var ranks []int
	var idx [MaxDims]int
	for {
		var g [MaxDims]int
		for mu := 0; mu < l.nd; mu++ {
			g[mu] = offsets[mu][idx[mu]]
		}
		moved := 0
		for mu := 0; mu < l.nd; mu++ {
			if g[mu] != c[mu] {
				moved++
			}
		}
		if r := l.RankAt(g[:l.nd]); !seen[r] && (shape == Box || moved <= 1) {
			seen[r] = true
			ranks = append(ranks, r)
		}
		mu := l.nd - 1
		for ; mu >= 0; mu-- {
			idx[mu]++
			if idx[mu] < len(offsets[mu]) {
				break
			}
			idx[mu] = 0
		}
		if mu < 0 {
			break
		}
	}
	slices.Sort(ranks)
	return ranks
}

// Layout returns the block the zone surrounds.
func (z *Zone) Layout() *Layout { return z.ly }

// Depth is the zone's depth d.
func (z *Zone) Depth() int { return z.depth }

// Shape is the zone's shape.
func (z *Zone) Shape() Shape { return z.shape }

// Size is the number of halo cells H.
func (z *Zone) Size() int { return len(z.cells) }

// Len is the number of site slots of a field on this zone, V + H.
func (z *Zone) Len() int { return z.ly.lat.volume + len(z.cells) }

// Cells returns the halo cells in zone order; cell i has index V+i. The slice
// is shared: do not modify it.
func (z *Zone) Cells() []Cell { return z.cells }

// CellCoord writes the unwrapped global coordinate of halo cell i (origin +
// local coordinate, possibly outside [0, L_μ)) into x.
func (z *Zone) CellCoord(i int, x []int) {
	for mu := 0; mu < z.ly.lat.nd; mu++ {
		x[mu] = z.ly.origin[mu] + int(z.coords[i][mu])
	}
}

// Peers returns the ranks this rank exchanges with, ordered by rank. The slice
// is shared: do not modify it.
func (z *Zone) Peers() []Peer { return z.peers }

// Shift returns the neighbour table of offset delta: entry s is the index in
// [0, V+H) of site s + delta. The offset must lie within the zone: |δ_μ| ≤
// depth, and for Faces along a single direction.
func (z *Zone) Shift(delta []int) ([]int32, error) {
	l := z.ly.lat
	if len(delta) != l.nd {
		return nil, fmt.Errorf("offset %v has %d components; the lattice has %d directions", delta, len(delta), l.nd)
	}
	nonzero := 0
	for mu := 0; mu < l.nd; mu++ {
		if delta[mu] < -z.depth || delta[mu] > z.depth {
			return nil, fmt.Errorf("offset %v leaves a halo of depth %d; build a deeper zone", delta, z.depth)
		}
		if delta[mu] != 0 {
			nonzero++
		}
	}
	if z.shape == Faces && nonzero > 1 {
		return nil, fmt.Errorf("offset %v is diagonal; a faces zone holds only axis offsets, build a box zone", delta)
	}
	table := make([]int32, l.volume)
	var y [MaxDims]int
	for s := 0; s < l.volume; s++ {
		z.ly.LocalCoord(s, y[:l.nd])
		for mu := 0; mu < l.nd; mu++ {
			y[mu] += delta[mu]
		}
		table[s] = z.padIdx[z.padIndex(&y)]
	}
	return table, nil
}

// Up returns the neighbour table of +e_μ (shared: do not modify).
func (z *Zone) Up(mu int) []int32 { return z.up[mu] }

// Dn returns the neighbour table of −e_μ (shared: do not modify).
func (z *Zone) Dn(mu int) []int32 { return z.dn[mu] }
