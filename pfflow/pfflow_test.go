package pfflow

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"pfmpi/decomp"
	"pfmpi/internal/fdtest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

type world struct {
	geo   *nnlayers.Geometry
	model *Model
	tape  *nnlayers.Tape
	nc    int
}

func newWorld(c mpi.Comm, dims, grid []int, spec Spec) (*world, error) {
	lat, err := decomp.NewLattice(dims, grid, spec.EvenOdd)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	geo := nnlayers.NewGeometry(c, ly)
	if spec.Seed == 0 {
		spec.Seed = 11
	}
	if spec.Gain == 0 {
		spec.Gain = 1
	}
	m, err := New(geo, spec)
	if err != nil {
		geo.Close()
		return nil, err
	}
	return &world{geo: geo, model: m, tape: nnlayers.NewTape(2), nc: spec.Nc}, nil
}

func (w *world) close() {
	w.model.Close()
	w.tape.Close()
	w.geo.Close()
}

// randomLinks returns Haar-random U(Nc) links keyed by global site and
// member (with a gradient buffer).
func randomLinks(geo *nnlayers.Geometry, b, nc int, key rng.Key) *nnlayers.Tensor {
	nd := geo.Layout().Lattice().NumDims()
	x := nnlayers.NewTensor(geo.Volume(), b, LinkChannels(nd, nc))
	ly := geo.Layout()
	u := make([]complex128, nc*nc)
	for s := 0; s < x.V; s++ {
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			for mu := range nd {
				st.Unitary(u, nc)
				for i := range nc * nc {
					cset(x.Data, x.At(s, k, 0)+mu*nc*nc*2+2*i, u[i])
				}
			}
		}
	}
	return x
}

// randomField returns a complex normal tensor keyed by global site (odd
// sites zero with evenOnly).
func randomField(w *world, b int, key rng.Key, evenOnly bool) *nnlayers.Tensor {
	ly := w.geo.Layout()
	x := nnlayers.NewTensor(w.geo.Volume(), b, w.model.Channels())
	for s := 0; s < x.V; s++ {
		if evenOnly && !w.model.Even(s) {
			continue
		}
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			for i := 0; i < x.C; i += 2 {
				cset(x.Data, x.At(s, k, i), st.ComplexNormal())
			}
		}
	}
	return x
}

// forward runs monomial 0's flow on links and chi with gradients recorded.
func (w *world) forward(links, chi *nnlayers.Tensor, noGrad bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	w.tape.Reset()
	w.tape.NoGrad = noGrad
	ctx, err := w.model.Context(w.tape, links)
	if err != nil {
		return nil, nil, err
	}
	return w.model.Conditional(0).Forward(w.tape, links, ctx, chi)
}

func copyTensor(x *nnlayers.Tensor) *nnlayers.Tensor {
	return &nnlayers.Tensor{V: x.V, B: x.B, C: x.C, Data: append([]float64(nil), x.Data...), Grad: make([]float64, len(x.Data))}
}

type variant struct {
	name  string
	eo    bool
	parts []Partition
	nc    int
	poly  bool // Polyakov-line context features (one rank per lattice)
	deep  bool // a trunk of two dilated convolutions, heads of kernel 1
}

var variants = []variant{
	{"checkerboard", false, []Partition{Checkerboard}, 1, false, false},
	{"rows", false, []Partition{Rows}, 1, false, false},
	{"spin", false, []Partition{Spin}, 1, false, false},
	{"eo rows", true, []Partition{Rows}, 1, false, false},
	{"eo rows+spin", true, []Partition{Rows, Spin}, 1, false, false},
	{"eo spin su3", true, []Partition{Spin, Rows}, 3, false, false},
	{"eo rows polyakov", true, []Partition{Rows}, 1, true, false},
	{"eo spin su3 polyakov", true, []Partition{Spin, Rows}, 3, true, false},
	{"eo rows deep trunk 1×1 heads", true, []Partition{Rows}, 1, false, true},
	{"spin su3 deep trunk 1×1 heads", false, []Partition{Spin}, 3, false, true},
}

func (v variant) spec() Spec {
	npt := 2
	if !v.eo {
		npt = 3
	}
	s := Spec{Nc: v.nc, EvenOdd: v.eo, Monomials: 1, Layers: 3, Partitions: v.parts, NPT: npt, Hidden: 2, ContextHidden: 3, Polyakov: v.poly}
	if v.deep {
		s.ContextDilations, s.HeadKernel = []int{1, 2}, 1
	}
	return s
}

// transform applies Ω to links (U_μ(x) → Ω(x)U_μ(x)Ω(x+μ̂)†) and fields
// (φ(x) → Ω(x)φ(x)).
type gaugeTransform struct {
	w     *world
	omega []float64 // padded, box zone depth 1
	b     int
	up    [][]int32
}

func newGaugeTransform(w *world, b int, key rng.Key) (*gaugeTransform, error) {
	nc := w.nc
	z, err := w.geo.Zone(1)
	if err != nil {
		return nil, err
	}
	h, err := w.geo.Halo(1, b*nc*nc*2)
	if err != nil {
		return nil, err
	}
	g := &gaugeTransform{w: w, b: b, omega: make([]float64, z.Len()*b*nc*nc*2)}
	ly := w.geo.Layout()
	u := make([]complex128, nc*nc)
	for s := 0; s < w.geo.Volume(); s++ {
		for k := range b {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			st.Unitary(u, nc)
			for i := range u {
				cset(g.omega, ((s*b+k)*nc*nc+i)*2, u[i])
			}
		}
	}
	h.Exchange(g.omega, decomp.All)
	nd := ly.Lattice().NumDims()
	for mu := range nd {
		d := make([]int, nd)
		d[mu] = 1
		tab, err := w.geo.Shift(1, d)
		if err != nil {
			return nil, err
		}
		g.up = append(g.up, tab)
	}
	return g, nil
}

func (g *gaugeTransform) om(s, k int) []complex128 {
	nc := g.w.nc
	o := make([]complex128, nc*nc)
	for i := range o {
		o[i] = cget(g.omega, ((s*g.b+k)*nc*nc+i)*2)
	}
	return o
}

func (g *gaugeTransform) links(x *nnlayers.Tensor) *nnlayers.Tensor {
	nc := g.w.nc
	y := copyTensor(x)
	u, a, od, r := make([]complex128, nc*nc), make([]complex128, nc*nc), make([]complex128, nc*nc), make([]complex128, nc*nc)
	nd := len(g.up)
	for s := 0; s < x.V; s++ {
		for k := 0; k < x.B; k++ {
			for mu := range nd {
				for i := range u {
					u[i] = cget(x.Data, x.At(s, k, 0)+mu*nc*nc*2+2*i)
				}
				matMul(a, g.om(s, k), u, nc)
				matDagger(od, g.om(int(g.up[mu][s]), k), nc)
				matMul(r, a, od, nc)
				for i := range r {
					cset(y.Data, y.At(s, k, 0)+mu*nc*nc*2+2*i, r[i])
				}
			}
		}
	}
	return y
}

func (g *gaugeTransform) field(x *nnlayers.Tensor) *nnlayers.Tensor {
	nc := g.w.nc
	y := copyTensor(x)
	for s := 0; s < x.V; s++ {
		for k := 0; k < x.B; k++ {
			o := g.om(s, k)
			for f := 0; f < x.C/(2*nc); f++ {
				base := x.At(s, k, f*nc*2)
				for i := range nc {
					var z complex128
					for j := range nc {
						z += o[i*nc+j] * cget(x.Data, base+2*j)
					}
					cset(y.Data, base+2*i, z)
				}
			}
		}
	}
	return y
}

func maxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestEquivarianceInverseLinearity checks, for every partition and with
// and without even/odd, on several process grids: gauge equivariance
// f(U^Ω, Ωχ) = Ω f(U, χ) with invariant log J, invertibility, linearity in
// χ, that odd sites stay zero with even/odd, and that the results agree
// with one rank.
func TestEquivarianceInverseLinearity(t *testing.T) {
	ref := map[string][2]float64{}
	for _, grid := range [][]int{{1, 1}, {2, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, v := range variants {
				if v.poly && c.Size() > 1 {
					continue // one rank per lattice
				}
				w, err := newWorld(c, []int{4, 4}, grid, v.spec())
				if err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
				const b = 3
				links := randomLinks(w.geo, b, v.nc, rng.New(1, "links"))
				chi := randomField(w, b, rng.New(2, "chi"), v.eo)
				phi, logJ, err := w.forward(links, chi, false)
				if err != nil {
					return err
				}
				phiD := append([]float64(nil), phi.Data...)
				ldD := append([]float64(nil), logJ.Data...)
				// Agreement across grids: functionals keyed by global site.
				wt := randomField(w, b, rng.New(3, "weights"), false)
				f1, f2 := 0.0, 0.0
				for i := range phiD {
					f1 += wt.Data[i] * phiD[i]
				}
				for _, x := range ldD {
					f2 += x
				}
				f1, f2 = mpi.SumFloat64(c, f1), mpi.SumFloat64(c, f2)
				if r, ok := ref[v.name]; !ok {
					if c.Size() == 1 {
						ref[v.name] = [2]float64{f1, f2}
					}
				} else if math.Abs(r[0]-f1) > 1e-10*(1+math.Abs(f1)) || math.Abs(r[1]-f2) > 1e-10*(1+math.Abs(f2)) {
					return fmt.Errorf("%s grid %v: ⟨w, φ⟩ = %.14g, Σ log J = %.14g; one rank: %.14g, %.14g", v.name, grid, f1, f2, r[0], r[1])
				}
				if math.Abs(f2) < 1e-6 {
					return fmt.Errorf("%s: log J vanishes: the layers are trivial", v.name)
				}
				if v.eo {
					for s := 0; s < phi.V; s++ {
						if w.model.Even(s) {
							continue
						}
						for k := range b {
							for ch := range phi.C {
								if phi.Data[phi.At(s, k, ch)] != 0 {
									return fmt.Errorf("%s: odd site %d is not zero", v.name, s)
								}
							}
						}
					}
				}
				// Inverse.
				w.tape.Reset()
				w.tape.NoGrad = true
				ctx, err := w.model.Context(w.tape, links)
				if err != nil {
					return err
				}
				back, ld, err := w.model.Conditional(0).Inverse(w.tape, links, ctx, copyTensor(&nnlayers.Tensor{V: phi.V, B: b, C: phi.C, Data: phiD}))
				if err != nil {
					return err
				}
				if d := maxDiff(back.Data, chi.Data); d > 1e-10 {
					return fmt.Errorf("%s grid %v: inverse∘forward moves χ by %g", v.name, grid, d)
				}
				if d := maxDiff(ld.Data, ldD); d > 1e-10 {
					return fmt.Errorf("%s grid %v: inverse log J differs by %g", v.name, grid, d)
				}
				// Heads computed once (on the tape holding ctx), the draw
				// pushed on another tape: the same φ and log J, bit for bit.
				heads := w.model.Conditional(0).Heads(w.tape, ctx)
				other := nnlayers.NewTape(1)
				other.NoGrad = true
				phiH, ldH, err := w.model.Conditional(0).ForwardHeads(other, links, heads, chi)
				if err != nil {
					other.Close()
					return err
				}
				dPhi, dLd := maxDiff(phiH.Data, phiD), maxDiff(ldH.Data, ldD)
				other.Close()
				if dPhi != 0 || dLd != 0 {
					return fmt.Errorf("%s grid %v: ForwardHeads differs from Forward by %g (φ), %g (log J)", v.name, grid, dPhi, dLd)
				}
				// Linearity: f(aχ1 + bχ2) = a f(χ1) + b f(χ2).
				chi2 := randomField(w, b, rng.New(4, "chi2"), v.eo)
				phi2, _, err := w.forward(links, chi2, true)
				if err != nil {
					return err
				}
				phi2D := append([]float64(nil), phi2.Data...)
				ca, cb := complex(0.7, -1.3), complex(-0.4, 0.25)
				mix := copyTensor(chi)
				for i := 0; i < len(mix.Data); i += 2 {
					cset(mix.Data, i, ca*cget(chi.Data, i)+cb*cget(chi2.Data, i))
				}
				phi3, _, err := w.forward(links, mix, true)
				if err != nil {
					return err
				}
				lin := 0.0
				for i := 0; i < len(phi3.Data); i += 2 {
					lin = max(lin, cmplx.Abs(cget(phi3.Data, i)-ca*cget(phiD, i)-cb*cget(phi2D, i)))
				}
				if lin > 1e-10 {
					return fmt.Errorf("%s: the flow is not linear in χ: %g", v.name, lin)
				}
				// Equivariance.
				g, err := newGaugeTransform(w, b, rng.New(5, "omega"))
				if err != nil {
					return err
				}
				phiR, ldR, err := w.forward(g.links(links), g.field(chi), true)
				if err != nil {
					return err
				}
				want := g.field(&nnlayers.Tensor{V: phi.V, B: b, C: phi.C, Data: phiD})
				if d := maxDiff(phiR.Data, want.Data); d > 1e-10 {
					return fmt.Errorf("%s grid %v: f(U^Ω, Ωχ) differs from Ω f(U, χ) by %g", v.name, grid, d)
				}
				if d := maxDiff(ldR.Data, ldD); d > 1e-10 {
					return fmt.Errorf("%s grid %v: log J is not gauge invariant: %g", v.name, grid, d)
				}
				w.close()
			}
			return nil
		})
	}
}

// TestLogJacobianBruteForce compares Σ log J with log|det ∂φ/∂χ| of the
// real Jacobian on a 4×4 lattice: the flow is linear in χ, so its columns
// are the images of the basis vectors (one batch member each).
func TestLogJacobianBruteForce(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		for _, v := range variants {
			spec := v.spec()
			w, err := newWorld(c, []int{4, 4}, []int{1, 1}, spec)
			if err != nil {
				return err
			}
			ch := w.model.Channels()
			var dofs []int // (site, channel) flat index s*ch + i
			for s := 0; s < w.geo.Volume(); s++ {
				if v.eo && !w.model.Even(s) {
					continue
				}
				for i := range ch {
					dofs = append(dofs, s*ch+i)
				}
			}
			n := len(dofs)
			one := randomLinks(w.geo, 1, v.nc, rng.New(6, "links"))
			links := nnlayers.NewTensor(one.V, n, one.C)
			for s := 0; s < one.V; s++ {
				for k := range n {
					copy(links.Data[links.At(s, k, 0):links.At(s, k, 0)+one.C], one.Data[one.At(s, 0, 0):])
				}
			}
			chi := nnlayers.NewTensor(one.V, n, ch)
			for k, d := range dofs {
				chi.Data[chi.At(d/ch, k, d%ch)] = 1
			}
			phi, logJ, err := w.forward(links, chi, true)
			if err != nil {
				return err
			}
			jac := mat.NewDense(n, n, nil)
			for k := range n {
				for r, d := range dofs {
					jac.Set(r, k, phi.Data[phi.At(d/ch, k, d%ch)])
				}
			}
			var lu mat.LU
			lu.Factorize(jac)
			brute, _ := lu.LogDet()
			sum := 0.0
			for s := 0; s < logJ.V; s++ {
				sum += logJ.Data[logJ.At(s, 0, 0)]
			}
			if math.Abs(brute-sum) > 1e-9*(1+math.Abs(brute)) || math.Abs(sum) < 1e-3 {
				return fmt.Errorf("%s: Σ log J = %.12g, log|det J| = %.12g", v.name, sum, brute)
			}
			w.close()
		}
		return nil
	})
}

// TestVJP compares the gradients of L = Σ w·φ + Σ v·log J with respect to
// the links (through the transports and the context), χ and the network
// parameters with central differences, on several process grids. For
// U(1) the links are U = e^{iθ} and the derivative is taken in θ.
func TestVJP(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, v := range variants {
				if v.nc != 1 || (v.poly && c.Size() > 1) {
					continue
				}
				w, err := newWorld(c, []int{4, 4}, grid, v.spec())
				if err != nil {
					return err
				}
				const b = 2
				theta := nnlayers.NewTensor(w.geo.Volume(), b, 2)
				ly := w.geo.Layout()
				for s := 0; s < theta.V; s++ {
					for k := range b {
						st := rng.New(7, "theta").Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
						theta.Data[theta.At(s, k, 0)] = 2 * math.Pi * st.Float64()
						theta.Data[theta.At(s, k, 1)] = 2 * math.Pi * st.Float64()
					}
				}
				chi := randomField(w, b, rng.New(8, "chi"), v.eo)
				wt := randomField(w, b, rng.New(9, "w"), false)
				vt := randomField(w, b, rng.New(10, "v"), false)
				run := func(noGrad bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
					w.tape.Reset()
					w.tape.NoGrad = noGrad
					links := U1Links(w.tape, theta)
					ctx, err := w.model.Context(w.tape, links)
					if err != nil {
						return nil, nil, err
					}
					return w.model.Conditional(0).Forward(w.tape, links, ctx, chi)
				}
				loss := func() (float64, error) {
					phi, ld, err := run(true)
					if err != nil {
						return 0, err
					}
					s := 0.0
					for i := range phi.Data {
						s += wt.Data[i] * phi.Data[i]
					}
					for i := range ld.Data {
						s += vt.Data[i*vt.C] * ld.Data[i]
					}
					return mpi.SumFloat64(c, s), nil
				}
				phi, ld, err := run(false)
				if err != nil {
					return err
				}
				copy(phi.Grad, wt.Data)
				for i := range ld.Grad {
					ld.Grad[i] = vt.Data[i*vt.C]
				}
				clear(theta.Grad)
				clear(chi.Grad)
				w.model.Params().ZeroGrad()
				if err := w.tape.Backward(); err != nil {
					return err
				}
				check := func(what string, x, grad []float64, dir []float64) error {
					want, fd, err := fdtest.Directional(c, x, grad, dir, loss)
					if err != nil {
						return err
					}
					if math.Abs(fd-want) > 1e-6*(1+math.Abs(want)) {
						return fmt.Errorf("%s grid %v: %s: gradient %.10g, central difference %.10g", v.name, grid, what, want, fd)
					}
					return nil
				}
				normal := func(n int, st rng.Stream) []float64 {
					d := make([]float64, n)
					for i := range d {
						d[i] = st.Normal()
					}
					return d
				}
				if err := check("θ", theta.Data, theta.Grad, normal(len(theta.Data), rng.New(11, "dθ").Stream(uint64(c.Rank())))); err != nil {
					return err
				}
				if err := check("χ", chi.Data, chi.Grad, normal(len(chi.Data), rng.New(12, "dχ").Stream(uint64(c.Rank())))); err != nil {
					return err
				}
				for _, p := range w.model.Params() {
					// Parameters are replicated: perturb them identically.
					if err := check("parameter "+p.Name, p.Value, p.Grad, normal(p.Size(), rng.New(13, p.Name).Stream(0))); err != nil {
						return err
					}
				}
				w.close()
			}
			return nil
		})
	}
}

// TestU1KernelsMatchGeneral runs a one-colour model forward and backward
// with the one-colour PTC kernels and with the general ones and requires
// the same φ, log J and gradients (of θ, χ and the parameters) to rounding,
// on one rank and on a 2 × 2 grid, with and without even/odd.
func TestU1KernelsMatchGeneral(t *testing.T) {
	for _, v := range []variant{
		{name: "eo-rows", eo: true, parts: []Partition{Rows, Spin}, nc: 1},
		{name: "checkerboard", parts: []Partition{Checkerboard}, nc: 1},
	} {
		// H = 3: the one-colour kernels; H = 2: the 2 → 2 ones.
		for _, hidden := range []int{3, 2} {
			for _, grid := range [][]int{{1, 1}, {2, 2}} {
				mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
					var outs [2][]float64
					for i, generic := range []bool{false, true} {
						w, err := newWorld(c, []int{8, 8}, grid, Spec{Nc: 1, EvenOdd: v.eo, Monomials: 2, Layers: 3,
							Partitions: v.parts, NPT: 3, Hidden: hidden, ContextHidden: 4})
						if err != nil {
							return err
						}
						w.model.tr.generic = generic
						const b = 5
						ly := w.geo.Layout()
						theta := nnlayers.NewTensor(w.geo.Volume(), b, 2)
						for s := 0; s < theta.V; s++ {
							for k := range b {
								st := rng.New(3, "theta").Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
								theta.Data[theta.At(s, k, 0)] = 2 * math.Pi * st.Float64()
								theta.Data[theta.At(s, k, 1)] = 2 * math.Pi * st.Float64()
							}
						}
						chi := randomField(w, b, rng.New(4, "chi"), v.eo)
						w.tape.Reset()
						links := U1Links(w.tape, theta)
						ctx, err := w.model.Context(w.tape, links)
						if err != nil {
							return err
						}
						phi, ld, err := w.model.Conditional(1).Forward(w.tape, links, ctx, chi)
						if err != nil {
							return err
						}
						copy(phi.Grad, randomField(w, b, rng.New(5, "w"), false).Data)
						for i := range ld.Grad {
							ld.Grad[i] = 0.3
						}
						w.model.Params().ZeroGrad()
						if err := w.tape.Backward(); err != nil {
							return err
						}
						outs[i] = append(append(append(append(outs[i], phi.Data...), ld.Data...), theta.Grad...), chi.Grad...)
						for _, p := range w.model.Params() {
							outs[i] = append(outs[i], p.Grad...)
						}
						w.close()
					}
					if d := maxDiff(outs[0], outs[1]); d > 1e-11 {
						return fmt.Errorf("%s H = %d grid %v: one-colour and general kernels differ by %g", v.name, hidden, grid, d)
					}
					return nil
				})
			}
		}
	}
}

// TestPTCAssemblyMatchesGo runs the 2 → 2 PTC forward and backward with
// the assembly kernels and with their Go reference on random links, field,
// matrices (read at an offset of a wider tensor) and output gradient, on
// 4 × 6 with batches that split into runs of one site, and requires the
// same output and gradients (field, links, matrices) to rounding — also
// without the gradients of the field, M and the links, where the backward
// pass runs in Go but for the adjoint of the halo buffer.
func TestPTCAssemblyMatchesGo(t *testing.T) {
	if !ptcAVX2 {
		t.Skip("no AVX2 with FMA: the Go kernels run")
	}
	defer func() { ptcAVX2 = true }()
	err := mpi.Run(1, func(c mpi.Comm) error {
		for _, b := range []int{1, 3, 7} {
			for _, grads := range []bool{true, false} {
				var outs [2][]float64
				for i, asm := range []bool{true, false} {
					ptcAVX2 = asm
					w, err := newWorld(c, []int{4, 6}, []int{1, 1}, Spec{Nc: 1, EvenOdd: false, Monomials: 1, Layers: 1,
						Partitions: []Partition{Checkerboard}, NPT: 2, Hidden: 2, ContextHidden: 4})
					if err != nil {
						return err
					}
					p := NewPTC(w.model.tr, 2, 2)
					st := rng.New(11, "ptc-asm").Stream(uint64(b))
					random := func(x []float64) {
						for j := range x {
							x[j] = st.Normal()
						}
					}
					v := w.geo.Volume()
					links := randomLinks(w.geo, b, 1, rng.New(12, "links"))
					phi := nnlayers.NewTensor(v, b, 4)
					const off = 3
					m := nnlayers.NewTensor(v, b, p.Params()+off+5)
					random(phi.Data)
					random(m.Data)
					if !grads {
						m.Grad, links.Grad, phi.Grad = nil, nil, nil
					}
					out, err := p.Apply(w.tape, links, phi, m, off)
					if err != nil {
						return err
					}
					random(out.Grad)
					if err := w.tape.Backward(); err != nil {
						return err
					}
					outs[i] = append(append(append(outs[i], out.Data...), phi.Grad...), links.Grad...)
					outs[i] = append(outs[i], m.Grad...)
					w.close()
				}
				if d := maxDiff(outs[0], outs[1]); d > 1e-13 || len(outs[0]) != len(outs[1]) {
					return fmt.Errorf("batch %d, gradients of M and links %v: assembly and Go differ by %g", b, grads, d)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReusedTapeMatchesFresh runs a forward and backward pass on a tape
// whose pooled values an earlier pass left poisoned (NaN) and checks it
// against the same pass on a new tape, bit for bit: the tensors a pass
// takes from the pool without clearing (halo-padded copies, PTC outputs)
// must be written in full before they are read.
func TestReusedTapeMatchesFresh(t *testing.T) {
	for _, nc := range []int{1, 3} {
		mpitest.Run(t, 1, func(c mpi.Comm) error {
			pass := func(w *world, key uint64) ([]float64, error) {
				const b = 3
				links := randomLinks(w.geo, b, nc, rng.New(key, "links"))
				links.Grad = make([]float64, len(links.Data))
				chi := randomField(w, b, rng.New(key, "chi"), true)
				chi.Grad = make([]float64, len(chi.Data))
				phi, ld, err := w.forward(links, chi, false)
				if err != nil {
					return nil, err
				}
				copy(phi.Grad, randomField(w, b, rng.New(key, "w"), false).Data)
				for i := range ld.Grad {
					ld.Grad[i] = 0.3
				}
				w.model.Params().ZeroGrad()
				if err := w.tape.Backward(); err != nil {
					return nil, err
				}
				out := append(append(append(slices.Clone(phi.Data), ld.Data...), links.Grad...), chi.Grad...)
				for _, p := range w.model.Params() {
					out = append(out, p.Grad...)
				}
				return out, nil
			}
			var outs [2][]float64
			for i, keys := range [][]uint64{{7, 8}, {8}} {
				w, err := newWorld(c, []int{4, 4}, []int{1, 1}, Spec{Nc: nc, EvenOdd: true, Monomials: 1, Layers: 2,
					Partitions: []Partition{Rows}, NPT: 2, Hidden: 2, ContextHidden: 4})
				if err != nil {
					return err
				}
				for _, key := range keys {
					w.tape.Poison()
					if outs[i], err = pass(w, key); err != nil {
						return err
					}
				}
				w.close()
			}
			for j, v := range outs[1] {
				if math.IsNaN(v) {
					return fmt.Errorf("Nc = %d: value %d of a pass on a new tape is NaN", nc, j)
				}
			}
			if !slices.Equal(outs[0], outs[1]) {
				return fmt.Errorf("Nc = %d: a pass on a reused, poisoned tape differs from one on a new tape by %g", nc, maxDiff(outs[0], outs[1]))
			}
			return nil
		})
	}
}

// TestMonomialLayers gives each monomial its own depth: the flows hold the
// layers asked for, a monomial of zero layers is the identity (φ = χ,
// log J = 0), the parameters are those of the layers built, and a list of
// the wrong length is refused.
func TestMonomialLayers(t *testing.T) {
	err := mpi.Run(1, func(c mpi.Comm) error {
		spec := Spec{Nc: 1, EvenOdd: true, Monomials: 3, Layers: 5, MonomialLayers: []int{3, 0, 1},
			Partitions: []Partition{Rows, Spin}, NPT: 2, Hidden: 2, ContextHidden: 3}
		w, err := newWorld(c, []int{4, 4}, []int{1, 1}, spec)
		if err != nil {
			return err
		}
		defer w.close()
		size := w.model.trunk.Params().Size()
		for i, want := range spec.MonomialLayers {
			got := w.model.Conditional(i).Layers()
			if len(got) != want {
				return fmt.Errorf("monomial %d: %d layers, want %d", i, len(got), want)
			}
			for _, l := range got {
				size += l.Params().Size()
			}
		}
		if w.model.Params().Size() != size {
			return fmt.Errorf("%d parameters, the layers and trunk hold %d", w.model.Params().Size(), size)
		}
		const b = 2
		chi := randomField(w, b, rng.New(4, "chi"), true)
		theta := nnlayers.NewTensor(w.geo.Volume(), b, 2)
		links := U1Links(w.tape, theta)
		ctx, err := w.model.Context(w.tape, links)
		if err != nil {
			return err
		}
		phi, ld, err := w.model.Conditional(1).Forward(w.tape, links, ctx, chi)
		if err != nil {
			return err
		}
		if d := maxDiff(phi.Data, chi.Data); d != 0 || slices.Max(ld.Data) != 0 || slices.Min(ld.Data) != 0 {
			return fmt.Errorf("zero layers: φ − χ up to %g, log J %v", d, ld.Data)
		}
		spec.MonomialLayers = []int{3, 1}
		if _, err := newWorld(c, []int{4, 4}, []int{1, 1}, spec); err == nil {
			return fmt.Errorf("2 depths for 3 monomials accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestContextVJP: the gradient of Σ w·features with respect to the link
// entries against central differences, for U(1) and SU(3) links with and
// without Polyakov features (6 × 4); and the Polyakov features are the
// traces of the winding Wilson lines, constant along each line.
func TestContextVJP(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		for _, nc := range []int{1, 3} {
			for _, poly := range []bool{false, true} {
				lat, err := decomp.NewLattice([]int{6, 4}, []int{1, 1}, false)
				if err != nil {
					return err
				}
				ly, err := lat.Layout(0)
				if err != nil {
					return err
				}
				geo := nnlayers.NewGeometry(c, ly)
				defer geo.Close()
				ctx, err := NewContext(geo, nc, poly)
				if err != nil {
					return err
				}
				tape := nnlayers.NewTape(2)
				defer tape.Close()
				const b = 2
				links := randomLinks(geo, b, nc, rng.New(3, "ctx-links"))
				wt := nnlayers.NewTensor(geo.Volume(), b, ctx.Channels())
				st := rng.New(4, "ctx-w").Stream(0)
				for i := range wt.Data {
					wt.Data[i] = st.Normal()
				}
				loss := func() (float64, *nnlayers.Tensor, error) {
					tape.Reset()
					f, err := ctx.Apply(tape, links)
					if err != nil {
						return 0, nil, err
					}
					s := 0.0
					for i, v := range f.Data {
						s += wt.Data[i] * v
					}
					return s, f, nil
				}
				_, f, err := loss()
				if err != nil {
					return err
				}
				copy(f.Grad, wt.Data)
				clear(links.Grad)
				tape.Backward()
				if poly {
					// Direction 0's line through (x0, x1) = (2, 1): Tr Π_x0 U_0(x0, 1).
					x := make([]int, 2)
					prod := []complex128{1}
					if nc == 3 {
						prod = []complex128{1, 0, 0, 0, 1, 0, 0, 0, 1}
					}
					u := make([]complex128, nc*nc)
					tmp := make([]complex128, nc*nc)
					site := -1
					for x0 := range 6 {
						for s := range geo.Volume() {
							ly.GlobalCoord(s, x)
							if x[0] == x0 && x[1] == 1 {
								for i := range nc * nc {
									u[i] = cget(links.Data, links.At(s, 1, 0)+2*i)
								}
								matMul(tmp, prod, u, nc)
								copy(prod, tmp)
								if x0 == 2 {
									site = s
								}
							}
						}
					}
					var tr complex128
					for i := range nc {
						tr += prod[i*nc+i]
					}
					ch := f.At(site, 1, 2+2+0)
					if got := complex(f.Data[ch], f.Data[ch+1]); cmplx.Abs(got-tr) > 1e-12 {
						return fmt.Errorf("Nc = %d: Polyakov feature %v, want Tr L = %v", nc, got, tr)
					}
				}
				dir := make([]float64, len(links.Data))
				want := 0.0
				st = rng.New(5, "ctx-dir").Stream(0)
				for i := range dir {
					dir[i] = st.Normal()
					want += dir[i] * links.Grad[i]
				}
				saved := append([]float64(nil), links.Data...)
				const eps = 1e-6
				for i := range dir {
					links.Data[i] = saved[i] + eps*dir[i]
				}
				lp, _, _ := loss()
				for i := range dir {
					links.Data[i] = saved[i] - eps*dir[i]
				}
				lm, _, _ := loss()
				copy(links.Data, saved)
				if fd := (lp - lm) / (2 * eps); math.Abs(fd-want) > 1e-7*(1+math.Abs(want)) {
					return fmt.Errorf("Nc = %d, Polyakov %v: gradient %.10g, central difference %.10g", nc, poly, want, fd)
				}
			}
		}
		return nil
	})
}

// The plain products of n × n row-major matrices the tests compare with.

// matMul sets c = a·b (all n × n).
func matMul(c, a, b []complex128, n int) {
	for i := range n {
		for j := range n {
			var s complex128
			for k := range n {
				s += a[i*n+k] * b[k*n+j]
			}
			c[i*n+j] = s
		}
	}
}

// matDagger sets c = a† (c and a must not alias).
func matDagger(c, a []complex128, n int) {
	for i := range n {
		for j := range n {
			c[i*n+j] = cmplx.Conj(a[j*n+i])
		}
	}
}
