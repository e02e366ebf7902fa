package flow

import (
	"fmt"
	"slices"

	"pfmpi/coupling"
	"pfmpi/nnlayers"
	"pfmpi/rng"
	"pfmpi/su3"
)

// SU3Spec describes a 2D SU(3) gauge flow.
type SU3Spec struct {
	Layers    int     // coupling layers (8 move every link once)
	Hidden    []int   // context network channels between input and output
	Kernel    int     // convolution kernel size
	Dilations []int   // per convolution of a context network, cycled (nil: 1)
	Modes     int     // Fourier modes per step of the spectral map
	Steps     int     // residual steps of the spectral map (0: 1)
	Bound     float64 // bound on |ψ′| of the spectral map, in (0, 1)
	Seed      uint64  // initialisation
	Gain      float64 // Xavier gain of the hidden convolutions (0: 1)
	// Precision is the arithmetic of the context networks (zero: float64).
	Precision nnlayers.Precision
	// Strings selects string layers (coupling.SU3StringLayer) instead of
	// plaquette layers (coupling.SU3Layer).
	Strings bool
	// Marginal starts a string flow with the two context-free layers of
	// coupling.MarginalStringPatterns, which map every plaquette but one;
	// the regular sequence follows. They count in Layers.
	Marginal bool
	// Bridge is the number of bridge plaquettes of the marginal column
	// layer (coupling.StringLayerSpec.Bridge); only with Marginal.
	Bridge int
}

// SU3 is a normalizing flow for 2D SU(3) gauge fields: Haar-random links
// pushed through gauge-equivariant spectral coupling layers
// (coupling.SU3Layer). Configurations are links tensors (36 channels per
// site, the layout of package pfflow); with Haar measure normalised to 1,
// log r = 0 and log q(U) = −Σ_layers Σ_active log J.
type SU3 struct {
	geo    *nnlayers.Geometry
	layers []su3Layer
	params nnlayers.Params
	prior  *nnlayers.Tensor
	// marginal: the first two layers are the marginal string layers.
	marginal bool
}

// su3Layer is a coupling layer of an SU(3) flow.
type su3Layer interface {
	couplingLayer
	Params() nnlayers.Params
}

// NewSU3 builds the flow on geo; the last convolution of every context
// network starts at zero, so the untrained flow is the identity.
func NewSU3(geo *nnlayers.Geometry, spec SU3Spec) (*SU3, error) {
	if spec.Layers < 1 {
		return nil, fmt.Errorf("flow: an SU(3) flow needs at least one layer, got %d", spec.Layers)
	}
	steps := max(spec.Steps, 1)
	smap, err := coupling.NewSpectralMap(spec.Modes, steps, spec.Bound)
	if err != nil {
		return nil, err
	}
	f := &SU3{geo: geo, marginal: spec.Marginal}
	dims := geo.Layout().Lattice().Dims()
	if spec.Marginal && (!spec.Strings || spec.Layers < 2) {
		return nil, fmt.Errorf("flow: marginal layers need string layers and at least 2 layers")
	}
	if spec.Bridge != 0 && !spec.Marginal {
		return nil, fmt.Errorf("flow: bridge plaquettes belong to the marginal column layer: set Marginal or Bridge = 0")
	}
	cs := contextSpec{hidden: spec.Hidden, kernel: spec.Kernel, dilations: spec.Dilations, seed: spec.Seed, gain: spec.Gain, precision: spec.Precision}
	f.layers, f.params, err = buildLayers(geo, spec.Layers, coupling.SU3Features, smap.Params(), cs,
		func(i int, net nnlayers.Module) (su3Layer, error) {
			if spec.Strings {
				var nb int
				if spec.Marginal && i == 1 {
					nb = spec.Bridge
				}
				return coupling.NewSU3StringLayer(geo, coupling.StringLayerSpec{
					Index: i, Pattern: stringPattern(dims, i, spec.Marginal), Net: net, Map: smap, Bridge: nb})
			}
			return coupling.NewSU3Layer(geo, i, net, smap)
		})
	return f, err
}

// stringPattern returns the pattern of string layer i.
func stringPattern(dims []int, i int, marginal bool) coupling.StringPattern {
	if !marginal {
		return coupling.RegularStringPattern(dims, i)
	}
	if i < 2 {
		return coupling.MarginalStringPatterns(dims)[i]
	}
	return coupling.RegularStringPattern(dims, i-2)
}

// LayerRoles returns the role of every local plaquette in layer i.
func (f *SU3) LayerRoles(i int) ([]coupling.Role, error) {
	if i < 0 || i >= len(f.layers) {
		return nil, fmt.Errorf("flow: layer %d of a flow of %d", i, len(f.layers))
	}
	switch l := f.layers[i].(type) {
	case *coupling.SU3StringLayer:
		return l.Roles(), nil
	case *coupling.SU3Layer:
		return l.Roles()
	}
	return nil, fmt.Errorf("flow: layer %d has no roles", i)
}

// Params returns the trainable parameters.
func (f *SU3) Params() nnlayers.Params { return f.params }

// MarginalParams returns the parameters of the two marginal layers that
// start the flow (nil without them).
func (f *SU3) MarginalParams() nnlayers.Params {
	if !f.marginal {
		return nil
	}
	return append(slices.Clone(f.layers[0].Params()), f.layers[1].Params()...)
}

// LogPrior is 0: Haar measure normalised to 1.
func (f *SU3) LogPrior() float64 { return 0 }

// Links returns the configuration itself: it is a links tensor.
func (f *SU3) Links(_ *nnlayers.Tape, u *nnlayers.Tensor) *nnlayers.Tensor { return u }

// Prior draws b configurations of Haar-random links: member k (global
// index first+k) at global site g from key.Derive(first+k).Stream(g).
func (f *SU3) Prior(b, first int, key rng.Key) *nnlayers.Tensor {
	ly := f.geo.Layout()
	nd := ly.Lattice().NumDims()
	f.prior = reuseTensor(f.prior, ly.Volume(), b, nd*su3.Reals)
	z := f.prior
	for s := 0; s < z.V; s++ {
		g := uint64(ly.GlobalIndex(s))
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(first + k)).Stream(g)
			base := z.At(s, k, 0)
			for d := range nd {
				m := su3.Haar(&st)
				m.PutReals(z.Data[base+su3.Reals*d:])
			}
		}
	}
	return z
}

// Forward pushes z through the layers, recording on t.
func (f *SU3) Forward(t *nnlayers.Tape, z *nnlayers.Tensor) (u, logJ *nnlayers.Tensor, err error) {
	return forwardLayers(t, f.layers, z)
}

// Inverse maps configurations back to the prior (t in NoGrad mode) and
// returns z with the log-Jacobian density of the forward map.
func (f *SU3) Inverse(t *nnlayers.Tape, u *nnlayers.Tensor) (z, logJ *nnlayers.Tensor, err error) {
	return inverseLayers(t, f.layers, u)
}

// Layers is the number of coupling layers.
func (f *SU3) Layers() int { return len(f.layers) }

// Prefix returns the flow made of the first k layers of f, sharing their
// parameters: the model after k layers, for diagnosing what each layer
// contributes (log q_k = −Σ_{j<k} log J_j on the configurations it makes).
func (f *SU3) Prefix(k int) (*SU3, error) {
	if k < 0 || k > len(f.layers) {
		return nil, fmt.Errorf("flow: prefix of %d layers of a flow of %d", k, len(f.layers))
	}
	g := &SU3{geo: f.geo, layers: f.layers[:k]}
	for _, l := range g.layers {
		g.params = append(g.params, l.Params()...)
	}
	return g, nil
}
