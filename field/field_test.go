package field_test

import (
	"fmt"
	"math"
	"testing"

	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// newField builds a field with n values per site on this rank's block.
func newField[T field.Elem](c mpi.Comm, dims, grid []int, n int) (*field.Field[T], error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	z, err := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces})
	if err != nil {
		return nil, err
	}
	return field.New[T](z, n), nil
}

// TestGaussianFieldIsGridIndependent generates real and complex Gaussian
// fields on every grid and compares the gathered result bitwise with the
// field generated on a single rank.
func TestGaussianFieldIsGridIndependent(t *testing.T) {
	key := rng.New(2026, "gaussian-field")
	for _, g := range mpitest.Grids() {
		t.Run(fmt.Sprintf("%v/%v", g.Dims, g.Grid), func(t *testing.T) {
			mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
				re, err := newField[float64](c, g.Dims, g.Grid, 3)
				if err != nil {
					return err
				}
				cx, _ := newField[complex128](c, g.Dims, g.Grid, 2)
				field.FillNormal(re, key)
				field.FillComplexNormal(cx, key.Derive(1))
				gotRe, gotCx := field.Gather(c, re, 0), field.Gather(c, cx, 0)

				// The reference: the same fields on a one-rank grid.
				self := c.Split(c.Rank(), 0)
				defer self.Free()
				ones := make([]int, len(g.Dims))
				for i := range ones {
					ones[i] = 1
				}
				re1, _ := newField[float64](self, g.Dims, ones, 3)
				cx1, _ := newField[complex128](self, g.Dims, ones, 2)
				field.FillNormal(re1, key)
				field.FillComplexNormal(cx1, key.Derive(1))
				wantRe, wantCx := field.Gather(self, re1, 0), field.Gather(self, cx1, 0)

				if c.Rank() != 0 {
					return nil
				}
				for i := range wantRe {
					if math.Float64bits(gotRe[i]) != math.Float64bits(wantRe[i]) {
						return fmt.Errorf("real field value %d: %v on grid %v, %v on one rank", i, gotRe[i], g.Grid, wantRe[i])
					}
				}
				for i := range wantCx {
					if math.Float64bits(real(gotCx[i])) != math.Float64bits(real(wantCx[i])) ||
						math.Float64bits(imag(gotCx[i])) != math.Float64bits(imag(wantCx[i])) {
						return fmt.Errorf("complex field value %d: %v on grid %v, %v on one rank", i, gotCx[i], g.Grid, wantCx[i])
					}
				}
				// And it is a Gaussian field: mean 0 and variance 1 within 5σ.
				var s, s2 float64
				for _, v := range gotRe {
					s += v
					s2 += v * v
				}
				n := float64(len(gotRe))
				if math.Abs(s/n) > 5/math.Sqrt(n) || math.Abs(s2/n-1) > 5*math.Sqrt(2/n) {
					return fmt.Errorf("field moments: mean %v, variance %v", s/n, s2/n)
				}
				return nil
			})
		})
	}
}

func TestScatterGatherRoundTrip(t *testing.T) {
	for _, g := range mpitest.Grids() {
		t.Run(fmt.Sprintf("%v/%v", g.Dims, g.Grid), func(t *testing.T) {
			mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
				const n = 2
				f, err := newField[complex128](c, g.Dims, g.Grid, n)
				if err != nil {
					return err
				}
				ly := f.Layout()
				var global []complex128
				if c.Rank() == 0 {
					global = make([]complex128, int(ly.Lattice().GlobalVolume())*n)
					for i := range global {
						global[i] = complex(float64(i/n), float64(i%n))
					}
				}
				field.Scatter(c, f, 0, global)
				for s := 0; s < ly.Volume(); s++ {
					g := float64(ly.GlobalIndex(s))
					for j, v := range f.Site(s) {
						if v != complex(g, float64(j)) {
							return fmt.Errorf("site %d (global %v) value %d = %v after Scatter", s, g, j, v)
						}
					}
				}
				back := field.Gather(c, f, 0)
				if c.Rank() == 0 {
					for i := range global {
						if back[i] != global[i] {
							return fmt.Errorf("Gather(Scatter(x))[%d] = %v, want %v", i, back[i], global[i])
						}
					}
				}
				// Parity views are the halves of the local sites.
				if len(f.Parity(decomp.Even))+len(f.Parity(decomp.Odd)) != len(f.Local()) {
					return fmt.Errorf("parity blocks do not tile the local sites")
				}
				return nil
			})
		})
	}
}

// TestSiteVectorsAreGridIndependent fills even-site vectors on two grids and
// requires the same value at every global site, equal to the All-parity fill.
func TestSiteVectorsAreGridIndependent(t *testing.T) {
	key := rng.New(3, "sites")
	byGlobal := map[int64]complex128{}
	for _, grid := range [][]int{{1, 1}, {2, 1}, {1, 2}} {
		ranks := grid[0] * grid[1]
		got := make([]map[int64]complex128, ranks)
		mpitest.Run(t, ranks, func(c mpi.Comm) error {
			lat, err := decomp.NewLattice([]int{4, 8}, grid, true)
			if err != nil {
				return err
			}
			ly, err := lat.Layout(c.Rank())
			if err != nil {
				return err
			}
			even := make([]complex128, ly.EvenCount()*2)
			field.FillComplexNormalSites(even, ly, decomp.Even, 2, key)
			all := make([]complex128, ly.Volume()*2)
			field.FillComplexNormalSites(all, ly, decomp.All, 2, key)
			m := map[int64]complex128{}
			for s := 0; s < ly.EvenCount(); s++ {
				if even[2*s+1] != all[2*s+1] {
					return fmt.Errorf("even and full vectors differ at site %d", s)
				}
				m[ly.GlobalIndex(s)] = even[2*s+1]
			}
			got[c.Rank()] = m
			return nil
		})
		for _, m := range got {
			for g, v := range m {
				if w, ok := byGlobal[g]; ok && w != v {
					t.Fatalf("grid %v: site %d holds %v, another grid %v", grid, g, v, w)
				}
				byGlobal[g] = v
			}
		}
	}
	if len(byGlobal) != 16 {
		t.Errorf("%d even sites seen, want 16", len(byGlobal))
	}
}
