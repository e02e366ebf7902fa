package coupling

import (
	"fmt"
	"math"
	"testing"

	"pfmpi/decomp"
	"pfmpi/internal/fdtest"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
	"pfmpi/spectrum"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

func circleMaps(t *testing.T) []CircleMap {
	sp, err := NewSpline(5)
	if err != nil {
		t.Fatal(err)
	}
	ncp, err := NewNCP(3)
	if err != nil {
		t.Fatal(err)
	}
	return []CircleMap{sp, ncp}
}

func randomParams(n int, seed uint64) []float64 {
	st := rng.New(seed, "circle-params").Stream(0)
	p := make([]float64, n)
	for i := range p {
		p[i] = 0.8 * st.Normal()
	}
	return p
}

// TestCircleMaps checks identity at zero parameters, monotonicity,
// inversion, log h′ against the numerical derivative, and the VJPs against
// central differences.
func TestCircleMaps(t *testing.T) {
	for _, m := range circleMaps(t) {
		s := make([]float64, m.ScratchLen())
		zero := make([]float64, m.Params())
		for _, x := range []float64{0, 0.3, 3, 6.2} {
			if y, ld := m.Forward(zero, x, s); math.Abs(y-x) > 1e-12 || math.Abs(ld) > 1e-12 {
				t.Errorf("%T: zero parameters map %g to %g (log h′ %g)", m, x, y, ld)
			}
		}
		for trial := range 20 {
			p := randomParams(m.Params(), uint64(trial))
			st := rng.New(uint64(trial), "x").Stream(0)
			x := twoPi * st.Float64()
			y, ld := m.Forward(p, x, s)
			back, ld2 := m.Inverse(p, y, s)
			if d := math.Abs(math.Remainder(back-x, twoPi)); d > 1e-10 || math.Abs(ld-ld2) > 1e-8 {
				t.Errorf("%T trial %d: h⁻¹(h(%g)) = %g, log h′ %g and %g", m, trial, x, back, ld, ld2)
			}
			const eps = 1e-6
			yp, ldp := m.Forward(p, x+eps, s)
			ym, ldm := m.Forward(p, x-eps, s)
			num := math.Remainder(yp-ym, twoPi) / (2 * eps)
			if math.Abs(math.Log(num)-ld) > 1e-6 {
				t.Errorf("%T trial %d: log h′ = %g, numerical %g", m, trial, ld, math.Log(num))
			}
			// VJP of L = a·h(x) + c·log h′(x).
			a, c := 0.7, -1.3
			gp := make([]float64, m.Params())
			gx := m.VJP(p, x, a, c, gp, s)
			fdx := a*num + c*(ldp-ldm)/(2*eps)
			if math.Abs(gx-fdx) > 1e-6*(1+math.Abs(fdx)) {
				t.Errorf("%T trial %d: dL/dx = %g, central difference %g", m, trial, gx, fdx)
			}
			for i := range p {
				saved := p[i]
				p[i] = saved + eps
				y1, l1 := m.Forward(p, x, s)
				p[i] = saved - eps
				y2, l2 := m.Forward(p, x, s)
				p[i] = saved
				fd := a*math.Remainder(y1-y2, twoPi)/(2*eps) + c*(l1-l2)/(2*eps)
				if math.Abs(gp[i]-fd) > 1e-6*(1+math.Abs(fd)) {
					t.Errorf("%T trial %d: dL/dp[%d] = %g, central difference %g", m, trial, i, gp[i], fd)
				}
			}
		}
	}
}

// world is a lattice geometry and a layer on it.
type world struct {
	geo   *nnlayers.Geometry
	layer *U1Layer
	tape  *nnlayers.Tape
}

func newWorld(c mpi.Comm, dims, grid []int, index int, cmap CircleMap) (*world, error) {
	geo, err := testGeometry(c, dims, grid)
	if err != nil {
		return nil, err
	}
	net, err := nnlayers.ConvNet(geo, fmt.Sprintf("layer%d", index), nnlayers.ConvNetSpec{
		Channels: []int{Features, 4, cmap.Params()}, Kernel: 3, Dilations: []int{1, 2},
		Act: nnlayers.LeakyReLU, Final: nnlayers.Identity, Seed: uint64(7 + index)})
	if err != nil {
		return nil, err
	}
	l, err := NewU1Layer(geo, index, net, cmap)
	if err != nil {
		return nil, err
	}
	return &world{geo: geo, layer: l, tape: nnlayers.NewTape(2)}, nil
}

// testGeometry is this rank's geometry of a dims lattice on a process grid.
func testGeometry(c mpi.Comm, dims, grid []int) (*nnlayers.Geometry, error) {
	ly, err := latticetest.Layout(c, dims, grid, false)
	if err != nil {
		return nil, err
	}
	return nnlayers.NewGeometry(c, ly), nil
}

func (w *world) close() {
	w.tape.Close()
	w.geo.Close()
}

// angles returns Haar-random angles keyed by global site and batch member.
func angles(geo *nnlayers.Geometry, b int, key rng.Key) *nnlayers.Tensor {
	x := nnlayers.NewTensor(geo.Volume(), b, 2)
	ly := geo.Layout()
	for s := 0; s < x.V; s++ {
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			x.Data[x.At(s, k, 0)] = twoPi * st.Float64()
			x.Data[x.At(s, k, 1)] = twoPi * st.Float64()
		}
	}
	return x
}

func (w *world) forward(theta *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	w.tape.Reset()
	w.tape.NoGrad = false
	logJ := w.tape.Tensor(theta.V, theta.B, 1)
	return w.layer.Forward(w.tape, theta, logJ)
}

func sum(c mpi.Comm, x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return mpi.SumFloat64(c, s)
}

// TestLayerInverseAndEquivariance checks forward∘inverse = id, that the
// layer changes only active links, and gauge equivariance f(U^Ω) = f(U)^Ω.
func TestLayerInverseAndEquivariance(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, cmap := range circleMaps(t) {
				for _, index := range []int{0, 5} {
					w, err := newWorld(c, []int{8, 8}, grid, index, cmap)
					if err != nil {
						return err
					}
					theta := angles(w.geo, 3, rng.New(1, "theta"))
					out, logJ, err := w.forward(theta)
					if err != nil {
						return err
					}
					outData := append([]float64(nil), out.Data...)
					ldData := append([]float64(nil), logJ.Data...)
					w.tape.Reset()
					w.tape.NoGrad = true
					outT := &nnlayers.Tensor{V: out.V, B: out.B, C: 2, Data: outData}
					in, ld, err := w.layer.Inverse(w.tape, outT)
					if err != nil {
						return err
					}
					worst, worstLD := 0.0, 0.0
					for i := range in.Data {
						worst = max(worst, math.Abs(math.Remainder(in.Data[i]-theta.Data[i], twoPi)))
					}
					for i := range ld.Data {
						worstLD = max(worstLD, math.Abs(ld.Data[i]-ldData[i]))
					}
					if worst > 1e-10 || worstLD > 1e-8 {
						return fmt.Errorf("grid %v %T layer %d: inverse∘forward moves a link by %g, log h′ by %g", grid, cmap, index, worst, worstLD)
					}
					// Only active links move.
					moved := 0
					for i := range outData {
						if math.Abs(math.Remainder(outData[i]-theta.Data[i], twoPi)) > 1e-14 {
							moved++
						}
					}
					if n := len(w.layer.active) * 3; moved > n || moved < n/2 {
						return fmt.Errorf("grid %v layer %d: %d link values moved, %d active", grid, index, moved, n)
					}
					// Gauge equivariance: θ_μ(x) → θ_μ(x) + α(x) − α(x+μ̂).
					alpha := angles(w.geo, 3, rng.New(2, "alpha"))
					z, err := w.geo.Zone(2)
					if err != nil {
						return err
					}
					apad := make([]float64, z.Len()*3*2)
					copy(apad, alpha.Data)
					h, err := w.geo.Halo(2, 6)
					if err != nil {
						return err
					}
					h.Exchange(apad, decomp.All)
					transform := func(x []float64) []float64 {
						y := append([]float64(nil), x...)
						for s := 0; s < theta.V; s++ {
							for b := range 3 {
								a := apad[(s*3+b)*2]
								for mu := range 2 {
									up := int(w.layer.nb[1+mu][s])
									y[(s*3+b)*2+mu] += a - apad[(up*3+b)*2]
								}
							}
						}
						return y
					}
					rot := &nnlayers.Tensor{V: theta.V, B: 3, C: 2, Data: transform(theta.Data), Grad: make([]float64, theta.Len())}
					outRot, ldRot, err := w.forward(rot)
					if err != nil {
						return err
					}
					want := transform(outData)
					for i := range want {
						if d := math.Abs(math.Remainder(outRot.Data[i]-want[i], twoPi)); d > 1e-10 {
							return fmt.Errorf("grid %v layer %d: f(U^Ω) differs from f(U)^Ω by %g", grid, index, d)
						}
					}
					for i := range ldData {
						if math.Abs(ldRot.Data[i]-ldData[i]) > 1e-10 {
							return fmt.Errorf("grid %v layer %d: log J is not gauge invariant", grid, index)
						}
					}
					w.close()
				}
			}
			return nil
		})
	}
}

// TestLogJacobianBruteForce compares Σ log h′ with log|det ∂θ′/∂θ| of the
// numerical Jacobian on a 4×4 lattice.
func TestLogJacobianBruteForce(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		for _, cmap := range circleMaps(t) {
			for _, index := range []int{0, 6} {
				w, err := newWorld(c, []int{4, 4}, []int{1, 1}, index, cmap)
				if err != nil {
					return err
				}
				theta := angles(w.geo, 1, rng.New(3, "theta"))
				_, logJ, err := w.forward(theta)
				if err != nil {
					return err
				}
				want := sum(c, logJ.Data)
				n := theta.Len()
				jac := &spectrum.Dense{N: n, A: make([]complex128, n*n)}
				const eps = 1e-6
				for j := 0; j < n; j++ {
					saved := theta.Data[j]
					theta.Data[j] = saved + eps
					plus, _, err := w.forward(theta)
					if err != nil {
						return err
					}
					p := append([]float64(nil), plus.Data...)
					theta.Data[j] = saved - eps
					minus, _, err := w.forward(theta)
					if err != nil {
						return err
					}
					theta.Data[j] = saved
					for i := 0; i < n; i++ {
						jac.A[i*n+j] = complex(math.Remainder(p[i]-minus.Data[i], twoPi)/(2*eps), 0)
					}
				}
				got, _ := jac.LogDet()
				if math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
					return fmt.Errorf("%T layer %d: Σ log h′ = %.10g, log|det J| = %.10g", cmap, index, want, got)
				}
				w.close()
			}
		}
		return nil
	})
}

// TestLayerVJP compares the layer's gradients (inputs and network
// parameters) with central differences of L = Σ w·θ′ + Σ v·log h′, on
// several process grids.
func TestLayerVJP(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 1}, {1, 2}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, cmap := range circleMaps(t) {
				w, err := newWorld(c, []int{8, 8}, grid, 5, cmap)
				if err != nil {
					return err
				}
				theta := angles(w.geo, 2, rng.New(4, "theta"))
				wt := angles(w.geo, 2, rng.New(5, "w"))
				vt := angles(w.geo, 2, rng.New(6, "v"))
				loss := func() (float64, error) {
					out, ld, err := w.forward(theta)
					if err != nil {
						return 0, err
					}
					s := 0.0
					for i := range out.Data {
						s += wt.Data[i] * out.Data[i]
					}
					for i := range ld.Data {
						s += vt.Data[2*i] * ld.Data[i]
					}
					return mpi.SumFloat64(c, s), nil
				}
				out, ld, err := w.forward(theta)
				if err != nil {
					return err
				}
				copy(out.Grad, wt.Data)
				for i := range ld.Grad {
					ld.Grad[i] = vt.Data[2*i]
				}
				clear(theta.Grad)
				w.layer.Params().ZeroGrad()
				w.tape.Backward()
				dir := angles(w.geo, 2, rng.New(8, "dir"))
				want, fd, err := fdtest.Directional(c, theta.Data, theta.Grad, dir.Data, loss)
				if err != nil {
					return err
				}
				if math.Abs(fd-want) > 1e-6*(1+math.Abs(want)) {
					return fmt.Errorf("grid %v %T: ⟨dir, ∂L/∂θ⟩ = %.10g, central difference %.10g", grid, cmap, want, fd)
				}
				for _, p := range w.layer.Params() {
					// Parameters are replicated: the same direction on every rank.
					st := rng.New(9, p.Name).Stream(0)
					pd := make([]float64, p.Size())
					for i := range pd {
						pd[i] = st.Normal()
					}
					gsum, fd, err := fdtest.Directional(c, p.Value, p.Grad, pd, loss)
					if err != nil {
						return err
					}
					if math.Abs(fd-gsum) > 1e-6*(1+math.Abs(gsum)) {
						return fmt.Errorf("grid %v %T: parameter %s: %.10g, central difference %.10g", grid, cmap, p.Name, gsum, fd)
					}
				}
				w.close()
			}
			return nil
		})
	}
}
