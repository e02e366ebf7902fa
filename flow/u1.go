package flow

import (
	"fmt"
	"math"
	"slices"

	"pfmpi/coupling"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
)

// U1Spec describes a U(1) gauge flow.
type U1Spec struct {
	Layers    int     // coupling layers (8 move every link once)
	Hidden    []int   // context network channels between input and output
	Kernel    int     // convolution kernel size
	Dilations []int   // per convolution of a context network, cycled (nil: 1)
	Transform string  // "spline" or "ncp"
	Bins      int     // spline bins
	Mixtures  int     // NCP components
	Seed      uint64  // initialisation
	Gain      float64 // Xavier gain of the hidden convolutions (0: 1)
	// Precision is the arithmetic of the context networks (zero: float64).
	Precision nnlayers.Precision
	// Marginal starts the flow with the two context-free string layers of
	// coupling.MarginalStringPatterns (coupling.U1StringLayer), which map
	// every plaquette but one; Bridge of the column layer's plaquettes
	// before the last seam are bridges. They count in Layers; the regular
	// layers follow.
	Marginal bool
	Bridge   int
	// Holonomy ends the flow with a coupling.U1HolonomyLayer, which maps
	// the two holonomies (mean Polyakov lines) that the other layers
	// cannot move; it does not count in Layers.
	Holonomy bool
}

// U1 is a normalizing flow for 2D U(1) gauge fields: a Haar (uniform angle)
// prior pushed through gauge-equivariant coupling layers. For a sample
// U = f(z), log q(U) = log r(z) − Σ_layers Σ_active log h′ with log r =
// −N_links log 2π.
type U1 struct {
	geo    *nnlayers.Geometry
	layers []u1Layer
	params nnlayers.Params
	links  int64 // global number of links
	prior  *nnlayers.Tensor
}

// NewU1 builds the flow on geo. The last convolution of every context
// network starts at zero: the untrained flow is the identity, q = Haar.
func NewU1(geo *nnlayers.Geometry, spec U1Spec) (*U1, error) {
	var cmap coupling.CircleMap
	var err error
	switch spec.Transform {
	case "spline":
		cmap, err = coupling.NewSpline(spec.Bins)
	case "ncp":
		cmap, err = coupling.NewNCP(spec.Mixtures)
	default:
		err = fmt.Errorf("flow: unknown circle transform %q (spline or ncp)", spec.Transform)
	}
	if err != nil {
		return nil, err
	}
	if spec.Layers < 1 {
		return nil, fmt.Errorf("flow: a U(1) flow needs at least one layer, got %d", spec.Layers)
	}
	f := &U1{geo: geo, links: 2 * geo.Layout().Lattice().GlobalVolume()}
	cs := contextSpec{hidden: spec.Hidden, kernel: spec.Kernel, dilations: spec.Dilations, seed: spec.Seed, gain: spec.Gain, precision: spec.Precision}
	if spec.Marginal {
		if spec.Layers < 2 {
			return nil, fmt.Errorf("flow: U(1) marginal layers need at least 2 layers, got %d", spec.Layers)
		}
		dims := geo.Layout().Lattice().Dims()
		for i, pat := range coupling.MarginalStringPatterns(dims) {
			var nb int
			if i == 1 {
				nb = spec.Bridge
			}
			l, err := coupling.NewU1StringLayer(geo, coupling.U1StringLayerSpec{Index: i, Pattern: pat, Map: cmap, Bridge: nb})
			if err != nil {
				return nil, err
			}
			f.layers = append(f.layers, l)
			f.params = append(f.params, l.Params()...)
		}
		cs.first = 2
	} else if spec.Bridge != 0 {
		return nil, fmt.Errorf("flow: bridge plaquettes belong to the marginal column layer: set Marginal or Bridge = 0")
	}
	regular, ps, err := buildLayers(geo, spec.Layers, coupling.Features, cmap.Params(), cs,
		func(i int, net nnlayers.Module) (u1Layer, error) {
			return coupling.NewU1Layer(geo, i-cs.first, net, cmap)
		})
	f.layers = append(f.layers, regular...)
	f.params = append(f.params, ps...)
	if err == nil && spec.Holonomy {
		var h *coupling.U1HolonomyLayer
		if h, err = coupling.NewU1HolonomyLayer(geo, spec.Layers, cmap); err == nil {
			f.layers = append(f.layers, h)
			f.params = append(f.params, h.Params()...)
		}
	}
	if err == nil {
		err = f.params.Check()
	}
	return f, err
}

// u1Layer is a coupling layer of a U(1) flow.
type u1Layer interface {
	couplingLayer
	Params() nnlayers.Params
}

// MarginalParams returns the parameters of the two marginal layers that
// start the flow and of the holonomy layer that ends it, if any (nil
// without the marginal layers).
func (f *U1) MarginalParams() nnlayers.Params {
	if len(f.layers) < 2 {
		return nil
	}
	if _, ok := f.layers[0].(*coupling.U1StringLayer); !ok {
		return nil
	}
	ps := append(slices.Clone(f.layers[0].Params()), f.layers[1].Params()...)
	if h, ok := f.layers[len(f.layers)-1].(*coupling.U1HolonomyLayer); ok {
		ps = append(ps, h.Params()...)
	}
	return ps
}

// contextSpec describes the context networks of the gauge layers.
type contextSpec struct {
	hidden, dilations []int
	kernel            int
	seed              uint64
	gain              float64
	precision         nnlayers.Precision
	first             int // index of the first layer built (the ones before are not buildLayers')
}

// buildLayers builds n coupling layers, each with its own context network
// from in to out channels (LeakyReLU between convolutions, last one zero:
// the flow starts as the identity), and returns them with their parameters.
func buildLayers[L interface{ Params() nnlayers.Params }](geo *nnlayers.Geometry, n, in, out int, cs contextSpec,
	newLayer func(i int, net nnlayers.Module) (L, error)) ([]L, nnlayers.Params, error) {
	var layers []L
	var params nnlayers.Params
	for i := cs.first; i < n; i++ {
		ch := append(append([]int{in}, cs.hidden...), out)
		net, err := nnlayers.ConvNet(geo, fmt.Sprintf("gauge%d", i), nnlayers.ConvNetSpec{
			Channels: ch, Kernel: cs.kernel, Dilations: cs.dilations,
			Act: nnlayers.LeakyReLU, Final: nnlayers.Identity,
			Seed: cs.seed, Gain: cs.gain, ZeroLast: true, Precision: cs.precision, Kind: "gauge context networks"})
		if err != nil {
			return nil, nil, err
		}
		l, err := newLayer(i, net)
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, l)
		params = append(params, l.Params()...)
	}
	return layers, params, params.Check()
}

// Params returns the trainable parameters.
func (f *U1) Params() nnlayers.Params { return f.params }

// Geometry is the lattice the flow lives on.
func (f *U1) Geometry() *nnlayers.Geometry { return f.geo }

// LogPrior is log r(z) = −N_links log 2π, the same for every z.
func (f *U1) LogPrior() float64 { return -float64(f.links) * math.Log(2*math.Pi) }

// Prior draws b configurations of uniform angles: member k (global batch
// index first+k) at global site g from key.Derive(first+k).Stream(g), so
// that the draw does not depend on the process grid or the replicas. The
// tensor has no gradient buffer and is overwritten by the next call.
func (f *U1) Prior(b, first int, key rng.Key) *nnlayers.Tensor {
	ly := f.geo.Layout()
	f.prior = reuseTensor(f.prior, ly.Volume(), b, 2)
	z := f.prior
	for s := 0; s < z.V; s++ {
		g := uint64(ly.GlobalIndex(s))
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(first + k)).Stream(g)
			z.Data[z.At(s, k, 0)] = 2 * math.Pi * st.Float64()
			z.Data[z.At(s, k, 1)] = 2 * math.Pi * st.Float64()
		}
	}
	return z
}

// Forward pushes z through the layers, recording on t, and returns the
// angles and the log-Jacobian density (V × B × 1): log q of member b is
// LogPrior − Σ_sites logJ (summed over the domain).
func (f *U1) Forward(t *nnlayers.Tape, z *nnlayers.Tensor) (theta, logJ *nnlayers.Tensor, err error) {
	return forwardLayers(t, f.layers, z)
}

// Inverse maps configurations theta back to the prior and returns z and
// the log-Jacobian density of the forward map at z (t must be in NoGrad
// mode): log q(theta) = LogPrior − Σ_sites logJ.
func (f *U1) Inverse(t *nnlayers.Tape, theta *nnlayers.Tensor) (z, logJ *nnlayers.Tensor, err error) {
	return inverseLayers(t, f.layers, theta)
}

// couplingLayer is a gauge coupling layer (coupling.U1Layer, SU3Layer).
type couplingLayer interface {
	Forward(t *nnlayers.Tape, x, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
	Inverse(t *nnlayers.Tape, x *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
}

// forwardLayers pushes z through the layers in order, accumulating the
// log-Jacobian density.
func forwardLayers[L couplingLayer](t *nnlayers.Tape, layers []L, z *nnlayers.Tensor) (x, logJ *nnlayers.Tensor, err error) {
	x = z
	logJ = t.Tensor(z.V, z.B, 1)
	for _, l := range layers {
		if x, logJ, err = l.Forward(t, x, logJ); err != nil {
			return nil, nil, err
		}
	}
	return x, logJ, nil
}

// inverseLayers maps x back through the layers in reverse order and sums
// their forward log-Jacobian densities (t in NoGrad mode).
func inverseLayers[L couplingLayer](t *nnlayers.Tape, layers []L, x *nnlayers.Tensor) (z, logJ *nnlayers.Tensor, err error) {
	z = x
	logJ = t.Tensor(x.V, x.B, 1)
	for i := len(layers) - 1; i >= 0; i-- {
		var ld *nnlayers.Tensor
		if z, ld, err = layers[i].Inverse(t, z); err != nil {
			return nil, nil, err
		}
		for j, v := range ld.Data {
			logJ.Data[j] += v
		}
	}
	return z, logJ, nil
}

// Links returns the links e^{iθ} of the angles (recorded on t).
func (f *U1) Links(t *nnlayers.Tape, theta *nnlayers.Tensor) *nnlayers.Tensor {
	return pfflow.U1Links(t, theta)
}

// reuseTensor returns x resized to v × b × c (no gradient buffer), its
// storage reused when large enough.
func reuseTensor(x *nnlayers.Tensor, v, b, c int) *nnlayers.Tensor {
	if x == nil || cap(x.Data) < v*b*c {
		x = &nnlayers.Tensor{Data: make([]float64, v*b*c)}
	}
	x.V, x.B, x.C, x.Data = v, b, c, x.Data[:v*b*c]
	return x
}
