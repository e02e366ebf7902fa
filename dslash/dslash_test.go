package dslash

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"testing"
	"unsafe"

	"pfmpi/internal/allocstest"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// setup builds a hot gauge field and the fast operator on this rank.
func setup(c mpi.Comm, dims, grid []int, nc int, kappa float64) (*Wilson, error) {
	sp, err := latticetest.Space(c, dims, grid, false, nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	u.SetHot(rng.New(41, "dslash-gauge"))
	return NewWilson(u, kappa)
}

// randomSpinor fills a full vector from streams keyed by global site.
func randomSpinor(w *Wilson, key rng.Key) []complex128 {
	x := make([]complex128, w.v*w.n)
	for s := 0; s < w.v; s++ {
		st := key.Stream(uint64(w.ly.GlobalIndex(s)))
		for i := 0; i < w.n; i++ {
			x[s*w.n+i] = st.ComplexNormal()
		}
	}
	return x
}

func dot(c mpi.Comm, a, b []complex128) complex128 {
	var s complex128
	for i := range a {
		s += cmplx.Conj(a[i]) * b[i]
	}
	x := []complex128{s}
	mpi.AllreduceComplex(c, mpi.Sum, x)
	return x[0]
}

func maxDiff(c mpi.Comm, a, b []complex128) float64 {
	d := 0.0
	for i := range a {
		d = max(d, cmplx.Abs(a[i]-b[i]))
	}
	return mpi.MaxFloat64(c, d)
}

func TestGammaAlgebra(t *testing.T) {
	for _, nd := range []int{2, 4} {
		b, _ := basisFor(nd)
		ns := b.ns
		mul := func(x, y []complex128) []complex128 {
			z := make([]complex128, ns*ns)
			for i := 0; i < ns; i++ {
				for j := 0; j < ns; j++ {
					for k := 0; k < ns; k++ {
						z[i*ns+j] += x[i*ns+k] * y[k*ns+j]
					}
				}
			}
			return z
		}
		g5 := make([]complex128, ns*ns)
		for a := 0; a < ns; a++ {
			g5[a*ns+a] = complex(b.gamma5Sign(a), 0)
		}
		prod := g5
		for mu := 0; mu < nd; mu++ {
			gm := b.gammaDense(mu)
			for i := 0; i < ns; i++ {
				for j := 0; j < ns; j++ {
					if gm[i*ns+j] != cmplx.Conj(gm[j*ns+i]) {
						t.Fatalf("%dD: γ_%d is not Hermitian", nd, mu)
					}
				}
			}
			for nu := 0; nu < nd; nu++ {
				ac := mul(gm, b.gammaDense(nu))
				ca := mul(b.gammaDense(nu), gm)
				for i := 0; i < ns; i++ {
					for j := 0; j < ns; j++ {
						want := complex(0, 0)
						if i == j && mu == nu {
							want = 2
						}
						if ac[i*ns+j]+ca[i*ns+j] != want {
							t.Fatalf("%dD: {γ_%d, γ_%d} ≠ 2δ", nd, mu, nu)
						}
					}
				}
			}
			a5, b5 := mul(gm, g5), mul(g5, gm)
			for i := range a5 {
				if a5[i]+b5[i] != 0 {
					t.Fatalf("%dD: γ5 does not anticommute with γ_%d", nd, mu)
				}
			}
			if mu == 0 {
				prod = gm
			} else {
				prod = mul(prod, gm)
			}
		}
		// The documented relation: 2D γ5 = −iγ_0γ_1, 4D γ5 = −γ_0γ_1γ_2γ_3.
		factor := complex(-1, 0)
		if nd == 2 {
			factor = -1i
		}
		for a := 0; a < ns; a++ {
			for c := 0; c < ns; c++ {
				if factor*prod[a*ns+c] != g5[a*ns+c] {
					t.Fatalf("%dD: γ5 ≠ %v·Πγ: %v", nd, factor, prod)
				}
			}
		}
	}
}

type kernelVariant struct {
	overlap bool
	path    kernelPath
	stream  bool // the assembly's non-temporal stores at any size
	// parityOrder visits full vectors parity by parity (the order of
	// large 4D lattices) instead of lexicographically
	parityOrder bool
}

// set configures w for the variant.
func (v kernelVariant) set(w *Wilson) {
	w.siteLists(!v.parityOrder)
	w.Overlap = v.overlap
	w.setKernel(v.path)
	w.streamBytes = 1 << 62
	if v.stream {
		w.streamBytes = 0
	}
}

// kernelVariants are the hop's variants to test on w: every kernel path
// this CPU and build run for its Nd, Nc (with the halo overlapped), and
// the default path without overlap.
func kernelVariants(w *Wilson) []kernelVariant {
	v := []kernelVariant{{false, pathAuto, false, false}, {true, pathAuto, false, true}}
	for _, p := range []kernelPath{pathAuto, pathGeneric, pathGenerated, pathSIMD, pathAVX2, pathAVX512} {
		if p.runs(w.nd, w.nc) {
			v = append(v, kernelVariant{true, p, false, false})
			if p == pathAVX2 || p == pathAVX512 {
				v = append(v, kernelVariant{true, p, true, false})
			}
		}
	}
	return v
}

// TestFastMatchesReference compares M and M† of the fast kernel (with and
// without overlap) against the plain reference on every process grid, for
// U(1) and SU(3), and checks that every grid gives the one-rank result.
func TestFastMatchesReference(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, g := range mpitest.Grids() {
			t.Run(fmt.Sprintf("Nc%d/%v/%v", nc, g.Dims, g.Grid), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					w, err := setup(c, g.Dims, g.Grid, nc, 0.13)
					if err != nil {
						return err
					}
					defer w.Close()
					ref, err := NewReference(w.u, 0.13)
					if err != nil {
						return err
					}
					defer ref.Close()
					psi := randomSpinor(w, rng.New(42, "psi"))
					got, want := make([]complex128, len(psi)), make([]complex128, len(psi))
					var errs []string
					for _, dag := range []bool{false, true} {
						for _, variant := range kernelVariants(w) {
							variant.set(w)
							if dag {
								w.Mdag(got, psi)
								ref.Mdag(want, psi)
							} else {
								w.M(got, psi)
								ref.M(want, psi)
							}
							if d := maxDiff(c, got, want); d > 1e-13 {
								errs = append(errs, fmt.Sprintf("dag=%v %+v: fast − reference = %g", dag, variant, d))
							}
						}
					}
					// One-rank result of the same fields.
					w.Overlap = true
					w.setKernel(pathAuto)
					w.streamBytes = streamBytes
					w.M(got, psi)
					self := c.Split(c.Rank(), 0)
					defer self.Free()
					w1, err := setup(self, g.Dims, nil, nc, 0.13)
					if err != nil {
						return err
					}
					defer w1.Close()
					psi1 := randomSpinor(w1, rng.New(42, "psi"))
					out1 := make([]complex128, len(psi1))
					w1.M(out1, psi1)
					x := make([]int, len(g.Dims))
					for s := 0; s < w.v; s++ {
						// the same global site on the one-rank layout
						w.ly.GlobalCoord(s, x)
						s1 := w1.ly.SiteAt(x)
						for i := 0; i < w.n; i++ {
							if cmplx.Abs(got[s*w.n+i]-out1[s1*w.n+i]) > 1e-13 {
								errs = append(errs, fmt.Sprintf("site %v differs from the one-rank result", x))
								break
							}
						}
					}
					if len(errs) > 0 {
						return fmt.Errorf("%s", errs[0])
					}
					return nil
				})
			})
		}
	}
}

// TestIdentities checks Meo + Moe = the hopping part of M, the adjoint
// relation, γ5-Hermiticity and gauge covariance on several grids.
func TestIdentities(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, g := range mpitest.Grids() {
			t.Run(fmt.Sprintf("Nc%d/%v/%v", nc, g.Dims, g.Grid), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					w, err := setup(c, g.Dims, g.Grid, nc, 0.21)
					if err != nil {
						return err
					}
					defer w.Close()
					n, ve := w.n, w.ve
					psi := randomSpinor(w, rng.New(1, "psi"))
					phi := randomSpinor(w, rng.New(2, "phi"))
					mpsi := make([]complex128, len(psi))
					var first error
					fail := func(format string, args ...any) {
						if first == nil {
							first = fmt.Errorf(format, args...)
						}
					}
					hop := make([]complex128, len(psi))
					for _, dag := range []bool{false, true} {
						if dag {
							w.Mdag(mpsi, psi)
						} else {
							w.M(mpsi, psi)
						}
						// Dhop = M − 1
						w.Dhop(hop, psi, dag)
						for i := range hop {
							hop[i] += psi[i]
						}
						if d := maxDiff(c, hop, mpsi); d > 1e-14 {
							fail("dag=%v: Dhop + 1 differs from M by %g", dag, d)
						}
						// Meo + Moe = Dhop: (Mψ)_e = ψ_e + D_eo ψ_o, (Mψ)_o = ψ_o + D_oe ψ_e
						e := make([]complex128, ve*n)
						o := make([]complex128, (w.v-ve)*n)
						w.Meo(e, psi[ve*n:], dag)
						w.Moe(o, psi[:ve*n], dag)
						for i := range e {
							e[i] += psi[i]
						}
						for i := range o {
							o[i] += psi[ve*n+i]
						}
						if d := maxDiff(c, append(e, o...), mpsi); d > 1e-13 {
							fail("dag=%v: Meo + Moe differ from the hopping part of M by %g", dag, d)
						}
					}
					// ⟨φ, Dψ⟩ = ⟨D†φ, ψ⟩
					dphi := make([]complex128, len(phi))
					w.M(mpsi, psi)
					w.Mdag(dphi, phi)
					if a, b := dot(c, phi, mpsi), dot(c, dphi, psi); cmplx.Abs(a-b) > 1e-12*cmplx.Abs(a) {
						fail("⟨φ, Dψ⟩ = %v, ⟨D†φ, ψ⟩ = %v", a, b)
					}
					// γ5 D γ5 = D†
					g5 := append([]complex128(nil), psi...)
					w.Gamma5(g5)
					w.M(mpsi, g5)
					w.Gamma5(mpsi)
					w.Mdag(dphi, psi)
					if d := maxDiff(c, mpsi, dphi); d > 1e-13 {
						fail("γ5 D γ5 − D† = %g", d)
					}
					// D[U^Ω] Ωψ = Ω D[U] ψ
					w.M(mpsi, psi)
					omega := w.u.Space().RandomTransform(rng.New(3, "omega"))
					rotate := func(x []complex128) []complex128 {
						y := make([]complex128, len(x))
						ns := w.basis.ns
						for s := 0; s < w.v; s++ {
							o := omega.At(s)
							for a := 0; a < ns; a++ {
								w.grp.MulVec(y[s*n+a*nc:s*n+(a+1)*nc], o, x[s*n+a*nc:s*n+(a+1)*nc])
							}
						}
						return y
					}
					want := rotate(mpsi)
					saved := w.u.Clone()
					w.u.Transform(omega)
					got := make([]complex128, len(psi))
					w.M(got, rotate(psi))
					w.u.CopyFrom(saved)
					if d := maxDiff(c, got, want); d > 1e-13 {
						fail("gauge covariance violated by %g", d)
					}
					return first
				})
			})
		}
	}
}

// TestNoAllocation: applying the operator and its derivative allocates
// nothing in steady state.
func TestNoAllocation(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		w, err := setup(c, []int{4, 4, 4, 4}, []int{2, 1, 1, 1}, 3, 0.1)
		if err != nil {
			return err
		}
		defer w.Close()
		psi := randomSpinor(w, rng.New(1, "psi"))
		out := make([]complex128, len(psi))
		f := w.u.Space().NewAlgebra()
		e, o := make([]complex128, w.ve*w.n), make([]complex128, (w.v-w.ve)*w.n)
		allocs := allocstest.PerRun(5, func() {
			w.M(out, psi)
			w.Mdag(out, psi)
			w.Meo(e, o, false)
			w.Moe(o, e, true)
			w.MDeriv(f, psi, out, 1)
		})
		if allocs != 0 {
			return fmt.Errorf("%v allocations per application", allocs)
		}
		return nil
	})
}

// TestFreeFieldPlaneWaves: with U = 1, ψ(x) = e^{ip·x} u, with antiperiodic
// momenta in time, is an eigenvector with
// λ = 1 − 2κ Σ cos p_μ ± 2iκ |s|, s_μ = sin p_μ, when u is an eigenvector
// of Σ γ_μ s_μ with eigenvalue ±|s|.
func TestFreeFieldPlaneWaves(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		nc         int
	}{
		{[]int{8, 6}, []int{2, 1}, 1},
		{[]int{4, 6}, []int{1, 2}, 3},
		{[]int{4, 4, 2, 6}, []int{2, 1, 1, 1}, 3},
	} {
		mpitest.Run(t, c.grid[0]*c.grid[1], func(comm mpi.Comm) error {
			w, err := setup(comm, c.dims, c.grid, c.nc, 0.17)
			if err != nil {
				return err
			}
			defer w.Close()
			w.u.SetCold()
			nd, ns, nc, n := w.nd, w.basis.ns, w.nc, w.n
			s := rng.New(9, "momenta").Stream(0)
			for trial := 0; trial < 6; trial++ {
				p := make([]float64, nd)
				for mu := range p {
					k := int(s.Float64() * float64(c.dims[mu]))
					if mu == 0 {
						p[mu] = math.Pi * float64(2*k+1) / float64(c.dims[mu]) // antiperiodic
					} else {
						p[mu] = 2 * math.Pi * float64(k) / float64(c.dims[mu])
					}
				}
				// G = Σ γ_μ sin p_μ, G² = |s|²
				g := make([]complex128, ns*ns)
				s2, cs := 0.0, 0.0
				for mu := 0; mu < nd; mu++ {
					gm := w.basis.gammaDense(mu)
					for i := range g {
						g[i] += complex(math.Sin(p[mu]), 0) * gm[i]
					}
					s2 += math.Sin(p[mu]) * math.Sin(p[mu])
					cs += math.Cos(p[mu])
				}
				norm := math.Sqrt(s2)
				for _, sign := range []float64{1, -1} {
					// u = (1 + sign G/|s|) e for a basis spinor e with u ≠ 0
					var u []complex128
					for e := 0; e < ns && u == nil; e++ {
						cand := make([]complex128, ns)
						for a := 0; a < ns; a++ {
							if norm > 0 {
								cand[a] = complex(sign/norm, 0) * g[a*ns+e]
							}
							if a == e {
								cand[a] += 1
							}
						}
						mag := 0.0
						for _, z := range cand {
							mag += cmplx.Abs(z)
						}
						if mag > 1e-6 {
							u = cand
						}
					}
					lambda := complex(1-2*w.kappa*cs, 2*w.kappa*sign*norm)
					psi := make([]complex128, w.v*n)
					x := make([]int, nd)
					for site := 0; site < w.v; site++ {
						w.ly.GlobalCoord(site, x)
						px := 0.0
						for mu := range x {
							px += p[mu] * float64(x[mu])
						}
						ph := cmplx.Rect(1, px)
						for a := 0; a < ns; a++ {
							for col := 0; col < nc; col++ {
								psi[site*n+a*nc+col] = ph * u[a] * complex(float64(col+1), 0)
							}
						}
					}
					out := make([]complex128, len(psi))
					w.M(out, psi)
					for i := range out {
						if cmplx.Abs(out[i]-lambda*psi[i]) > 1e-13 {
							return fmt.Errorf("p = %v: (Dψ)_%d = %v, want λψ = %v (λ = %v)", p, i, out[i], lambda*psi[i], lambda)
						}
					}
				}
			}
			return nil
		})
	}
}

// TestMDeriv compares MDeriv with the symmetric difference of Re⟨χ, D ψ⟩
// along U → exp(εX) U (error ∝ ε², Richardson to 1e-7).
func TestMDeriv(t *testing.T) {
	for _, c := range []struct {
		dims, grid []int
		nc         int
	}{
		{[]int{4, 6}, []int{2, 1}, 1},
		{[]int{4, 6}, []int{1, 2}, 3},
		{[]int{4, 2, 2, 4}, []int{2, 1, 1, 1}, 3},
		{[]int{4, 2, 2, 4}, []int{1, 1, 1, 2}, 1},
	} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			w, err := setup(comm, c.dims, c.grid, c.nc, 0.19)
			if err != nil {
				return err
			}
			defer w.Close()
			chi := randomSpinor(w, rng.New(5, "chi"))
			psi := randomSpinor(w, rng.New(6, "psi"))
			sp := w.u.Space()
			f := sp.NewAlgebra()
			w.MDeriv(f, chi, psi, 1)
			x := sp.NewAlgebra()
			x.SetGaussian(rng.New(7, "direction"))
			want := f.Dot(x)
			saved := w.u.Clone()
			out := make([]complex128, len(psi))
			value := func(eps float64) float64 {
				w.u.CopyFrom(saved)
				w.u.Update(eps, x)
				w.M(out, psi)
				return real(dot(comm, chi, out))
			}
			var d []float64
			for _, eps := range []float64{0.02, 0.01} {
				d = append(d, (value(eps)-value(-eps))/(2*eps))
			}
			w.u.CopyFrom(saved)
			r := (4*d[1] - d[0]) / 3
			if math.Abs(r-want) > 1e-7*math.Abs(want) {
				return fmt.Errorf("%v Nc %d: F·X = %v, extrapolated difference %v (raw %v)", c.dims, c.nc, want, r, d)
			}
			return nil
		})
	}
}

// TestTraceDeriv checks TraceDeriv with G = Σ_k ψ_k χ_k† against the sum of
// MDeriv(χ_k, ψ_k) on one rank, with the antiperiodic boundary crossed.
func TestTraceDeriv(t *testing.T) {
	for _, c := range []struct {
		dims []int
		nc   int
	}{
		{[]int{4, 6}, 1},
		{[]int{4, 6}, 3},
		{[]int{2, 2, 2, 4}, 3},
		{[]int{4, 2, 2, 2}, 1},
	} {
		mpitest.Run(t, 1, func(comm mpi.Comm) error {
			w, err := setup(comm, c.dims, nil, c.nc, 0.19)
			if err != nil {
				return err
			}
			defer w.Close()
			sp := w.u.Space()
			want, got := sp.NewAlgebra(), sp.NewAlgebra()
			var chi, psi [][]complex128
			for k := range 3 {
				chi = append(chi, randomSpinor(w, rng.New(uint64(10+k), "chi")))
				psi = append(psi, randomSpinor(w, rng.New(uint64(20+k), "psi")))
				w.MDeriv(want, chi[k], psi[k], -0.7)
			}
			n := w.PerSite()
			w.TraceDeriv(got, func(dst []complex128, y, x int) {
				clear(dst[:n*n])
				for k := range chi {
					for a := 0; a < n; a++ {
						for b := 0; b < n; b++ {
							dst[a*n+b] += psi[k][y*n+a] * cmplx.Conj(chi[k][x*n+b])
						}
					}
				}
			}, -0.7)
			d, norm := 0.0, 0.0
			for i, v := range want.Data().Data() {
				d = max(d, cmplx.Abs(got.Data().Data()[i]-v))
				norm = max(norm, cmplx.Abs(v))
			}
			if norm == 0 || d > 1e-13*norm {
				return fmt.Errorf("%v Nc %d: TraceDeriv differs from Σ MDeriv by %.3g (largest value %.3g)", c.dims, c.nc, d, norm)
			}
			return nil
		})
	}
}

// TestSchurMatchesBlocks checks D_sc = 1 − D_eo D_oe and D_sc† = 1 −
// (D†)_eo (D†)_oe against the blocks of the reference operator (D applied
// to vectors supported on one parity), on every kernel path and process
// grid: the Schur complement's fused second half (x − D_eo in in the hop's
// pass) against the plain composition.
func TestSchurMatchesBlocks(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, g := range mpitest.Grids() {
			t.Run(fmt.Sprintf("Nc%d/%v/%v", nc, g.Dims, g.Grid), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					w, err := setup(c, g.Dims, g.Grid, nc, 0.13)
					if err != nil {
						return err
					}
					defer w.Close()
					if !w.eo {
						return nil
					}
					ref, err := NewReference(w.u, 0.13)
					if err != nil {
						return err
					}
					defer ref.Close()
					ne := w.ve * w.n
					full := randomSpinor(w, rng.New(7, "schur"))
					even := slices.Clone(full[:ne])
					s := NewSchur(w)
					for _, dag := range []bool{false, true} {
						apply := ref.M
						if dag {
							apply = ref.Mdag
						}
						// odd part of D (e, 0) = D_oe e; even part of D (0, o) = D_eo o
						v, out := make([]complex128, len(full)), make([]complex128, len(full))
						copy(v, even)
						apply(out, v)
						clear(v)
						copy(v[ne:], out[ne:])
						apply(out, v)
						want := make([]complex128, ne)
						for i := range want {
							want[i] = even[i] - out[i]
						}
						got := make([]complex128, ne)
						for _, variant := range kernelVariants(w) {
							variant.set(w)
							if dag {
								s.Mdag(got, even)
							} else {
								s.M(got, even)
							}
							if d := maxDiff(c, got, want); d > 1e-13 {
								return fmt.Errorf("dag=%v %+v: D_sc − blocks of the reference = %g", dag, variant, d)
							}
						}
					}
					return nil
				})
			})
		}
	}
}

// TestFusedApplications checks the applications that fold CG's steps in —
// MdagNorm (out = A†in and |out|²) and MUpdate (r −= αA in and |r|²) of
// the Wilson operator and the Schur complement — against the plain
// operators, on every kernel path (streaming stores or not) and grid.
func TestFusedApplications(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, g := range mpitest.Grids() {
			t.Run(fmt.Sprintf("Nc%d/%v/%v", nc, g.Dims, g.Grid), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					w, err := setup(c, g.Dims, g.Grid, nc, 0.13)
					if err != nil {
						return err
					}
					defer w.Close()
					ops := []fusedMatrix{w}
					if w.eo {
						ops = append(ops, NewSchur(w))
					}
					full := randomSpinor(w, rng.New(8, "in"))
					r0 := randomSpinor(w, rng.New(9, "r"))
					const alpha = 0.37
					for _, op := range ops {
						m := op.(Matrix)
						size := len(full)
						if s, ok := op.(*Schur); ok {
							size = s.Len()
						}
						in := full[:size]
						wantDag, wantM := make([]complex128, size), make([]complex128, size)
						m.Mdag(wantDag, in)
						m.M(wantM, in)
						wantR := make([]complex128, size)
						for i := range wantR {
							wantR[i] = r0[i] - alpha*wantM[i]
						}
						for _, variant := range kernelVariants(w) {
							variant.set(w)
							got := make([]complex128, size)
							norm := mpi.SumFloat64(c, op.MdagNorm(got, in))
							if d := maxDiff(c, got, wantDag); d > 1e-13 {
								return fmt.Errorf("%T %+v: MdagNorm − Mdag = %g", op, variant, d)
							}
							if want := solverNorm2(c, wantDag); math.Abs(norm-want) > 1e-12*want {
								return fmt.Errorf("%T %+v: MdagNorm's |out|² = %v, want %v", op, variant, norm, want)
							}
							r := slices.Clone(r0[:size])
							norm = mpi.SumFloat64(c, op.MUpdate(r, in, alpha))
							if d := maxDiff(c, r, wantR); d > 1e-13 {
								return fmt.Errorf("%T %+v: MUpdate − (r − αM in) = %g", op, variant, d)
							}
							if want := solverNorm2(c, wantR); math.Abs(norm-want) > 1e-12*want {
								return fmt.Errorf("%T %+v: MUpdate's |r|² = %v, want %v", op, variant, norm, want)
							}
						}
						w.setKernel(pathAuto)
						w.streamBytes = streamBytes
					}
					return nil
				})
			})
		}
	}
}

func solverNorm2(c mpi.Comm, x []complex128) float64 {
	s := 0.0
	for _, z := range x {
		s += real(z)*real(z) + imag(z)*imag(z)
	}
	return mpi.SumFloat64(c, s)
}

// TestProjEntryLayout pins the layout of projEntry that the assembly halo
// packing reads.
func TestProjEntryLayout(t *testing.T) {
	var e projEntry
	if unsafe.Sizeof(e) != 16 || unsafe.Offsetof(e.site) != 0 || unsafe.Offsetof(e.mu) != 4 || unsafe.Offsetof(e.fwd) != 5 || unsafe.Offsetof(e.phase) != 8 {
		t.Fatalf("projEntry: size %d, offsets %d %d %d %d; the assembly packing reads 16, 0 4 5 8",
			unsafe.Sizeof(e), unsafe.Offsetof(e.site), unsafe.Offsetof(e.mu), unsafe.Offsetof(e.fwd), unsafe.Offsetof(e.phase))
	}
}
