package decomp

import (
	"fmt"
	"math"
	"slices"
)

// MaxDims is the largest number of lattice directions.
const MaxDims = 4

// Parity selects sites by the parity of their global coordinate.
type Parity int

const (
	Even Parity = iota // Σ_μ x_μ even
	Odd                // Σ_μ x_μ odd
	All                // both parities
)

func (p Parity) String() string {
	switch p {
	case Even:
		return "even"
	case Odd:
		return "odd"
	case All:
		return "all"
	}
	return fmt.Sprintf("Parity(%d)", int(p))
}

// Lattice is a global lattice split over a process grid. It is the same on
// every rank and immutable.
type Lattice struct {
	nd      int
	dims    [MaxDims]int // global extents L_μ
	grid    [MaxDims]int // process grid G_μ
	local   [MaxDims]int // local extents l_μ = L_μ/G_μ
	evenOdd bool
	volume  int // local volume V
	// lexToSite[o] maps a local lexicographic index to the site index for a
	// block whose origin has parity o; siteToLex is the inverse.
	lexToSite [2][]int32
	siteToLex [2][]int32
	nEven     [2]int
}

// NewLattice checks that grid divides dims and returns the decomposition.
// With evenOdd set, every local extent must be even (even/odd
// preconditioning). Errors name dims[μ] and grid[μ] and say what would work.
func NewLattice(dims, grid []int, evenOdd bool) (*Lattice, error) {
	nd := len(dims)
	if nd < 1 || nd > MaxDims {
		return nil, fmt.Errorf("dims %v has %d directions; pfmpi supports 1 to %d (2D and 4D are the tested cases)", dims, nd, MaxDims)
	}
	if len(grid) != nd {
		return nil, fmt.Errorf("grid %v has %d entries but dims %v has %d; give one grid entry per lattice direction", grid, len(grid), dims, nd)
	}
	l := &Lattice{nd: nd, evenOdd: evenOdd, volume: 1}
	for mu := 0; mu < nd; mu++ {
		L, G := dims[mu], grid[mu]
		switch {
		case L < 1:
			return nil, fmt.Errorf("dims[%d] = %d: lattice extents must be ≥ 1", mu, L)
		case G < 1:
			return nil, fmt.Errorf("grid[%d] = %d: process-grid entries must be ≥ 1", mu, G)
		case L%G != 0:
			return nil, fmt.Errorf("dims[%d] = %d is not divisible by grid[%d] = %d; use a grid entry among the divisors %v",
				mu, L, mu, G, divisors(L))
		case evenOdd && (L/G)%2 != 0:
			return nil, fmt.Errorf("dims[%d] / grid[%d] = %d / %d = %d is odd, but even/odd preconditioning needs even local extents; "+
				"use a grid entry among %v or precondition = \"none\"", mu, mu, L, G, L/G, evenLocalDivisors(L))
		}
		l.dims[mu], l.grid[mu], l.local[mu] = L, G, L/G
		if l.volume > math.MaxInt32/(L/G) {
			return nil, fmt.Errorf("local volume %v exceeds 2³¹ sites; use a larger process grid", l.Local())
		}
		l.volume *= L / G
	}
	for o := 0; o < 2; o++ {
		l.lexToSite[o], l.siteToLex[o], l.nEven[o] = l.parityOrder(o)
	}
	return l, nil
}

// parityOrder numbers the sites of a block whose origin has parity o: even
// global parity first, each parity in local lexicographic order.
func (l *Lattice) parityOrder(o int) (lexToSite, siteToLex []int32, nEven int) {
	lexToSite = make([]int32, l.volume)
	siteToLex = make([]int32, l.volume)
	var y [MaxDims]int
	for i := 0; i < l.volume; i++ {
		l.lexCoord(i, &y)
		if (sum(y[:l.nd])+o)%2 == 0 {
			nEven++
		}
	}
	ne, no := 0, nEven
	for i := 0; i < l.volume; i++ {
		l.lexCoord(i, &y)
		s := &ne
		if (sum(y[:l.nd])+o)%2 != 0 {
			s = &no
		}
		lexToSite[i], siteToLex[*s] = int32(*s), int32(i)
		*s++
	}
	return lexToSite, siteToLex, nEven
}

// lexCoord writes the local coordinate of local lexicographic index i.
func (l *Lattice) lexCoord(i int, y *[MaxDims]int) {
	for mu := l.nd - 1; mu >= 0; mu-- {
		y[mu] = i % l.local[mu]
		i /= l.local[mu]
	}
}

// lexIndex is the local lexicographic index of local coordinate y.
func (l *Lattice) lexIndex(y *[MaxDims]int) int {
	i := 0
	for mu := 0; mu < l.nd; mu++ {
		i = i*l.local[mu] + y[mu]
	}
	return i
}

func sum(x []int) int {
	s := 0
	for _, v := range x {
		s += v
	}
	return s
}

func divisors(n int) []int {
	var d []int
	for k := 1; k <= n; k++ {
		if n%k == 0 {
			d = append(d, k)
		}
	}
	return d
}

func evenLocalDivisors(n int) []int {
	var d []int
	for _, k := range divisors(n) {
		if (n/k)%2 == 0 {
			d = append(d, k)
		}
	}
	return d
}

// NumDims is the number of directions D.
func (l *Lattice) NumDims() int { return l.nd }

// Dims returns the global extents L_μ.
func (l *Lattice) Dims() []int { return slices.Clone(l.dims[:l.nd]) }

// Grid returns the process grid G_μ.
func (l *Lattice) Grid() []int { return slices.Clone(l.grid[:l.nd]) }

// Local returns the local extents l_μ.
func (l *Lattice) Local() []int { return slices.Clone(l.local[:l.nd]) }

// EvenOdd reports whether the decomposition was built for even/odd
// preconditioning (even local extents).
func (l *Lattice) EvenOdd() bool { return l.evenOdd }

// LocalVolume is the number of sites V on each rank.
func (l *Lattice) LocalVolume() int { return l.volume }

// GlobalVolume is the number of lattice sites.
func (l *Lattice) GlobalVolume() int64 {
	v := int64(1)
	for mu := 0; mu < l.nd; mu++ {
		v *= int64(l.dims[mu])
	}
	return v
}

// DomainSize is the number of ranks that share one lattice, Π_μ G_μ.
func (l *Lattice) DomainSize() int {
	n := 1
	for mu := 0; mu < l.nd; mu++ {
		n *= l.grid[mu]
	}
	return n
}

// Replicas is the number of replicas ranks splits into (ranks / DomainSize),
// or an error if ranks is not a multiple of the domain size.
func (l *Lattice) Replicas(ranks int) (int, error) {
	d := l.DomainSize()
	if ranks < 1 || ranks%d != 0 {
		return 0, fmt.Errorf("%d ranks is not a multiple of the process grid %v (%d ranks per lattice); "+
			"run on a multiple of %d ranks (ranks = replicas × %d) or change the grid", ranks, l.Grid(), d, d, d)
	}
	return ranks / d, nil
}

// RankCoord writes the grid coordinate of domain rank r into c (len ≥ D).
func (l *Lattice) RankCoord(r int, c []int) {
	for mu := l.nd - 1; mu >= 0; mu-- {
		c[mu] = r % l.grid[mu]
		r /= l.grid[mu]
	}
}

// RankAt is the domain rank with grid coordinate c (taken modulo the grid).
func (l *Lattice) RankAt(c []int) int {
	r := 0
	for mu := 0; mu < l.nd; mu++ {
		r = r*l.grid[mu] + mod(c[mu], l.grid[mu])
	}
	return r
}

// GlobalIndex is the global lexicographic index of global coordinate x
// (taken modulo the extents).
func (l *Lattice) GlobalIndex(x []int) int64 {
	var i int64
	for mu := 0; mu < l.nd; mu++ {
		i = i*int64(l.dims[mu]) + int64(mod(x[mu], l.dims[mu]))
	}
	return i
}

// Owner returns the domain rank holding global coordinate x (taken modulo the
// extents) and the site index of x on that rank.
func (l *Lattice) Owner(x []int) (rank, site int) {
	var y [MaxDims]int
	o := 0
	for mu := 0; mu < l.nd; mu++ {
		g := mod(x[mu], l.dims[mu])
		c := g / l.local[mu]
		rank = rank*l.grid[mu] + c
		y[mu] = g - c*l.local[mu]
		o += c * l.local[mu]
	}
	return rank, int(l.lexToSite[o%2][l.lexIndex(&y)])
}

// Layout returns domain rank r's view of the lattice.
func (l *Lattice) Layout(r int) (*Layout, error) {
	if r < 0 || r >= l.DomainSize() {
		return nil, fmt.Errorf("domain rank %d out of range [0, %d)", r, l.DomainSize())
	}
	ly := &Layout{lat: l, rank: r}
	l.RankCoord(r, ly.coord[:])
	o := 0
	for mu := 0; mu < l.nd; mu++ {
		ly.origin[mu] = ly.coord[mu] * l.local[mu]
		o += ly.origin[mu]
	}
	ly.par = o % 2
	return ly, nil
}

func (l *Lattice) String() string {
	return fmt.Sprintf("%v lattice on grid %v (local %v)", l.Dims(), l.Grid(), l.Local())
}

func mod(a, n int) int {
	a %= n
	if a < 0 {
		a += n
	}
	return a
}

func floorDiv(a, n int) int {
	q := a / n
	if a%n != 0 && a < 0 {
		q--
	}
	return q
}

// Layout is one domain rank's block of the lattice: its coordinates, its site
// numbering and parities. It is immutable.
type Layout struct {
	lat    *Lattice
	rank   int
	coord  [MaxDims]int // grid coordinate
	origin [MaxDims]int // global coordinate of local site y = 0
	par    int          // parity of the origin
}

// Lattice returns the decomposition the layout belongs to.
func (ly *Layout) Lattice() *Lattice { return ly.lat }

// Rank is the domain rank of this block.
func (ly *Layout) Rank() int { return ly.rank }

// Coord returns the block's grid coordinate.
func (ly *Layout) Coord() []int { return slices.Clone(ly.coord[:ly.lat.nd]) }

// Origin returns the global coordinate of the block's first site.
func (ly *Layout) Origin() []int { return slices.Clone(ly.origin[:ly.lat.nd]) }

// Volume is the number of local sites V.
func (ly *Layout) Volume() int { return ly.lat.volume }

// EvenCount is the number of even local sites V_e; even sites have indices
// [0, V_e), odd ones [V_e, V).
func (ly *Layout) EvenCount() int { return ly.lat.nEven[ly.par] }

// Sites returns the index range [lo, hi) of the local sites of parity p (All: [0, V)).
func (ly *Layout) Sites(p Parity) (lo, hi int) {
	switch p {
	case Even:
		return 0, ly.EvenCount()
	case Odd:
		return ly.EvenCount(), ly.lat.volume
	case All:
		return 0, ly.lat.volume
	}
	panic(fmt.Sprintf("decomp: invalid parity %v", p))
}

// Parity is the global parity of local site s.
func (ly *Layout) Parity(s int) Parity {
	if s < ly.EvenCount() {
		return Even
	}
	return Odd
}

// LocalCoord writes the local coordinate y of site s into y (len ≥ D).
func (ly *Layout) LocalCoord(s int, y []int) {
	var c [MaxDims]int
	ly.lat.lexCoord(int(ly.lat.siteToLex[ly.par][s]), &c)
	copy(y[:ly.lat.nd], c[:ly.lat.nd])
}

// GlobalCoord writes the global coordinate of site s into x (len ≥ D).
func (ly *Layout) GlobalCoord(s int, x []int) {
	ly.LocalCoord(s, x)
	for mu := 0; mu < ly.lat.nd; mu++ {
		x[mu] += ly.origin[mu]
	}
}

// GlobalIndex is the global lexicographic index of site s.
func (ly *Layout) GlobalIndex(s int) int64 {
	var c [MaxDims]int
	ly.lat.lexCoord(int(ly.lat.siteToLex[ly.par][s]), &c)
	var i int64
	for mu := 0; mu < ly.lat.nd; mu++ {
		i = i*int64(ly.lat.dims[mu]) + int64(ly.origin[mu]+c[mu])
	}
	return i
}

// SiteAt is the site index of local coordinate y (each y_μ ∈ [0, l_μ)).
func (ly *Layout) SiteAt(y []int) int {
	var c [MaxDims]int
	for mu := 0; mu < ly.lat.nd; mu++ {
		if y[mu] < 0 || y[mu] >= ly.lat.local[mu] {
			panic(fmt.Sprintf("decomp: local coordinate %v outside the block %v", y[:ly.lat.nd], ly.lat.Local()))
		}
		c[mu] = y[mu]
	}
	return int(ly.lat.lexToSite[ly.par][ly.lat.lexIndex(&c)])
}

// LexToSite returns the table from local lexicographic index (direction 0
// slowest) to site index. The slice is shared: do not modify it.
func (ly *Layout) LexToSite() []int32 { return ly.lat.lexToSite[ly.par] }
