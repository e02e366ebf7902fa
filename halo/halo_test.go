package halo_test

import (
	"fmt"
	"math"
	"math/cmplx"
	"strings"
	"testing"

	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/halo"
	"pfmpi/internal/allocstest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// grids are the acceptance list's process grids. Extents are chosen so that
// some local extents are odd or smaller than the depth.
var selections = []decomp.Parity{decomp.All, decomp.Even, decomp.Odd}

// setup builds the zone and the halo for this rank.
func setup[T halo.Elem](c mpi.Comm, dims, grid []int, depth int, shape decomp.Shape, n int, phases []complex128) (*decomp.Layout, *decomp.Zone, *halo.Halo[T], error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, nil, nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, nil, nil, err
	}
	var twisted []int
	for mu, e := range phases {
		if e != 1 {
			twisted = append(twisted, mu)
		}
	}
	z, err := ly.NewZone(decomp.ZoneSpec{Depth: depth, Shape: shape, Twisted: twisted})
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := halo.New[T](c, z, n, phases)
	return ly, z, h, err
}

// value is the test field's component j at global site g.
func value[T halo.Elem](key rng.Key, g int64, j int) T {
	s := key.Stream(uint64(g))
	var z complex128
	for range j + 1 {
		z = s.ComplexNormal()
	}
	return elem[T](z)
}

// elem converts z to the element type (the real part for float64).
func elem[T halo.Elem](z complex128) T {
	var t T
	switch p := any(&t).(type) {
	case *float64:
		*p = real(z)
	case *complex128:
		*p = z
	}
	return t
}

// gatherGlobal assembles the global field (global lexicographic order, n
// values per site) from every rank's local sites and gives it to all ranks.
func gatherGlobal[T halo.Elem](c mpi.Comm, f *field.Field[T]) []T {
	global := field.Gather(c, f, 0)
	if global == nil {
		global = make([]T, int(f.Layout().Lattice().GlobalVolume())*f.PerSite())
	}
	c.Bcast(0, mpi.Bytes(global))
	return global
}

// offsets lists the stencil a zone serves.
func offsets(nd, depth int, shape decomp.Shape) [][]int {
	var out [][]int
	n := 1
	for range nd {
		n *= 2*depth + 1
	}
	for i := 0; i < n; i++ {
		d, k, nonzero := make([]int, nd), i, 0
		for mu := nd - 1; mu >= 0; mu-- {
			d[mu] = k%(2*depth+1) - depth
			k /= 2*depth + 1
			if d[mu] != 0 {
				nonzero++
			}
		}
		if nonzero > 0 && (shape == decomp.Box || nonzero == 1) {
			out = append(out, d)
		}
	}
	return out
}

func floorDiv(a, n int) int {
	q := a / n
	if a%n != 0 && a < 0 {
		q--
	}
	return q
}

// phaseOf is ε(w) = Π e_μ^{w_μ} (nil phases: periodic).
func phaseOf(phases []complex128, wrap [decomp.MaxDims]int8) complex128 {
	e := complex(1, 0)
	for mu, p := range phases {
		e *= cmplx.Pow(p, complex(float64(wrap[mu]), 0))
	}
	return e
}

func asComplex[T halo.Elem](t T) complex128 {
	switch v := any(t).(type) {
	case float64:
		return complex(v, 0)
	case complex128:
		return v
	}
	panic("unreachable")
}

// checkForward fills the local sites from global coordinates, exchanges the
// selection and compares every halo cell with the gathered global field.
func checkForward[T halo.Elem](c mpi.Comm, dims, grid []int, depth int, shape decomp.Shape, sel decomp.Parity, phases []complex128) error {
	const n = 3
	ly, z, h, err := setup[T](c, dims, grid, depth, shape, n, phases)
	if err != nil {
		return err
	}
	defer h.Close()
	key := rng.New(7, "halo-test")
	fld := field.New[T](z, n)
	f := fld.Data()
	for s := 0; s < ly.Volume(); s++ {
		for j := 0; j < n; j++ {
			f[s*n+j] = value[T](key, ly.GlobalIndex(s), j)
		}
	}
	sentinel := elem[T](complex(math.NaN(), 0))
	for i := ly.Volume() * n; i < len(f); i++ {
		f[i] = sentinel
	}
	// Two rounds: an exchange must be repeatable on the same buffers.
	h.Exchange(f, sel)
	h.Exchange(f, sel)
	global := gatherGlobal(c, fld)
	lat := ly.Lattice()
	x := make([]int, lat.NumDims())
	// Every neighbour a stencil reads, through the neighbour tables, holds the
	// boundary phase times the global field at the unwrapped coordinate
	// (halo cells of unselected parity aside).
	for _, delta := range offsets(lat.NumDims(), depth, shape) {
		tab, err := z.Shift(delta)
		if err != nil {
			return err
		}
		for s := 0; s < ly.Volume(); s++ {
			ly.GlobalCoord(s, x)
			var wrap [decomp.MaxDims]int8
			sum := 0
			for mu := range x {
				x[mu] += delta[mu]
				wrap[mu] = int8(floorDiv(x[mu], lat.Dims()[mu]))
				sum += x[mu]
			}
			nb := int(tab[s])
			if nb >= ly.Volume() && sel != decomp.All && decomp.Parity((sum%2+2)%2) != sel {
				continue
			}
			g := int(lat.GlobalIndex(x))
			e := phaseOf(phases, wrap)
			for j := 0; j < n; j++ {
				got, want := asComplex(f[nb*n+j]), e*asComplex(global[g*n+j])
				if cmplx.Abs(got-want) > 1e-15*cmplx.Abs(want) {
					return fmt.Errorf("%v %v depth %d sel %v phases %v: site %d + %v reads %v, want %v",
						grid, shape, depth, sel, phases, s, delta, got, want)
				}
			}
		}
	}
	for i, cell := range z.Cells() {
		got := f[(ly.Volume()+i)*n : (ly.Volume()+i+1)*n]
		if sel != decomp.All && cell.Parity != sel {
			for j := range got {
				if !math.IsNaN(real(asComplex(got[j]))) {
					return fmt.Errorf("%v %v depth %d sel %v: cell %d of parity %v was written", grid, shape, depth, sel, i, cell.Parity)
				}
			}
			continue
		}
		z.CellCoord(i, x)
		g := int(lat.GlobalIndex(x))
		e := phaseOf(phases, cell.Wrap)
		for j := 0; j < n; j++ {
			want := e * asComplex(global[g*n+j])
			if cmplx.Abs(asComplex(got[j])-want) > 1e-15*cmplx.Abs(want) {
				return fmt.Errorf("%v %v depth %d sel %v: cell %d (%v, wrap %v) component %d = %v, want %v",
					grid, shape, depth, sel, i, x, cell.Wrap, j, got[j], want)
			}
		}
	}
	return nil
}

func TestForwardAgainstGlobalField(t *testing.T) {
	antiperiodic := func(nd int) []complex128 {
		p := make([]complex128, nd)
		for mu := range p {
			p[mu] = 1
		}
		p[0] = -1
		return p
	}
	for _, g := range mpitest.Grids() {
		nd := len(g.Dims)
		twisted := antiperiodic(nd)
		twisted[nd-1] = cmplx.Exp(complex(0, math.Pi/3)) // a θ-twist, complex fields only
		for _, shape := range []decomp.Shape{decomp.Faces, decomp.Box} {
			t.Run(fmt.Sprintf("%v/%v/%v", g.Dims, g.Grid, shape), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					var first error
					note := func(err error) {
						if err != nil && first == nil {
							first = err
						}
					}
					for depth := 1; depth <= 3; depth++ {
						for _, sel := range selections {
							note(checkForward[complex128](c, g.Dims, g.Grid, depth, shape, sel, antiperiodic(nd)))
							note(checkForward[complex128](c, g.Dims, g.Grid, depth, shape, sel, twisted))
							note(checkForward[float64](c, g.Dims, g.Grid, depth, shape, sel, antiperiodic(nd)))
							note(checkForward[float64](c, g.Dims, g.Grid, depth, shape, sel, nil))
						}
					}
					return first
				})
			})
		}
	}
}

// checkAdjoint verifies ⟨H x, y⟩ = ⟨x, Hᵀ y⟩ summed over all ranks, and that
// Hᵀ zeroes exactly the selected halo cells.
func checkAdjoint[T halo.Elem](c mpi.Comm, dims, grid []int, depth int, shape decomp.Shape, sel decomp.Parity, phases []complex128) error {
	const n = 2
	ly, z, h, err := setup[T](c, dims, grid, depth, shape, n, phases)
	if err != nil {
		return err
	}
	defer h.Close()
	v := ly.Volume() * n
	x, y := make([]T, z.Len()*n), make([]T, z.Len()*n)
	for i := range x {
		if i < v {
			x[i] = value[T](rng.New(1, "x"), int64(i), c.Rank())
		}
		y[i] = value[T](rng.New(2, "y"), int64(i), c.Rank())
	}
	hx := append([]T(nil), x...)
	h.Exchange(hx, sel)
	hty := append([]T(nil), y...)
	h.Adjoint(hty, sel)
	var lhs, rhs complex128
	for i := range hx {
		lhs += cmplx.Conj(asComplex(hx[i])) * asComplex(y[i])
	}
	for i := 0; i < v; i++ {
		rhs += cmplx.Conj(asComplex(x[i])) * asComplex(hty[i])
	}
	// With the selection, H leaves unselected halo cells as they were (zero
	// in x): the identity holds on the selected cells only, so remove the
	// unselected cells' share from the left side.
	for i, cell := range z.Cells() {
		if sel != decomp.All && cell.Parity != sel {
			for j := 0; j < n; j++ {
				k := (ly.Volume()+i)*n + j
				lhs -= cmplx.Conj(asComplex(hx[k])) * asComplex(y[k])
				if hty[k] != y[k] {
					return fmt.Errorf("adjoint changed unselected cell %d", i)
				}
			}
		} else {
			for j := 0; j < n; j++ {
				if k := (ly.Volume()+i)*n + j; hty[k] != 0 {
					return fmt.Errorf("adjoint left selected cell %d non-zero", i)
				}
			}
		}
	}
	sums := []complex128{lhs, rhs}
	mpi.AllreduceComplex(c, mpi.Sum, sums)
	if d := cmplx.Abs(sums[0] - sums[1]); d > 1e-13*cmplx.Abs(sums[0]) {
		return fmt.Errorf("%v %v depth %d sel %v %T: ⟨Hx, y⟩ = %v, ⟨x, Hᵀy⟩ = %v", grid, shape, depth, sel, x[0], sums[0], sums[1])
	}
	return nil
}

func TestAdjointIdentity(t *testing.T) {
	for _, g := range mpitest.Grids() {
		nd := len(g.Dims)
		phases := make([]complex128, nd)
		for mu := range phases {
			phases[mu] = 1
		}
		phases[0] = -1
		twisted := append([]complex128(nil), phases...)
		twisted[nd-1] = cmplx.Exp(complex(0, 0.7))
		for _, shape := range []decomp.Shape{decomp.Faces, decomp.Box} {
			t.Run(fmt.Sprintf("%v/%v/%v", g.Dims, g.Grid, shape), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					var first error
					for depth := 1; depth <= 3; depth++ {
						for _, sel := range selections {
							for _, err := range []error{
								checkAdjoint[complex128](c, g.Dims, g.Grid, depth, shape, sel, twisted),
								checkAdjoint[float64](c, g.Dims, g.Grid, depth, shape, sel, phases),
							} {
								if err != nil && first == nil {
									first = err
								}
							}
						}
					}
					return first
				})
			})
		}
	}
}

func TestNewErrors(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		if _, _, _, err := setup[float64](c, []int{8, 8}, []int{2, 1}, 1, decomp.Faces, 1, []complex128{1i, 1}); err == nil {
			return fmt.Errorf("a complex phase on a real field must be refused")
		}
		if _, _, _, err := setup[complex128](c, []int{8, 8}, []int{2, 1}, 1, decomp.Faces, 1, []complex128{2, 1}); err == nil {
			return fmt.Errorf("a phase of modulus 2 must be refused")
		}
		if _, _, _, err := setup[complex128](c, []int{8, 8}, []int{1, 1}, 1, decomp.Faces, 1, nil); err == nil {
			return fmt.Errorf("a 2-rank communicator on a 1-rank grid must be refused")
		}
		lat, _ := decomp.NewLattice([]int{8, 8}, []int{2, 1}, false)
		ly, _ := lat.Layout(c.Rank())
		z, _ := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces}) // periodic: no twist
		if _, err := halo.New[complex128](c, z, 1, []complex128{-1, 1}); err == nil || !strings.Contains(err.Error(), "Twisted") {
			return fmt.Errorf("an antiperiodic phase on an untwisted zone must be refused: %v", err)
		}
		return nil
	})
}

func TestNoAllocation(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		ly, z, h, err := setup[complex128](c, []int{8, 8}, []int{2, 1}, 1, decomp.Faces, 4, []complex128{-1, 1})
		if err != nil {
			return err
		}
		_ = ly
		f := make([]complex128, z.Len()*4)
		allocs := allocstest.PerRun(20, func() {
			h.Exchange(f, decomp.All)
			h.Exchange(f, decomp.Odd)
			h.Adjoint(f, decomp.Even)
		})
		h.Close()
		if allocs != 0 {
			return fmt.Errorf("%v allocations per exchange round", allocs)
		}
		return nil
	})
}

// TestSelfTest: the check that `pfmpi check` runs passes on every test grid
// (the other tests here prove the exchanges it relies on).
func TestSelfTest(t *testing.T) {
	for _, g := range mpitest.Grids() {
		t.Run(fmt.Sprintf("%v/%v", g.Dims, g.Grid), func(t *testing.T) {
			mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
				lat, err := decomp.NewLattice(g.Dims, g.Grid, false)
				if err != nil {
					return err
				}
				return halo.SelfTest(c, c, lat)
			})
		})
	}
}
