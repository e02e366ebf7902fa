package solver_test

import (
	"fmt"
	"math"
	"math/cmplx"
	"strings"
	"testing"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/field"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// wilson builds the Wilson operator on a near-identity gauge field (hot
// fields at κ near the critical value are too ill-conditioned for tests).
func wilson(c mpi.Comm, dims, grid []int, nc int, kappa float64) (*dslash.Wilson, error) {
	sp, err := latticetest.Space(c, dims, grid, false, nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	u.SetNearIdentity(rng.New(51, "solver-gauge"), 0.6)
	return dslash.NewWilson(u, kappa)
}

func randomVector(ly *decomp.Layout, p decomp.Parity, n int, key rng.Key) []complex128 {
	lo, hi := ly.Sites(p)
	x := make([]complex128, (hi-lo)*n)
	field.FillComplexNormalSites(x, ly, p, n, key)
	return x
}

// globalValues maps each local value to its global site for comparisons
// across grids.
func byGlobalSite(ly *decomp.Layout, p decomp.Parity, n int, x []complex128) map[int64][]complex128 {
	lo, hi := ly.Sites(p)
	m := map[int64][]complex128{}
	for s := lo; s < hi; s++ {
		m[ly.GlobalIndex(s)] = x[(s-lo)*n : (s-lo+1)*n]
	}
	return m
}

func TestCGAndMultiShift(t *testing.T) {
	const tol = 1e-10
	shifts := []float64{0, 0.001, 0.05, 0.4}
	for _, c := range []struct {
		dims, grid []int
		nc         int
	}{
		{[]int{8, 8}, []int{2, 2}, 1},
		{[]int{8, 4}, []int{1, 2}, 3},
		{[]int{4, 4, 4, 4}, []int{2, 1, 1, 2}, 3},
	} {
		t.Run(fmt.Sprint(c.dims, c.nc), func(t *testing.T) {
			mpitest.Run(t, ranks(c.grid), func(comm mpi.Comm) error {
				w, err := wilson(comm, c.dims, c.grid, c.nc, 0.12)
				if err != nil {
					return err
				}
				defer w.Close()
				ly, n := w.Layout(), w.PerSite()
				size := ly.Volume() * n
				m := dslash.NewNormal(w, 0, size)
				b := randomVector(ly, decomp.All, n, rng.New(1, "b"))
				// CG on M = DD†
				x := make([]complex128, size)
				res, err := solver.NewCG(comm, size).Solve(m, x, b, tol, 1000)
				if err != nil {
					return err
				}
				if res.Residual > tol {
					return fmt.Errorf("CG true residual %g > %g after %d iterations", res.Residual, tol, res.Iterations)
				}
				// Multi-shift: every shift converged by its true residual, and
				// equal to a separate CG solve of M + σ.
				xs := make([][]complex128, len(shifts))
				for i := range xs {
					xs[i] = make([]complex128, size)
				}
				results, err := solver.NewMultiShiftCG(comm, size).Solve(m, shifts, xs, b, tol, 1000)
				if err != nil {
					return err
				}
				for i, sigma := range shifts {
					if results[i].Residual > tol {
						return fmt.Errorf("shift %g: true residual %g", sigma, results[i].Residual)
					}
					y := make([]complex128, size)
					if _, err := solver.NewCG(comm, size).Solve(dslash.NewNormal(w, sigma, size), y, b, tol/10, 1000); err != nil {
						return err
					}
					diff := make([]complex128, size)
					for j := range diff {
						diff[j] = y[j] - xs[i][j]
					}
					if d := math.Sqrt(solver.Norm2(comm, diff) / solver.Norm2(comm, y)); d > 10*tol {
						return fmt.Errorf("shift %g: multi-shift and CG solutions differ by %g", sigma, d)
					}
					if i > 0 && results[i].Iterations > results[0].Iterations {
						return fmt.Errorf("shift %g took more iterations (%d) than shift 0 (%d)", sigma, results[i].Iterations, results[0].Iterations)
					}
				}
				// The same solve on one rank gives the same solution.
				self := comm.Split(comm.Rank(), 0)
				defer self.Free()
				w1, err := wilson(self, c.dims, nil, c.nc, 0.12)
				if err != nil {
					return err
				}
				defer w1.Close()
				size1 := w1.Layout().Volume() * n
				b1 := randomVector(w1.Layout(), decomp.All, n, rng.New(1, "b"))
				x1 := make([]complex128, size1)
				if _, err := solver.NewCG(self, size1).Solve(dslash.NewNormal(w1, 0, size1), x1, b1, tol, 1000); err != nil {
					return err
				}
				ref := byGlobalSite(w1.Layout(), decomp.All, n, x1)
				for g, v := range byGlobalSite(ly, decomp.All, n, x) {
					for i := range v {
						if cmplx.Abs(v[i]-ref[g][i]) > 1e-8 {
							return fmt.Errorf("site %d: %v on the grid, %v on one rank", g, v[i], ref[g][i])
						}
					}
				}
				return nil
			})
		})
	}
}

func TestNonConvergenceIsAnError(t *testing.T) {
	mpitest.Run(t, 1, func(comm mpi.Comm) error {
		w, err := wilson(comm, []int{8, 8}, nil, 1, 0.12)
		if err != nil {
			return err
		}
		defer w.Close()
		size := w.Layout().Volume() * w.PerSite()
		b := randomVector(w.Layout(), decomp.All, w.PerSite(), rng.New(1, "b"))
		x := make([]complex128, size)
		_, err = solver.NewCG(comm, size).Solve(dslash.NewNormal(w, 0, size), x, b, 1e-12, 3)
		if err == nil || !strings.Contains(err.Error(), "did not converge in 3 iterations: true residual") {
			return fmt.Errorf("CG with 3 iterations: %v", err)
		}
		return nil
	})
}

// TestSchurSolveEqualsFullSolve solves D x = b directly (x = D†(DD†)⁻¹b) and
// through the Schur complement (x_e = D_sc⁻¹(b_e − D_eo b_o),
// x_o = b_o − D_oe x_e).
func TestSchurSolveEqualsFullSolve(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		nc         int
	}{
		{[]int{8, 8}, []int{2, 1}, 1},
		{[]int{4, 4, 4, 4}, []int{1, 2, 1, 1}, 3},
	} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := setupEO(comm, c.dims, c.grid, c.nc)
			if err != nil {
				return err
			}
			defer w.Close()
			ly, n := w.Layout(), w.PerSite()
			size, ve := ly.Volume()*n, ly.EvenCount()*n
			b := randomVector(ly, decomp.All, n, rng.New(2, "b"))
			// full
			y := make([]complex128, size)
			if _, err := solver.NewCG(comm, size).Solve(dslash.NewNormal(w, 0, size), y, b, 1e-12, 2000); err != nil {
				return err
			}
			x := make([]complex128, size)
			w.Mdag(x, y)
			// Schur
			sc := dslash.NewSchur(w)
			rhs := make([]complex128, ve)
			w.Meo(rhs, b[ve:], false)
			for i := range rhs {
				rhs[i] = b[i] - rhs[i]
			}
			ye := make([]complex128, ve)
			if _, err := solver.NewCG(comm, ve).Solve(dslash.NewNormal(sc, 0, ve), ye, rhs, 1e-12, 2000); err != nil {
				return err
			}
			xs := make([]complex128, size)
			sc.Mdag(xs[:ve], ye)
			w.Moe(xs[ve:], xs[:ve], false)
			for i := ve; i < size; i++ {
				xs[i] = b[i] - xs[i]
			}
			diff := make([]complex128, size)
			for i := range diff {
				diff[i] = xs[i] - x[i]
			}
			if d := math.Sqrt(solver.Norm2(comm, diff) / solver.Norm2(comm, x)); d > 1e-10 {
				return fmt.Errorf("Schur and full solutions differ by %g", d)
			}
			return nil
		})
	}
}

func ranks(grid []int) int {
	n := 1
	for _, g := range grid {
		n *= g
	}
	return n
}

func setupEO(c mpi.Comm, dims, grid []int, nc int) (*dslash.Wilson, error) {
	return wilson(c, dims, grid, nc, 0.12)
}

// TestPseudofermionForce: for S = φ†(M + μ)⁻¹φ with M = DD† (and with the
// Schur complement, M_sc = D_sc D_sc†), the force from MDeriv matches the
// symmetric difference of S along U → exp(εX)U.
func TestPseudofermionForce(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		nc         int
		schur      bool
	}{
		{[]int{4, 4}, []int{2, 1}, 1, false},
		{[]int{4, 4}, []int{1, 2}, 3, false},
		{[]int{4, 4}, []int{2, 1}, 1, true},
		{[]int{4, 2, 2, 4}, []int{2, 1, 1, 1}, 3, true},
	} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := wilson(comm, c.dims, c.grid, c.nc, 0.15)
			if err != nil {
				return err
			}
			defer w.Close()
			const mu = 0.01
			ly, n := w.Layout(), w.PerSite()
			size, ve := ly.Volume()*n, ly.EvenCount()*n
			var a dslash.Matrix = w
			vsize := size
			p := decomp.All
			if c.schur {
				a, vsize, p = dslash.NewSchur(w), ve, decomp.Even
			}
			phi := randomVector(ly, p, n, rng.New(3, "phi"))
			cg := solver.NewCG(comm, vsize)
			action := func() (float64, []complex128) {
				x := make([]complex128, vsize)
				if _, err := cg.Solve(dslash.NewNormal(a, mu, vsize), x, phi, 1e-13, 5000); err != nil {
					panic(err)
				}
				return real(solver.Dot(comm, phi, x)), x
			}
			_, x := action()
			f := w.Gauge().Space().NewAlgebra()
			y := make([]complex128, vsize)
			a.Mdag(y, x) // Y = A†X
			if !c.schur {
				// dS = −2 Re⟨X, dD Y⟩
				w.MDeriv(f, x, y, -2)
			} else {
				// dS = −2 Re⟨X, dD_sc Y⟩ = 2 Re[⟨X, dD_eo Z⟩ + ⟨D_eo†X, dD_oe Y⟩], Z = D_oe Y:
				// MDeriv of the full vectors χ = (X, (D†)_oe X), ψ = (Y, Z), coefficient +2.
				chi := make([]complex128, size)
				psi := make([]complex128, size)
				copy(chi, x)
				w.Moe(chi[ve:], x, true)
				copy(psi, y)
				w.Moe(psi[ve:], y, false)
				w.MDeriv(f, chi, psi, 2)
			}
			dir := w.Gauge().Space().NewAlgebra()
			dir.SetGaussian(rng.New(4, "direction"))
			want := f.Dot(dir)
			saved := w.Gauge().Clone()
			value := func(eps float64) float64 {
				w.Gauge().CopyFrom(saved)
				w.Gauge().Update(eps, dir)
				s, _ := action()
				return s
			}
			var d []float64
			for _, eps := range []float64{0.01, 0.005} {
				d = append(d, (value(eps)-value(-eps))/(2*eps))
			}
			w.Gauge().CopyFrom(saved)
			if r := (4*d[1] - d[0]) / 3; math.Abs(r-want) > 1e-6*math.Abs(want) {
				return fmt.Errorf("%v Nc %d schur %v: force·X = %v, extrapolated difference %v (raw %v)", c.dims, c.nc, c.schur, want, r, d)
			}
			return nil
		})
	}
}

// plainLinear hides an operator's Factored methods, so that CG runs its
// general iteration on it.
type plainLinear struct{ a solver.Linear }

func (p plainLinear) Apply(out, in []complex128) { p.a.Apply(out, in) }

// TestFusedCGMatchesPlain: CG's fused iteration on A A† + μ (reductions and
// the residual update inside the applications of A† and A) gives the
// solution and the iteration count of the general iteration, for the full
// operator and the Schur complement, with and without a shift, on 2 ranks.
func TestFusedCGMatchesPlain(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		nc         int
	}{
		{[]int{8, 8}, []int{2, 1}, 1},
		{[]int{4, 4, 4, 4}, []int{1, 2, 1, 1}, 3},
	} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := setupEO(comm, c.dims, c.grid, c.nc)
			if err != nil {
				return err
			}
			defer w.Close()
			ly, n := w.Layout(), w.PerSite()
			size, ve := ly.Volume()*n, ly.EvenCount()*n
			b := randomVector(ly, decomp.All, n, rng.New(3, "b"))
			sc := dslash.NewSchur(w)
			for _, op := range []struct {
				name string
				a    dslash.Matrix
				len  int
			}{{"DD†", w, size}, {"DscDsc†", sc, ve}} {
				for _, mu := range []float64{0, 0.05} {
					m := dslash.NewNormal(op.a, mu, op.len)
					if _, ok := solver.Linear(m).(solver.Factored); !ok {
						return fmt.Errorf("dslash.Normal is not a solver.Factored")
					}
					xf, xp := make([]complex128, op.len), make([]complex128, op.len)
					rf, err := solver.NewCG(comm, op.len).Solve(m, xf, b[:op.len], 1e-11, 5000)
					if err != nil {
						return err
					}
					rp, err := solver.NewCG(comm, op.len).Solve(plainLinear{m}, xp, b[:op.len], 1e-11, 5000)
					if err != nil {
						return err
					}
					diff := make([]complex128, op.len)
					for i := range diff {
						diff[i] = xf[i] - xp[i]
					}
					if d := math.Sqrt(solver.Norm2(comm, diff) / solver.Norm2(comm, xp)); d > 1e-9 || rf.Iterations < rp.Iterations-1 || rf.Iterations > rp.Iterations+1 {
						return fmt.Errorf("%s + %g: fused CG (%d iterations) and general CG (%d) differ by %g", op.name, mu, rf.Iterations, rp.Iterations, d)
					}
				}
			}
			return nil
		})
	}
}

// TestUpdateXP checks the fused iteration's vector pass against the
// definition x += αp, p = r + βp, |p|² element by element, at even and odd
// lengths.
func TestUpdateXP(t *testing.T) {
	for _, n := range []int{1, 2, 7, 64, 101} {
		st := rng.New(uint64(n), "updatexp").Stream(0)
		x, p, r := make([]complex128, n), make([]complex128, n), make([]complex128, n)
		for i := range n {
			x[i], p[i], r[i] = st.ComplexNormal(), st.ComplexNormal(), st.ComplexNormal()
		}
		const alpha, beta = 0.37, -1.21
		wantX, wantP := make([]complex128, n), make([]complex128, n)
		wantPP := 0.0
		for i := range n {
			wantX[i] = x[i] + complex(alpha, 0)*p[i]
			wantP[i] = r[i] + complex(beta, 0)*p[i]
			wantPP += real(wantP[i])*real(wantP[i]) + imag(wantP[i])*imag(wantP[i])
		}
		pp := solver.UpdateXP(x, p, r, alpha, beta)
		for i := range n {
			if cmplx.Abs(x[i]-wantX[i]) > 1e-15 || cmplx.Abs(p[i]-wantP[i]) > 1e-15 {
				t.Fatalf("n %d, element %d: x %v p %v, want %v %v", n, i, x[i], p[i], wantX[i], wantP[i])
			}
		}
		if math.Abs(pp-wantPP) > 1e-13*wantPP {
			t.Errorf("n %d: |p|² %.17g, want %.17g", n, pp, wantPP)
		}
	}
}
