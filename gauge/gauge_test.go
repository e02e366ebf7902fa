package gauge_test

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// newSpace builds the gauge space of this rank.
func newSpace(c mpi.Comm, dims, grid []int, nc int) (*gauge.Space, error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	return gauge.NewSpace(c, ly, nc)
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(a), math.Abs(b), 1e-300) }

func TestColdField(t *testing.T) {
	for _, nc := range []int{1, 3} {
		for _, dims := range [][]int{{4, 6}, {4, 4, 4, 4}} {
			mpitest.Run(t, 2, func(c mpi.Comm) error {
				grid := make([]int, len(dims))
				for i := range grid {
					grid[i] = 1
				}
				grid[0] = 2
				sp, err := newSpace(c, dims, grid, nc)
				if err != nil {
					return err
				}
				defer sp.Close()
				u := sp.NewField()
				v := 1.0
				for _, l := range dims {
					v *= float64(l)
				}
				planes := float64(len(dims) * (len(dims) - 1) / 2)
				if p := u.AveragePlaquette(); p != 1 {
					return fmt.Errorf("cold plaquette %v", p)
				}
				if s := u.Action(2.5); math.Abs(s+2.5*v*planes) > 1e-9 {
					return fmt.Errorf("cold action %v, want %v", s, -2.5*v*planes)
				}
				if p := u.PolyakovLoop(); cmplx.Abs(p-1) > 1e-15 {
					return fmt.Errorf("cold Polyakov loop %v", p)
				}
				f := sp.NewAlgebra()
				u.Force(2.5, f)
				if n := f.Dot(f); n > 1e-28 {
					return fmt.Errorf("cold force |F|² = %v", n)
				}
				return nil
			})
		}
	}
}

// TestU1PlaquetteAngles checks Eq. (3) for U(1) against the angle formula
// θ_P = θ₀(x) + θ₁(x+0̂) − θ₀(x+1̂) − θ₁(x) on one rank.
func TestU1PlaquetteAngles(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		dims := []int{4, 6}
		sp, err := newSpace(c, dims, []int{1, 1}, 1)
		if err != nil {
			return err
		}
		defer sp.Close()
		u := sp.NewField()
		u.SetHot(rng.New(1, "u1-plaq"))
		u.Exchange()
		ly := sp.Layout()
		angle := func(x0, x1, mu int) float64 {
			return cmplx.Phase(u.Link(ly.SiteAt([]int{(x0 + 4) % 4, (x1 + 6) % 6}), mu)[0])
		}
		// The angle representation round-trips.
		theta := make([]float64, ly.Volume()*2)
		u.Angles(theta)
		v := sp.NewField()
		v.SetAngles(theta)
		for s := 0; s < ly.Volume(); s++ {
			for mu := 0; mu < 2; mu++ {
				if d := cmplx.Abs(v.Link(s, mu)[0] - u.Link(s, mu)[0]); d > 1e-15 || math.Abs(theta[2*s+mu]) > math.Pi {
					return fmt.Errorf("angle round trip off by %g", d)
				}
			}
		}
		var p [1]complex128
		for x0 := 0; x0 < 4; x0++ {
			for x1 := 0; x1 < 6; x1++ {
				u.Plaquette(p[:], ly.SiteAt([]int{x0, x1}), 0, 1)
				want := angle(x0, x1, 0) + angle(x0+1, x1, 1) - angle(x0, x1+1, 0) - angle(x0, x1, 1)
				if cmplx.Abs(p[0]-cmplx.Rect(1, want)) > 1e-14 {
					return fmt.Errorf("P_01(%d,%d) = %v, want e^{i%v}", x0, x1, p[0], want)
				}
			}
		}
		return nil
	})
}

// observables collects what gauge invariance and grid independence compare.
type observables struct {
	plaq, action float64
	poly         complex128
	q            float64
}

func measure(u *gauge.Field, beta float64) (observables, error) {
	o := observables{plaq: u.PlaquetteSum(), action: u.Action(beta), poly: u.PolyakovLoop()}
	if u.Space().Nc() == 1 && u.Space().Nd() == 2 {
		q, err := u.TopologicalCharge()
		if err != nil {
			return o, err
		}
		o.q = q
	}
	return o, nil
}

func compare(what string, a, b observables, tol float64) error {
	if relDiff(a.plaq, b.plaq) > tol || relDiff(a.action, b.action) > tol ||
		cmplx.Abs(a.poly-b.poly) > tol*max(1, cmplx.Abs(a.poly)) || math.Abs(a.q-b.q) > 1e-9 {
		return fmt.Errorf("%s: %+v vs %+v", what, a, b)
	}
	return nil
}

// TestGaugeInvarianceAndGridIndependence: on every process grid, a hot field
// and its random gauge transform give the same plaquettes, action, Polyakov
// loop and (2D U(1)) topological charge, and these equal the one-rank values.
func TestGaugeInvarianceAndGridIndependence(t *testing.T) {
	const beta = 2.3
	for _, nc := range []int{1, 3} {
		for _, g := range mpitest.Grids() {
			t.Run(fmt.Sprintf("Nc%d/%v/%v", nc, g.Dims, g.Grid), func(t *testing.T) {
				mpitest.Run(t, g.Ranks(), func(c mpi.Comm) error {
					sp, err := newSpace(c, g.Dims, g.Grid, nc)
					if err != nil {
						return err
					}
					defer sp.Close()
					u := sp.NewField()
					u.SetHot(rng.New(11, "hot"))
					before, err := measure(u, beta)
					if err != nil {
						return err
					}
					f := sp.NewAlgebra()
					u.Force(beta, f)
					omega := sp.RandomTransform(rng.New(12, "omega"))
					u.Transform(omega)
					after, _ := measure(u, beta)
					if d := u.MaxDistanceFromGroup(); d > 1e-13 {
						return fmt.Errorf("transformed links %g away from the group", d)
					}
					// The force transforms covariantly: F → Ω(x) F Ω(x)†.
					fg := sp.NewAlgebra()
					u.Force(beta, fg)
					maxErr := 0.0
					n := nc * nc
					tmp, want := make([]complex128, n), make([]complex128, n)
					for s := 0; s < sp.Layout().Volume(); s++ {
						for mu := 0; mu < sp.Nd(); mu++ {
							matMul(tmp, omega.At(s), f.At(s, mu), nc)
							matMulAdj(want, tmp, omega.At(s), nc)
							for i := range want {
								maxErr = max(maxErr, cmplx.Abs(want[i]-fg.At(s, mu)[i]))
							}
						}
					}
					maxErr = mpi.MaxFloat64(c, maxErr)

					// The one-rank reference.
					self := c.Split(c.Rank(), 0)
					defer self.Free()
					ones := make([]int, len(g.Dims))
					for i := range ones {
						ones[i] = 1
					}
					sp1, err := newSpace(self, g.Dims, ones, nc)
					if err != nil {
						return err
					}
					defer sp1.Close()
					u1 := sp1.NewField()
					u1.SetHot(rng.New(11, "hot"))
					ref, _ := measure(u1, beta)

					if err := compare("gauge transform", before, after, 1e-12); err != nil {
						return err
					}
					if err := compare("one rank vs grid", ref, before, 1e-12); err != nil {
						return err
					}
					if maxErr > 1e-13 {
						return fmt.Errorf("force not covariant: %g", maxErr)
					}
					if nc == 1 && len(g.Dims) == 2 && math.Abs(before.q-math.Round(before.q)) > 1e-9 {
						return fmt.Errorf("Q = %v is not an integer", before.q)
					}
					return nil
				})
			})
		}
	}
}

// matMul and matMulAdj are plain reference products for the test.
func matMul(dst, a, b []complex128, n int) {
	n = int(math.Round(math.Sqrt(float64(n * n))))
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s complex128
			for k := 0; k < n; k++ {
				s += a[i*n+k] * b[k*n+j]
			}
			dst[i*n+j] = s
		}
	}
}

func matMulAdj(dst, a, b []complex128, n int) {
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s complex128
			for k := 0; k < n; k++ {
				s += a[i*n+k] * cmplx.Conj(b[j*n+k])
			}
			dst[i*n+j] = s
		}
	}
}

// TestForce compares F·X with the symmetric difference
// D(ε) = [S(e^{εX}U) − S(e^{−εX}U)]/2ε: the error must fall like ε², and
// the Richardson extrapolation of D must match F·X to 1e-7.
func TestForce(t *testing.T) {
	const beta = 1.7
	for _, nc := range []int{1, 3} {
		for _, c := range []struct{ dims, grid []int }{
			{[]int{4, 6}, []int{2, 1}},
			{[]int{4, 4, 4, 4}, []int{1, 2, 1, 1}},
		} {
			t.Run(fmt.Sprintf("Nc%d/%v", nc, c.dims), func(t *testing.T) {
				mpitest.Run(t, 2, func(comm mpi.Comm) error {
					sp, err := newSpace(comm, c.dims, c.grid, nc)
					if err != nil {
						return err
					}
					defer sp.Close()
					u := sp.NewField()
					u.SetNearIdentity(rng.New(21, "force-u"), 0.8)
					f := sp.NewAlgebra()
					u.Force(beta, f)
					x := sp.NewAlgebra()
					x.SetGaussian(rng.New(22, "force-x"))
					want := f.Dot(x)
					fd := func(eps float64) float64 {
						up, dn := u.Clone(), u.Clone()
						up.Update(eps, x)
						dn.Update(-eps, x)
						return (up.Action(beta) - dn.Action(beta)) / (2 * eps)
					}
					var errs, vals []float64
					for _, eps := range []float64{0.02, 0.01, 0.005} {
						d := fd(eps)
						vals = append(vals, d)
						errs = append(errs, math.Abs(d-want))
					}
					for i := 1; i < len(errs); i++ {
						if r := errs[i-1] / errs[i]; r < 3.5 || r > 4.5 {
							return fmt.Errorf("errors %v do not fall like ε² (ratio %v)", errs, r)
						}
					}
					// Richardson: (4 D(ε/2) − D(ε))/3 removes the ε² term.
					if r := (4*vals[2] - vals[1]) / 3; relDiff(r, want) > 1e-7 {
						return fmt.Errorf("F·X = %v, extrapolated difference quotient %v", want, r)
					}
					return nil
				})
			})
		}
	}
}

// TestTopologicalCharge builds the constant-field-strength U(1) field with
// one unit of charge on several grids.
func TestTopologicalCharge(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			dims := []int{8, 12}
			sp, err := newSpace(c, dims, grid, 1)
			if err != nil {
				return err
			}
			defer sp.Close()
			u := sp.NewField()
			ly := sp.Layout()
			v := float64(dims[0] * dims[1])
			x := make([]int, 2)
			for s := 0; s < ly.Volume(); s++ {
				ly.GlobalCoord(s, x)
				u.Link(s, 1)[0] = cmplx.Rect(1, 2*math.Pi*float64(x[0])/v)
				if x[0] == dims[0]-1 {
					u.Link(s, 0)[0] = cmplx.Rect(1, -2*math.Pi*float64(x[1])/float64(dims[1]))
				}
			}
			q, err := u.TopologicalCharge()
			if err != nil || math.Abs(q-1) > 1e-12 {
				return fmt.Errorf("Q = %v, %v; want 1", q, err)
			}
			if p := u.AveragePlaquette(); math.Abs(p-math.Cos(2*math.Pi/v)) > 1e-14 {
				return fmt.Errorf("plaquette %v, want cos(2π/V) = %v", p, math.Cos(2*math.Pi/v))
			}
			return nil
		})
	}
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		sp, _ := newSpace(c, []int{4, 4, 4, 4}, []int{1, 1, 1, 1}, 1)
		defer sp.Close()
		if _, err := sp.NewField().TopologicalCharge(); err == nil {
			return fmt.Errorf("a 4D topological charge must be refused")
		}
		return nil
	})
}

func TestNewSpaceErrors(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		if _, err := newSpace(c, []int{4, 4}, []int{1, 1}, 2); err == nil {
			return fmt.Errorf("Nc = 2 must be refused")
		}
		return nil
	})
}
