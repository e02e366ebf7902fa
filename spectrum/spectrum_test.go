package spectrum_test

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
	"pfmpi/spectrum"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

func wilson(c mpi.Comm, dims, grid []int, nc int, kappa float64) (*dslash.Wilson, error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	sp, err := gauge.NewSpace(c, ly, nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	u.SetHot(rng.New(61, "spectrum-gauge"))
	return dslash.NewWilson(u, kappa)
}

func ranks(g []int) int {
	n := 1
	for _, x := range g {
		n *= x
	}
	return n
}

var cases = []struct {
	dims, grid []int
	nc         int
}{
	{[]int{4, 4}, []int{2, 1}, 1},
	{[]int{4, 4}, []int{1, 2}, 3},
	{[]int{2, 2, 2, 2}, []int{2, 1, 1, 1}, 3},
	{[]int{4, 2, 2, 2}, []int{1, 1, 1, 1}, 1},
}

// TestDeterminants: det D = det D_sc (Eq. 34), det D is real (γ5-Hermiticity),
// and log det DD† = 2 log|det D|, from dense matrices built on several grids.
func TestDeterminants(t *testing.T) {
	for _, c := range cases {
		t.Run(fmt.Sprint(c.dims, c.grid, c.nc), func(t *testing.T) {
			mpitest.Run(t, ranks(c.grid), func(comm mpi.Comm) error {
				w, err := wilson(comm, c.dims, c.grid, c.nc, 0.22)
				if err != nil {
					return err
				}
				defer w.Close()
				ly, n := w.Layout(), w.PerSite()
				d, err := spectrum.Build(comm, ly, decomp.All, n, w.M)
				if err != nil {
					return err
				}
				sc := dslash.NewSchur(w)
				dsc, err := spectrum.Build(comm, ly, decomp.Even, n, sc.M)
				if err != nil {
					return err
				}
				m := dslash.NewNormal(w, 0, ly.Volume()*n)
				dm, err := spectrum.Build(comm, ly, decomp.All, n, m.Apply)
				if err != nil {
					return err
				}
				if comm.Rank() != 0 {
					return nil
				}
				la, pa := d.LogDet()
				lb, pb := dsc.LogDet()
				lm, pm := dm.LogDet()
				if math.Abs(la-lb) > 1e-10*math.Abs(la) || math.Abs(math.Remainder(pa-pb, 2*math.Pi)) > 1e-9 {
					return fmt.Errorf("det D = e^(%v + i%v), det D_sc = e^(%v + i%v)", la, pa, lb, pb)
				}
				if math.Abs(math.Sin(pa)) > 1e-9 {
					return fmt.Errorf("det D has phase %v; γ5-Hermiticity makes it real", pa)
				}
				if math.Abs(lm-2*la) > 1e-10*math.Abs(lm) || math.Abs(math.Sin(pm)) > 1e-9 || math.Cos(pm) < 0 {
					return fmt.Errorf("log det DD† = %v (phase %v), 2 log|det D| = %v", lm, pm, 2*la)
				}
				return nil
			})
		})
	}
}

// TestIterativeAgainstDense: φ†M⁻¹φ by CG equals the dense solve, and the
// Lanczos extremes of M equal the ends of the dense spectrum.
func TestIterativeAgainstDense(t *testing.T) {
	for _, c := range cases {
		t.Run(fmt.Sprint(c.dims, c.grid, c.nc), func(t *testing.T) {
			mpitest.Run(t, ranks(c.grid), func(comm mpi.Comm) error {
				w, err := wilson(comm, c.dims, c.grid, c.nc, 0.2)
				if err != nil {
					return err
				}
				defer w.Close()
				ly, n := w.Layout(), w.PerSite()
				for _, eo := range []bool{false, true} {
					var a dslash.Matrix = w
					p, size := decomp.All, ly.Volume()*n
					if eo {
						a, p, size = dslash.NewSchur(w), decomp.Even, ly.EvenCount()*n
					}
					m := dslash.NewNormal(a, 0.001, size)
					dm, err := spectrum.Build(comm, ly, p, n, m.Apply)
					if err != nil {
						return err
					}
					// φ from global-site streams, in the dense basis order on rank 0.
					phi := make([]complex128, size)
					lo, _ := ly.Sites(p)
					for s := lo; s < lo+size/n; s++ {
						st := rng.New(62, "phi").Stream(uint64(ly.GlobalIndex(s)))
						for i := 0; i < n; i++ {
							phi[(s-lo)*n+i] = st.ComplexNormal()
						}
					}
					x := make([]complex128, size)
					if _, err := solver.NewCG(comm, size).Solve(m, x, phi, 1e-13, 5000); err != nil {
						return err
					}
					cgValue := real(solver.Dot(comm, phi, x))
					ext, err := spectrum.Extremes(comm, m, phi, 1e-10, 2000)
					if err != nil {
						return err
					}
					// The dense references on rank 0: φ in basis order.
					basis, err := spectrum.NewBasis(comm, ly, p, n)
					if err != nil {
						return err
					}
					phiAll := basis.Gather(phi)
					if comm.Rank() != 0 {
						continue
					}
					glob := dm.Solve(phiAll)
					var denseValue complex128
					for i := range glob {
						denseValue += cmplx.Conj(phiAll[i]) * glob[i]
					}
					if math.Abs(cgValue-real(denseValue)) > 1e-10*math.Abs(cgValue) {
						return fmt.Errorf("eo=%v: φ†M⁻¹φ = %v by CG, %v dense", eo, cgValue, denseValue)
					}
					vals, err := dm.HermitianEigenvalues()
					if err != nil {
						return err
					}
					lmin, lmax := vals[0], vals[len(vals)-1]
					if math.Abs(ext.Min-lmin) > 1e-8*lmin || math.Abs(ext.Max-lmax) > 1e-8*lmax {
						return fmt.Errorf("eo=%v: Lanczos [%v, %v] after %d steps, dense spectrum [%v, %v]", eo, ext.Min, ext.Max, ext.Iterations, lmin, lmax)
					}
				}
				return nil
			})
		})
	}
}
