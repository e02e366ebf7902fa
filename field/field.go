package field

import (
	"fmt"
	"pfmpi/hugemem"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// Elem is the element type of a field: real or complex double precision.
type Elem = halo.Elem

// Field is a lattice field with n values per site on a zone.
type Field[T Elem] struct {
	zone *decomp.Zone
	n    int
	data []T
}

// New returns a zero field with n values per site on zone.
func New[T Elem](zone *decomp.Zone, n int) *Field[T] {
	if n < 1 {
		panic(fmt.Sprintf("field: %d values per site; need at least 1", n))
	}
	return &Field[T]{zone: zone, n: n, data: hugemem.Make[T](zone.Len() * n)}
}

// Zone returns the zone the field lives on.
func (f *Field[T]) Zone() *decomp.Zone { return f.zone }

// Layout returns the rank's block of the lattice.
func (f *Field[T]) Layout() *decomp.Layout { return f.zone.Layout() }

// PerSite is the number of values per site n.
func (f *Field[T]) PerSite() int { return f.n }

// Data returns all (V+H)·n values, halo cells included.
func (f *Field[T]) Data() []T { return f.data }

// Local returns the V·n values of the local sites.
func (f *Field[T]) Local() []T { return f.data[:f.zone.Layout().Volume()*f.n] }

// Parity returns the values of the local sites of parity p (a contiguous block).
func (f *Field[T]) Parity(p decomp.Parity) []T {
	lo, hi := f.zone.Layout().Sites(p)
	return f.data[lo*f.n : hi*f.n]
}

// Site returns the n values of site (or halo cell) s.
func (f *Field[T]) Site(s int) []T { return f.data[s*f.n : (s+1)*f.n] }

// Clone returns a deep copy.
func (f *Field[T]) Clone() *Field[T] {
	return &Field[T]{zone: f.zone, n: f.n, data: append([]T(nil), f.data...)}
}

// Fill sets every local value from the site's stream: value j of the site with
// global index g is the (j+1)-th call of draw on key.Stream(g). The halo is
// left untouched.
func Fill[T Elem](f *Field[T], key rng.Key, draw func(*rng.Stream) T) {
	ly := f.zone.Layout()
	for s := 0; s < ly.Volume(); s++ {
		st := key.Stream(uint64(ly.GlobalIndex(s)))
		v := f.Site(s)
		for j := range v {
			v[j] = draw(&st)
		}
	}
}

// FillNormal fills the local values with standard normal numbers.
func FillNormal(f *Field[float64], key rng.Key) { Fill(f, key, (*rng.Stream).Normal) }

// FillComplexNormal fills the local values with complex normal numbers of
// density exp(−|z|²)/π.
func FillComplexNormal(f *Field[complex128], key rng.Key) {
	Fill(f, key, (*rng.Stream).ComplexNormal)
}

// checkComm verifies that c is the domain communicator of f's lattice.
func checkComm[T Elem](c mpi.Comm, f *Field[T]) {
	ly := f.zone.Layout()
	if c.Size() != ly.Lattice().DomainSize() || c.Rank() != ly.Rank() {
		panic(fmt.Sprintf("field: communicator rank %d of %d is not domain rank %d of the %v grid",
			c.Rank(), c.Size(), ly.Rank(), ly.Lattice().Grid()))
	}
}

// Gather returns on rank root the global array of f's local values in
// lexicographic site order (n values per site), and nil on the other ranks.
// It is collective over the domain communicator c.
func Gather[T Elem](c mpi.Comm, f *Field[T], root int) []T {
	checkComm(c, f)
	ly, n := f.zone.Layout(), f.n
	v := ly.Volume()
	block := make([]T, v*n)
	for lex, s := range ly.LexToSite() {
		copy(block[lex*n:(lex+1)*n], f.Site(int(s)))
	}
	var blocks []T
	if c.Rank() == root {
		blocks = make([]T, c.Size()*v*n)
	}
	c.Gather(root, mpi.Bytes(block), mpi.Bytes(blocks))
	if c.Rank() != root {
		return nil
	}
	global := make([]T, int(ly.Lattice().GlobalVolume())*n)
	forEachBlockSite(ly.Lattice(), func(r, lex int, g int64) {
		copy(global[int(g)*n:(int(g)+1)*n], blocks[(r*v+lex)*n:(r*v+lex+1)*n])
	})
	return global
}

// Scatter sets f's local values from the global array on rank root
// (lexicographic site order, n values per site; ignored on other ranks). It is
// collective over the domain communicator c. The halo is left untouched.
func Scatter[T Elem](c mpi.Comm, f *Field[T], root int, global []T) {
	checkComm(c, f)
	ly, n := f.zone.Layout(), f.n
	v := ly.Volume()
	var blocks []T
	if c.Rank() == root {
		if want := int(ly.Lattice().GlobalVolume()) * n; len(global) != want {
			panic(fmt.Sprintf("field: Scatter of %d values; the %v lattice with %d per site needs %d",
				len(global), ly.Lattice().Dims(), n, want))
		}
		blocks = make([]T, c.Size()*v*n)
		forEachBlockSite(ly.Lattice(), func(r, lex int, g int64) {
			copy(blocks[(r*v+lex)*n:(r*v+lex+1)*n], global[int(g)*n:(int(g)+1)*n])
		})
	}
	block := make([]T, v*n)
	c.Scatter(root, mpi.Bytes(blocks), mpi.Bytes(block))
	for lex, s := range ly.LexToSite() {
		copy(f.Site(int(s)), block[lex*n:(lex+1)*n])
	}
}

// forEachBlockSite calls fn for every site of every rank's block with the
// rank, the site's local lexicographic index and its global index.
func forEachBlockSite(lat *decomp.Lattice, fn func(r, lex int, g int64)) {
	nd := lat.NumDims()
	local := lat.Local()
	coord, x := make([]int, nd), make([]int, nd)
	for r := 0; r < lat.DomainSize(); r++ {
		lat.RankCoord(r, coord)
		for lex := 0; lex < lat.LocalVolume(); lex++ {
			k := lex
			for mu := nd - 1; mu >= 0; mu-- {
				x[mu] = coord[mu]*local[mu] + k%local[mu]
				k /= local[mu]
			}
			fn(r, lex, lat.GlobalIndex(x))
		}
	}
}

// FillComplexNormalSites fills dst, a vector of the local sites of parity p
// with n values per site (in the layout's order), with complex normal
// numbers of density exp(−|z|²)/π: value j of the site with global index g
// is the (j+1)-th draw of key.Stream(g), so the vector does not depend on
// the process grid.
func FillComplexNormalSites(dst []complex128, ly *decomp.Layout, p decomp.Parity, n int, key rng.Key) {
	lo, hi := ly.Sites(p)
	if len(dst) != (hi-lo)*n {
		panic(fmt.Sprintf("field: %d values for %d sites × %d", len(dst), hi-lo, n))
	}
	for s := lo; s < hi; s++ {
		st := key.Stream(uint64(ly.GlobalIndex(s)))
		for j := 0; j < n; j++ {
			dst[(s-lo)*n+j] = st.ComplexNormal()
		}
	}
}
