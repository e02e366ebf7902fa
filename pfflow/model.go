package pfflow

import (
	"fmt"
	"math"
	"slices"

	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// Spec describes the pseudofermion flows of a joint model.
type Spec struct {
	Nc        int  // colours
	EvenOdd   bool // fields live on the even sites (Eq. 35)
	Monomials int  // conditional flows, one per pseudofermion monomial
	Layers    int  // pseudofermion layers per monomial
	// MonomialLayers, when not empty, gives each monomial its own depth
	// (one entry per monomial) in place of Layers.
	MonomialLayers []int
	Partitions     []Partition // cycled over the layers
	NPT            int         // PTCs per PTCN (≥ 2 with EvenOdd)
	Hidden         int         // H, features between the PTCs of a PTCN
	ContextHidden  int         // N_hidden, channels of the shared trunk
	Kernel         int         // context convolution kernel size (odd)
	// ContextDilations are the dilations of the trunk's convolutions, one
	// convolution each (empty: one convolution of dilation 1, the paper's
	// trunk, which sees a Kernel × Kernel neighbourhood).
	ContextDilations []int
	// HeadKernel is the kernel size of every layer's head (odd; 0: Kernel).
	// 1 maps the trunk's features site by site: the heads, the largest
	// convolutions of the model, then cost 1/Kernel^Nd of the work.
	HeadKernel int
	Seed       uint64  // initialisation
	Gain       float64 // Xavier-normal gain of every context convolution
	// Precision is the arithmetic of the context network's matrix products
	// (the zero value: float64); the transports and layers stay float64.
	Precision nnlayers.Precision
	// Polyakov adds the traces of the Wilson lines winding the torus to the
	// context's inputs ([Context]; the lattice on one rank).
	Polyakov bool
}

// Model is the conditional part of a joint model: the context network's
// trunk, shared by every layer of every monomial, and one [Conditional]
// flow per monomial (Eq. 39).
type Model struct {
	geo    *nnlayers.Geometry
	spec   Spec
	ns     int
	ctx    *Context
	trunk  *nnlayers.Net
	tr     *Transport
	flows  []*Conditional
	params nnlayers.Params
	even   []bool // per local site: even global parity
	dof    int64  // complex components of one pseudofermion (global)
}

// Spins is the number of spin components in nd dimensions: 2^(nd/2).
func Spins(nd int) int { return 1 << (nd / 2) }

// New builds the conditional flows on geo.
func New(geo *nnlayers.Geometry, spec Spec) (*Model, error) {
	ly := geo.Layout()
	nd := ly.Lattice().NumDims()
	switch {
	case spec.Nc < 1:
		return nil, fmt.Errorf("pfflow: %d colours", spec.Nc)
	case spec.Monomials < 1:
		return nil, fmt.Errorf("pfflow: a joint model needs at least one pseudofermion monomial")
	case spec.Layers < 0:
		return nil, fmt.Errorf("pfflow: %d layers", spec.Layers)
	case len(spec.MonomialLayers) > 0 && len(spec.MonomialLayers) != spec.Monomials:
		return nil, fmt.Errorf("pfflow: %d layer counts for %d monomials", len(spec.MonomialLayers), spec.Monomials)
	case slices.ContainsFunc(spec.MonomialLayers, func(n int) bool { return n < 0 }):
		return nil, fmt.Errorf("pfflow: layer counts %v", spec.MonomialLayers)
	case (spec.Layers > 0 || slices.ContainsFunc(spec.MonomialLayers, func(n int) bool { return n > 0 })) && len(spec.Partitions) == 0:
		return nil, fmt.Errorf("pfflow: no partitions for the pseudofermion layers")
	case spec.NPT < 1 || spec.Hidden < 1 || spec.ContextHidden < 1:
		return nil, fmt.Errorf("pfflow: n_pt = %d, H = %d, N_hidden = %d must be positive", spec.NPT, spec.Hidden, spec.ContextHidden)
	case spec.EvenOdd && spec.NPT < 2:
		return nil, fmt.Errorf("pfflow: with even/odd preconditioning a PTCN needs n_pt ≥ 2 (one PTC only connects even sites to odd ones), got %d", spec.NPT)
	}
	for _, p := range spec.Partitions {
		if p == Checkerboard && spec.EvenOdd {
			return nil, fmt.Errorf("pfflow: the checkerboard partition leaves nothing frozen on the even sites of an even/odd field; use \"rows\" or \"spin\"")
		}
	}
	if spec.Kernel == 0 {
		spec.Kernel = 3
	}
	if spec.HeadKernel == 0 {
		spec.HeadKernel = spec.Kernel
	}
	if spec.HeadKernel < 1 || spec.HeadKernel%2 == 0 || slices.ContainsFunc(spec.ContextDilations, func(d int) bool { return d < 1 }) {
		return nil, fmt.Errorf("pfflow: head kernel %d (odd, ≥ 1) and trunk dilations %v (≥ 1)", spec.HeadKernel, spec.ContextDilations)
	}
	m := &Model{geo: geo, spec: spec, ns: Spins(nd)}
	var err error
	if m.ctx, err = NewContext(geo, spec.Nc, spec.Polyakov); err != nil {
		return nil, err
	}
	if m.tr, err = NewTransport(geo, spec.Nc); err != nil {
		return nil, err
	}
	trunk := []int{m.ctx.Channels(), spec.ContextHidden}
	for range max(0, len(spec.ContextDilations)-1) {
		trunk = append(trunk, spec.ContextHidden)
	}
	m.trunk, err = nnlayers.ConvNet(geo, "pfctx", nnlayers.ConvNetSpec{
		Channels: trunk, Kernel: spec.Kernel, Dilations: spec.ContextDilations,
		Act: nnlayers.ELU, Final: nnlayers.ELU, Seed: spec.Seed, Gain: spec.Gain, Precision: spec.Precision,
		Kind: "pseudofermion context trunk"})
	if err != nil {
		return nil, err
	}
	m.params = append(m.params, m.trunk.Params()...)
	x := make([]int, nd)
	m.even = make([]bool, ly.Volume())
	for s := range m.even {
		ly.GlobalCoord(s, x)
		sum := 0
		for _, v := range x {
			sum += v
		}
		m.even[s] = sum%2 == 0
	}
	m.dof = ly.Lattice().GlobalVolume() * int64(m.ns*spec.Nc)
	if spec.EvenOdd {
		m.dof /= 2
	}
	for i := range spec.Monomials {
		c := &Conditional{m: m, name: fmt.Sprintf("pf%d", i)}
		count := map[Partition]int{}
		layers := spec.Layers
		if len(spec.MonomialLayers) > 0 {
			layers = spec.MonomialLayers[i]
		}
		for j := range layers {
			part := spec.Partitions[j%len(spec.Partitions)]
			l, err := m.newLayer(fmt.Sprintf("pf%d.layer%d", i, j), part, count[part]%2)
			if err != nil {
				return nil, err
			}
			count[part]++
			c.layers = append(c.layers, l)
			m.params = append(m.params, l.Params()...)
		}
		m.flows = append(m.flows, c)
	}
	return m, m.params.Check()
}

func (m *Model) newLayer(name string, part Partition, alt int) (*Layer, error) {
	ly := m.geo.Layout()
	nd := ly.Lattice().NumDims()
	spec := m.spec
	l := &Layer{part: part, alt: alt, ns: m.ns, nc: spec.Nc, eo: spec.EvenOdd, name: name}
	l.active = make([]bool, ly.Volume())
	x := make([]int, nd)
	for s := range l.active {
		ly.GlobalCoord(s, x)
		defined := m.even[s] || !spec.EvenOdd
		switch part {
		case Checkerboard:
			l.active[s] = m.even[s] == (alt == 0)
		case Rows:
			l.active[s] = defined && x[0]%2 == alt
		case Spin:
			l.active[s] = defined
		}
	}
	l.aPar = 2 * m.ns * m.ns
	if part == Spin {
		l.aPar = 2
	}
	in := m.ns
	for j := range spec.NPT {
		out := spec.Hidden
		if j == spec.NPT-1 {
			out = m.ns
		}
		l.ptcs = append(l.ptcs, NewPTC(m.tr, in, out))
		in = out
	}
	head, err := nnlayers.ConvNet(m.geo, name, nnlayers.ConvNetSpec{
		Channels: []int{spec.ContextHidden, l.outputs()}, Kernel: spec.HeadKernel,
		Act: nnlayers.ELU, Final: nnlayers.Tanh, Seed: spec.Seed, Gain: spec.Gain, Precision: spec.Precision})
	if err != nil {
		return nil, err
	}
	l.head = head.Layers()[0]
	if l.bank, err = nnlayers.NewBank(l.slices()...); err != nil {
		return nil, err
	}
	l.bank.SetKind("pseudofermion context heads")
	l.bank.SetUnclearedGrads(true) // the PTCs store M̄ rather than add it to zeros
	return l, nil
}

// Close releases the halo exchanges of the transports.
func (m *Model) Close() { m.tr.Close() }

// Params returns the trainable parameters: the trunk, then every layer's
// head, monomial by monomial.
func (m *Model) Params() nnlayers.Params { return m.params }

// Monomials is the number of conditional flows.
func (m *Model) Monomials() int { return len(m.flows) }

// Conditional returns the flow of monomial i.
func (m *Model) Conditional(i int) *Conditional { return m.flows[i] }

// Channels is the number of tensor channels of a pseudofermion: Spins·Nc·2.
func (m *Model) Channels() int { return m.ns * m.spec.Nc * 2 }

// Dof is the number of complex components of one pseudofermion (all
// ranks): V·Spins·Nc, half of it with even/odd preconditioning.
func (m *Model) Dof() int64 { return m.dof }

// Context returns the trunk's output for the links: the input features
// (Eq. B2) through the shared convolution.
func (m *Model) Context(t *nnlayers.Tape, links *nnlayers.Tensor) (*nnlayers.Tensor, error) {
	f, err := m.ctx.Apply(t, links)
	if err != nil {
		return nil, err
	}
	return m.trunk.Apply(t, f), nil
}

// HeadFlops is the number of floating-point operations of one forward pass
// of every layer's head on b batch members.
func (m *Model) HeadFlops(b int) int64 {
	n := int64(0)
	for _, c := range m.flows {
		for _, l := range c.layers {
			n += l.head.Flops(b)
		}
	}
	return n
}

// TrunkFlops is the number of floating-point operations of the trunk's
// forward pass on b batch members.
func (m *Model) TrunkFlops(b int) int64 { return m.trunk.Flops(b) }

// PTCFlops is the number of floating-point operations of the forward pass
// of every PTC of every monomial on b batch members.
func (m *Model) PTCFlops(b int) int64 {
	n := int64(0)
	for _, c := range m.flows {
		for _, l := range c.layers {
			for _, p := range l.ptcs {
				n += p.Flops(b)
			}
		}
	}
	return n
}

// Conditional is the flow φ = f_c(χ|U) of one monomial (Eq. 22): a
// Gaussian prior r(χ) ∝ e^{−χ†χ} on the pseudofermion's components through
// the pseudofermion layers, log q(φ|U) = log r(χ) − Σ_layers log J.
type Conditional struct {
	m      *Model
	name   string
	layers []*Layer
	prior  *nnlayers.Tensor
	heads  Heads
	adj    *nnlayers.Tensor // InverseAdjoint's result
}

// Layers returns the pseudofermion layers.
func (c *Conditional) Layers() []*Layer { return c.layers }

// Prior draws b pseudofermions of density e^{−χ†χ}/π per component: member
// k (global batch index first+k) at global site g from
// key.Derive(first+k).Stream(g); with even/odd the odd sites are zero. The
// tensor has no gradient buffer and is overwritten by the next call.
func (c *Conditional) Prior(b, first int, key rng.Key) *nnlayers.Tensor {
	m := c.m
	ly := m.geo.Layout()
	ch := m.Channels()
	if c.prior == nil || cap(c.prior.Data) < ly.Volume()*b*ch {
		c.prior = &nnlayers.Tensor{Data: make([]float64, ly.Volume()*b*ch)}
	}
	c.prior.V, c.prior.B, c.prior.C, c.prior.Data = ly.Volume(), b, ch, c.prior.Data[:ly.Volume()*b*ch]
	z := c.prior
	for s := 0; s < z.V; s++ {
		g := uint64(ly.GlobalIndex(s))
		for k := 0; k < b; k++ {
			base := z.At(s, k, 0)
			if m.spec.EvenOdd && !m.even[s] {
				clear(z.Data[base : base+ch])
				continue
			}
			st := key.Derive(uint64(first + k)).Stream(g)
			for i := 0; i < ch; i += 2 {
				cset(z.Data, base+i, st.ComplexNormal())
			}
		}
	}
	return z
}

// LogPrior sets out[k] to the rank's share of log r(χ_k) = −χ†χ − Dof·log π
// (the constant is on domain rank 0 only): sum out over the domain.
func (c *Conditional) LogPrior(chi *nnlayers.Tensor, out []float64) {
	for k := range out[:chi.B] {
		out[k] = 0
		if c.m.geo.Comm().Rank() == 0 {
			out[k] = -float64(c.m.dof) * math.Log(math.Pi)
		}
	}
	for s := 0; s < chi.V; s++ {
		for k := 0; k < chi.B; k++ {
			base := chi.At(s, k, 0)
			for _, v := range chi.Data[base : base+chi.C] {
				out[k] -= v * v
			}
		}
	}
}

// Forward pushes χ through the layers (recording on t) given the links
// and the context trunk's output ctx and returns φ and the log-Jacobian
// density (V × B × 1): log q(φ|U) = log r(χ) − Σ logJ. Each layer's head is
// evaluated right before the layer: its output is still in cache when the
// layer reads it, and the heads of all layers share the gathered ctx.
func (c *Conditional) Forward(t *nnlayers.Tape, links, ctx, chi *nnlayers.Tensor) (phi, logJ *nnlayers.Tensor, err error) {
	if chi.C != c.m.Channels() {
		return nil, nil, fmt.Errorf("pfflow: %s: field with %d channels, want %d", c.name, chi.C, c.m.Channels())
	}
	phi = chi
	logJ = t.Tensor(chi.V, chi.B, 1)
	for _, l := range c.layers {
		if phi, logJ, err = l.forward(t, links, l.Heads(t, ctx), phi, logJ); err != nil {
			return nil, nil, err
		}
	}
	return phi, logJ, nil
}

// Heads are every layer's head outputs ([Conditional.Heads]).
type Heads [][]*nnlayers.Tensor

// Heads returns every layer's head output for the context ctx (the A
// matrices and PTC weights, which depend on U alone), so that several
// pseudofermion draws at one gauge field share them
// ([Conditional.ForwardHeads]). The result is overwritten by the next call
// on t's next pass.
func (c *Conditional) Heads(t *nnlayers.Tape, ctx *nnlayers.Tensor) Heads {
	if cap(c.heads) < len(c.layers) {
		c.heads = make(Heads, len(c.layers))
	}
	c.heads = c.heads[:len(c.layers)]
	for i, l := range c.layers {
		c.heads[i] = l.Heads(t, ctx)
	}
	return c.heads
}

// ForwardHeads is Forward with the heads computed beforehand by Heads (on
// any tape still valid): the same φ and log-Jacobian.
func (c *Conditional) ForwardHeads(t *nnlayers.Tape, links *nnlayers.Tensor, heads Heads, chi *nnlayers.Tensor) (phi, logJ *nnlayers.Tensor, err error) {
	if err := c.check(heads, chi); err != nil {
		return nil, nil, err
	}
	phi = chi
	logJ = t.Tensor(chi.V, chi.B, 1)
	for i, l := range c.layers {
		if phi, logJ, err = l.forward(t, links, heads[i], phi, logJ); err != nil {
			return nil, nil, err
		}
	}
	return phi, logJ, nil
}

func (c *Conditional) check(heads Heads, field *nnlayers.Tensor) error {
	if field.C != c.m.Channels() {
		return fmt.Errorf("pfflow: %s: field with %d channels, want %d", c.name, field.C, c.m.Channels())
	}
	if len(heads) != len(c.layers) {
		return fmt.Errorf("pfflow: %s: %d layers' heads for %d layers", c.name, len(heads), len(c.layers))
	}
	for i, l := range c.layers {
		if len(heads[i]) != 1+len(l.ptcs) || heads[i][0].B != field.B || heads[i][0].V != field.V {
			return fmt.Errorf("pfflow: %s: the heads of layer %d do not match the layer for a field of %d sites × %d members", c.name, i, field.V, field.B)
		}
	}
	return nil
}

// Inverse maps φ back to χ (t in NoGrad mode) and returns χ and the
// log-Jacobian density of the forward map: log q(φ|U) = log r(χ) − Σ logJ.
func (c *Conditional) Inverse(t *nnlayers.Tape, links, ctx, phi *nnlayers.Tensor) (chi, logJ *nnlayers.Tensor, err error) {
	chi = phi
	logJ = t.Tensor(phi.V, phi.B, 1)
	for i := len(c.layers) - 1; i >= 0; i-- {
		l := c.layers[i]
		var ld *nnlayers.Tensor
		if chi, ld, err = l.inverse(t, links, l.Heads(t, ctx), chi); err != nil {
			return nil, nil, err
		}
		for j, v := range ld.Data {
			logJ.Data[j] += v
		}
	}
	return chi, logJ, nil
}

// Even reports whether local site s has even global parity.
func (m *Model) Even(s int) bool { return m.even[s] }
