package coupling

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"pfmpi/decomp"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
	"pfmpi/su3"
)

// su3Coupling is an SU(3) gauge coupling layer (plaquette or string).
type su3Coupling interface {
	Forward(t *nnlayers.Tape, u, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
	Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
	Params() nnlayers.Params
}

type su3World struct {
	geo   *nnlayers.Geometry
	layer su3Coupling
	up    [2][]int32 // x + μ̂ in the depth-1 zone
	tape  *nnlayers.Tape
}

// su3Kind selects the layer a test world holds.
type su3Kind int

const (
	plaquetteLayer su3Kind = iota
	stringLayer
	marginalLayer       // index 0 or 1 of MarginalStringPatterns
	bridgeLayer         // a regular string layer with L_d − 2 bridge plaquettes
	marginalBridgeLayer // a marginal layer whose mapped plaquettes are all bridges
)

func (k su3Kind) String() string {
	return [...]string{"plaquette", "strings", "marginal", "bridge", "marginal-bridge"}[k]
}

// newSU3World builds plaquette layer index.
func newSU3World(c mpi.Comm, dims, grid []int, index int) (*su3World, error) {
	return newSU3WorldOf(c, dims, grid, index, plaquetteLayer)
}

func newSU3WorldOf(c mpi.Comm, dims, grid []int, index int, kind su3Kind) (*su3World, error) {
	geo, err := testGeometry(c, dims, grid)
	if err != nil {
		return nil, err
	}
	w := &su3World{geo: geo}
	for d := range 2 {
		delta := []int{0, 0}
		delta[d] = 1
		if w.up[d], err = geo.Shift(1, delta); err != nil {
			return nil, err
		}
	}
	smap, err := NewSpectralMap(2, 2, 0.9)
	if err != nil {
		return nil, err
	}
	net, err := nnlayers.ConvNet(geo, fmt.Sprintf("su3layer%d", index), nnlayers.ConvNetSpec{
		Channels: []int{SU3Features, 4, smap.Params()}, Kernel: 3,
		Act: nnlayers.Tanh, Final: nnlayers.Identity, Seed: uint64(5 + index), Gain: 1})
	if err != nil {
		return nil, err
	}
	switch kind {
	case plaquetteLayer:
		w.layer, err = NewSU3Layer(geo, index, net, smap)
	default:
		pat := RegularStringPattern(dims, index)
		marginal := kind == marginalLayer || kind == marginalBridgeLayer
		if marginal {
			pat = MarginalStringPatterns(dims)[index]
		}
		var nb int
		switch kind {
		case bridgeLayer:
			nb = dims[pat.Dir] - 2
		case marginalBridgeLayer:
			nb = dims[pat.Dir] - 1
		}
		var sl *SU3StringLayer
		sl, err = NewSU3StringLayer(geo, StringLayerSpec{Index: index, Pattern: pat, Net: net, Map: smap, Bridge: nb})
		w.layer = sl
		if err == nil && nb > 0 {
			// Bridge exponents and weights away from their initial
			// values, so that every term of the map is tested.
			sl.bridge.Init(uint64(17+index), 0.3)
			for n := 1; n <= nb; n++ {
				sl.bridge.Value[(n-1)*bridgeStride(smap.Params())] += 1 / float64(n+1)
			}
		}
		if err == nil && marginal {
			// The all-rows layer has no context: only the networks'
			// biases, zero at initialisation, set its parameters.
			for _, p := range net.Params() {
				p.Init(uint64(11+index), 0.3)
			}
		}
	}
	if err != nil {
		geo.Close()
		return nil, err
	}
	w.tape = nnlayers.NewTape(2)
	return w, nil
}

func (w *su3World) close() {
	w.tape.Close()
	w.geo.Close()
}

// haarLinks returns Haar-random SU(3) links keyed by global site and member.
func haarLinks(geo *nnlayers.Geometry, b int, key rng.Key) *nnlayers.Tensor {
	x := nnlayers.NewTensor(geo.Volume(), b, su3LinkChannels)
	ly := geo.Layout()
	for s := 0; s < x.V; s++ {
		for k := range b {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			for d := range 2 {
				setLink(x, s, k, d, su3.Haar(&st))
			}
		}
	}
	return x
}

func (w *su3World) forward(u *nnlayers.Tensor, noGrad bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	w.tape.Reset()
	w.tape.NoGrad = noGrad
	return w.layer.Forward(w.tape, u, w.tape.Tensor(u.V, u.B, 1))
}

// TestSU3LayerInverseEquivarianceVJP: inverse∘forward = id, gauge
// equivariance with invariant log J, and the VJP (links along su(3)
// directions and parameters) against central differences, on grids 1×1,
// 2×1 and 2×2.
func TestSU3LayerInverseEquivarianceVJP(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 1}, {2, 2}} {
		checkSU3Coupling(t, grid, []int{0, 5}, plaquetteLayer)
	}
}

// TestSU3StringLayerInverseEquivarianceVJP: the same for string layers of
// both directions, parities and several seams (one rank: the recursion
// runs along whole strings).
func TestSU3StringLayerInverseEquivarianceVJP(t *testing.T) {
	checkSU3Coupling(t, []int{1, 1}, []int{0, 3, 5, 6}, stringLayer)
}

// TestSU3MarginalLayerInverseEquivarianceVJP: the same for the two
// marginal layers (every row at once, then one column).
func TestSU3MarginalLayerInverseEquivarianceVJP(t *testing.T) {
	checkSU3Coupling(t, []int{1, 1}, []int{0, 1}, marginalLayer)
}

// TestSU3BridgeLayerInverseEquivarianceVJP: the same for string layers with
// bridge plaquettes (regular layers with bridges and plain plaquettes on
// each string, and marginal layers bridged throughout); the VJP covers the
// bridge exponents and weights.
func TestSU3BridgeLayerInverseEquivarianceVJP(t *testing.T) {
	checkSU3Coupling(t, []int{1, 1}, []int{0, 3, 5}, bridgeLayer)
	checkSU3Coupling(t, []int{1, 1}, []int{0, 1}, marginalBridgeLayer)
}

// TestSU3StringLayerNeedsOneRank: a split lattice is refused clearly.
func TestSU3StringLayerNeedsOneRank(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		_, err := newSU3WorldOf(c, []int{8, 8}, []int{2, 1}, 0, stringLayer)
		if err == nil {
			return fmt.Errorf("a string layer on 2 ranks per lattice was accepted")
		}
		if !strings.Contains(err.Error(), "one rank") {
			return fmt.Errorf("unclear error: %v", err)
		}
		return nil
	})
}

func checkSU3Coupling(t *testing.T, grid, indices []int, kind su3Kind) {
	t.Helper()
	{
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, index := range indices {
				w, err := newSU3WorldOf(c, []int{8, 8}, grid, index, kind)
				if err != nil {
					return err
				}
				const b = 2
				u := haarLinks(w.geo, b, rng.New(1, "su3-links"))
				out, ld, err := w.forward(u, true)
				if err != nil {
					return err
				}
				outD, ldD := append([]float64(nil), out.Data...), append([]float64(nil), ld.Data...)
				if math.Abs(sum(c, ldD)) < 1e-6 {
					return fmt.Errorf("layer %d: log J vanishes", index)
				}
				w.tape.Reset()
				w.tape.NoGrad = true
				back, ldb, err := w.layer.Inverse(w.tape, &nnlayers.Tensor{V: u.V, B: b, C: u.C, Data: outD})
				if err != nil {
					return err
				}
				for i := range back.Data {
					if math.Abs(back.Data[i]-u.Data[i]) > 1e-10 {
						return fmt.Errorf("grid %v layer %d: inverse misses a link by %g", grid, index, back.Data[i]-u.Data[i])
					}
				}
				for i := range ldb.Data {
					if math.Abs(ldb.Data[i]-ldD[i]) > 1e-9 {
						return fmt.Errorf("grid %v layer %d: inverse log J differs", grid, index)
					}
				}
				// Equivariance: U_μ(x) → Ω(x) U_μ(x) Ω(x+μ̂)†.
				z, _ := w.geo.Zone(1)
				om := nnlayers.NewTensor(z.Len(), b, su3LinkChannels)
				ly := w.geo.Layout()
				for s := 0; s < u.V; s++ {
					for k := range b {
						st := rng.New(2, "omega").Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
						setLink(om, s, k, 0, su3.Haar(&st))
					}
				}
				h, _ := w.geo.Halo(1, b*su3LinkChannels)
				h.Exchange(om.Data, decomp.All)
				transform := func(x []float64) *nnlayers.Tensor {
					y := nnlayers.NewTensor(u.V, b, u.C)
					src := &nnlayers.Tensor{V: u.V, B: b, C: u.C, Data: x}
					for s := 0; s < u.V; s++ {
						for k := range b {
							for d := range 2 {
								up := int(w.up[d][s])
								setLink(y, s, k, d, link(om, s, k, 0).Mul(link(src, s, k, d)).MulAdj(link(om, up, k, 0)))
							}
						}
					}
					return y
				}
				rot, ldr, err := w.forward(transform(u.Data), true)
				if err != nil {
					return err
				}
				want := transform(outD)
				for i := range want.Data {
					if math.Abs(rot.Data[i]-want.Data[i]) > 1e-10 {
						return fmt.Errorf("grid %v layer %d: f(U^Ω) differs from f(U)^Ω by %g", grid, index, rot.Data[i]-want.Data[i])
					}
				}
				for i := range ldD {
					if math.Abs(ldr.Data[i]-ldD[i]) > 1e-9 {
						return fmt.Errorf("grid %v layer %d: log J not gauge invariant", grid, index)
					}
				}
				// VJP: L = Σ Re Tr(C† U′) + Σ v log J.
				cw := haarLinks(w.geo, b, rng.New(3, "su3-c"))
				vw := haarLinks(w.geo, b, rng.New(4, "su3-v"))
				loss := func() (float64, error) {
					out, ld, err := w.forward(u, true)
					if err != nil {
						return 0, err
					}
					s := 0.0
					for i := range out.Data {
						s += cw.Data[i] * out.Data[i]
					}
					for i := range ld.Data {
						s += vw.Data[i*su3LinkChannels] * ld.Data[i]
					}
					return mpi.SumFloat64(c, s), nil
				}
				out2, ld2, err := w.forward(u, false)
				if err != nil {
					return err
				}
				copy(out2.Grad, cw.Data)
				for i := range ld2.Grad {
					ld2.Grad[i] = vw.Data[i*su3LinkChannels]
				}
				clear(u.Grad)
				w.layer.Params().ZeroGrad()
				w.tape.Backward()
				// Links along U → e^{tX}U, X ∈ su(3) per link.
				xs := make([]su3.Matrix, u.V*b*2)
				want0 := 0.0
				for s := 0; s < u.V; s++ {
					for k := range b {
						st := rng.New(5, "dir").Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
						for d := range 2 {
							x := su3.RandomAlgebra(&st)
							xs[(s*b+k)*2+d] = x
							want0 += real(gradOf(u, s, k, d).AdjMul(x.Mul(link(u, s, k, d))).Trace())
						}
					}
				}
				want0 = mpi.SumFloat64(c, want0)
				saved := append([]float64(nil), u.Data...)
				at := func(eps float64) (float64, error) {
					for s := 0; s < u.V; s++ {
						for k := range b {
							for d := range 2 {
								orig := link(&nnlayers.Tensor{V: u.V, B: b, C: u.C, Data: saved}, s, k, d)
								setLink(u, s, k, d, su3.Exp(xs[(s*b+k)*2+d].Scale(complex(eps, 0))).Mul(orig))
							}
						}
					}
					return loss()
				}
				const eps = 1e-6
				lp, err := at(eps)
				if err != nil {
					return err
				}
				lm, err := at(-eps)
				if err != nil {
					return err
				}
				copy(u.Data, saved)
				if fd := (lp - lm) / (2 * eps); math.Abs(fd-want0) > 1e-6*(1+math.Abs(want0)) {
					return fmt.Errorf("grid %v layer %d: links: gradient %.10g, central difference %.10g", grid, index, want0, fd)
				}
				for _, p := range w.layer.Params() {
					st := rng.New(6, p.Name).Stream(0)
					dir := make([]float64, p.Size())
					for i := range dir {
						dir[i] = st.Normal()
					}
					gsum := 0.0
					for i := range dir {
						gsum += dir[i] * p.Grad[i]
					}
					gsum = mpi.SumFloat64(c, gsum)
					sv := append([]float64(nil), p.Value...)
					for i := range dir {
						p.Value[i] = sv[i] + eps*dir[i]
					}
					lp, _ := loss()
					for i := range dir {
						p.Value[i] = sv[i] - eps*dir[i]
					}
					lm, _ := loss()
					copy(p.Value, sv)
					if fd := (lp - lm) / (2 * eps); math.Abs(fd-gsum) > 1e-6*(1+math.Abs(gsum)) {
						return fmt.Errorf("grid %v layer %d: parameter %s: %.10g, central difference %.10g", grid, index, p.Name, gsum, fd)
					}
				}
				w.close()
			}
			return nil
		})
	}
}

// TestSU3LogJacobianBruteForce compares Σ log J of a layer with the log
// determinant of the numerical Jacobian of all link coordinates (4×4
// lattice, 32 links × 8), in the Lie-algebra charts U → e^{X}U at X = 0.
func TestSU3LogJacobianBruteForce(t *testing.T) {
	for _, kind := range []su3Kind{plaquetteLayer, stringLayer, bridgeLayer} {
		t.Run(kind.String(), func(t *testing.T) { checkSU3LogJacobian(t, kind) })
	}
}

func checkSU3LogJacobian(t *testing.T, kind su3Kind) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		w, err := newSU3WorldOf(c, []int{4, 4}, []int{1, 1}, 6, kind)
		if err != nil {
			return err
		}
		defer w.close()
		u := haarLinks(w.geo, 1, rng.New(7, "su3-brute"))
		out0, ld, err := w.forward(u, true)
		if err != nil {
			return err
		}
		base := append([]float64(nil), out0.Data...)
		sumLD := 0.0
		for _, v := range ld.Data {
			sumLD += v
		}
		nl := u.V * 2
		n := nl * 8
		baseT := &nnlayers.Tensor{V: u.V, B: 1, C: u.C, Data: base}
		saved := append([]float64(nil), u.Data...)
		savedT := &nnlayers.Tensor{V: u.V, B: 1, C: u.C, Data: saved}
		coords := func(col int, eps float64) []float64 {
			copy(u.Data, saved)
			l, a := col/8, col%8
			var x [8]float64
			x[a] = eps
			s, d := l/2, l%2
			setLink(u, s, 0, d, su3.Exp(su3.FromComponents(x)).Mul(link(savedT, s, 0, d)))
			out, _, _ := w.forward(u, true)
			y := make([]float64, n)
			for ll := range nl {
				ss, dd := ll/2, ll%2
				comp := su3.Components(link(out, ss, 0, dd).MulAdj(link(baseT, ss, 0, dd)).TA())
				copy(y[ll*8:], comp[:])
			}
			return y
		}
		jac := mat.NewDense(n, n, nil)
		const eps = 1e-5
		for col := range n {
			yp, ym := coords(col, eps), coords(col, -eps)
			for r := range n {
				jac.Set(r, col, (yp[r]-ym[r])/(2*eps))
			}
		}
		copy(u.Data, saved)
		var lu mat.LU
		lu.Factorize(jac)
		brute, _ := lu.LogDet()
		t.Logf("Σ log J = %.10g, brute-force log|det| = %.10g (%d × %d)", sumLD, brute, n, n)
		if math.Abs(brute-sumLD) > 1e-6*(1+math.Abs(sumLD)) || math.Abs(sumLD) < 1e-3 {
			return fmt.Errorf("Σ log J = %.10g, brute force %.10g", sumLD, brute)
		}
		return nil
	})
}
