package nnlayers

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/mpi"
)

// Geometry is one rank's block of the lattice with the halo zones and
// exchanges the convolutions of a network need, built on first use and
// shared by every layer.
type Geometry struct {
	comm   mpi.Comm
	ly     *decomp.Layout
	zones  map[int]*decomp.Zone
	halos  map[[2]int]*halo.Halo[float64]
	shifts map[string][]int32
	taps   map[[2]int]*taps
}

// NewGeometry returns the geometry of layout ly over its domain communicator.
func NewGeometry(comm mpi.Comm, ly *decomp.Layout) *Geometry {
	return &Geometry{comm: comm, ly: ly, zones: map[int]*decomp.Zone{},
		halos: map[[2]int]*halo.Halo[float64]{}, shifts: map[string][]int32{}, taps: map[[2]int]*taps{}}
}

// Layout is the rank's block.
func (g *Geometry) Layout() *decomp.Layout { return g.ly }

// Comm is the domain communicator.
func (g *Geometry) Comm() mpi.Comm { return g.comm }

// Volume is the number of local sites V.
func (g *Geometry) Volume() int { return g.ly.Volume() }

// Close releases the halo exchanges.
func (g *Geometry) Close() {
	for _, h := range g.halos {
		h.Close()
	}
	clear(g.halos)
}

// Zone returns the periodic box halo zone of the given depth.
func (g *Geometry) Zone(depth int) (*decomp.Zone, error) { return g.zone(depth) }

// Halo returns the exchange of fields with n values per site on the box
// zone of the given depth (built once, closed with the geometry).
func (g *Geometry) Halo(depth, n int) (*halo.Halo[float64], error) {
	if _, err := g.zone(depth); err != nil {
		return nil, err
	}
	return g.halo(depth, n), nil
}

// Shift returns the neighbour table of offset delta on the box zone of the
// given depth (entry s: index in [0, V+H) of site s + delta), built once.
func (g *Geometry) Shift(depth int, delta []int) ([]int32, error) {
	key := fmt.Sprint(depth, delta)
	if tab, ok := g.shifts[key]; ok {
		return tab, nil
	}
	z, err := g.zone(depth)
	if err != nil {
		return nil, err
	}
	tab, err := z.Shift(delta)
	if err != nil {
		return nil, err
	}
	g.shifts[key] = tab
	return tab, nil
}

func (g *Geometry) zone(depth int) (*decomp.Zone, error) {
	if z, ok := g.zones[depth]; ok {
		return z, nil
	}
	z, err := g.ly.NewZone(decomp.ZoneSpec{Depth: depth, Shape: decomp.Box})
	if err != nil {
		return nil, err
	}
	g.zones[depth] = z
	return z, nil
}

func (g *Geometry) halo(depth, n int) *halo.Halo[float64] {
	key := [2]int{depth, n}
	if h, ok := g.halos[key]; ok {
		return h
	}
	z, err := g.zone(depth)
	if err != nil {
		panic(err) // checked when the layer was built
	}
	h, err := halo.New[float64](g.comm, z, n, nil)
	if err != nil {
		panic(err)
	}
	g.halos[key] = h
	return h
}

// taps are the neighbour tables of a convolution's stencil: for kernel k
// and dilation δ, tap t (row-major over the k^D offsets δ(j − r)) maps site
// s to the index nbr[t][s] in [0, V+H) of s + δ(j − r) on the box zone of
// depth δr; runs[t] groups the sites into runs of consecutive sites with
// consecutive neighbours (for the input gradient).
type taps struct {
	depth int
	n     int
	nbr   [][]int32
	runs  [][]run       // per tap: sites whose neighbours are consecutive
	split map[int][]run // runs cut for a batch size (key: tap·2³² + batch)
	zlen  int
}

// run is n consecutive sites src … whose tap neighbours are dst ….
type run struct{ src, dst, n int }

// stencil returns the tables of kernel k and dilation d, built once.
func (g *Geometry) stencil(kernel, dil int) (*taps, error) {
	key := [2]int{kernel, dil}
	if tp, ok := g.taps[key]; ok {
		return tp, nil
	}
	nd := g.ly.Lattice().NumDims()
	r := (kernel - 1) / 2
	tp := &taps{depth: r * dil, n: 1}
	for range nd {
		tp.n *= kernel
	}
	if tp.depth > 0 {
		z, err := g.zone(tp.depth)
		if err != nil {
			return nil, err
		}
		tp.zlen = z.Len()
		delta := make([]int, nd)
		for t := range tp.n {
			k := t
			for mu := nd - 1; mu >= 0; mu-- {
				delta[mu] = (k%kernel - r) * dil
				k /= kernel
			}
			tab, err := g.Shift(tp.depth, delta)
			if err != nil {
				return nil, err
			}
			tp.nbr = append(tp.nbr, tab)
		}
		for _, tab := range tp.nbr {
			var rs []run
			for s, p := range tab {
				if k := len(rs) - 1; k >= 0 && rs[k].src+rs[k].n == s && rs[k].dst+rs[k].n == int(p) {
					rs[k].n++
					continue
				}
				rs = append(rs, run{src: s, dst: int(p), n: 1})
			}
			tp.runs = append(tp.runs, rs)
		}
	} else {
		tp.runs = [][]run{{{src: 0, dst: 0, n: g.Volume()}}}
	}
	tp.split = map[int][]run{}
	g.taps[key] = tp
	return tp, nil
}

// runsFor returns the runs of tap t cut into pieces of about rowsPerTask
// rows for batch bs (built once per batch size).
func (tp *taps) runsFor(t, bs int) []run {
	key := t<<32 | bs
	if rs, ok := tp.split[key]; ok {
		return rs
	}
	per := max(1, rowsPerTask/bs)
	var rs []run
	for _, r := range tp.runs[t] {
		for i := 0; i < r.n; i += per {
			rs = append(rs, run{src: r.src + i, dst: r.dst + i, n: min(per, r.n-i)})
		}
	}
	tp.split[key] = rs
	return rs
}

// Precision is the arithmetic of a network's matrix products.
type Precision int

const (
	// Float64: products and activations in float64.
	Float64 Precision = iota
	// Float32: products, their accumulation and the fused activations in
	// float32 (operands rounded when packed); tensors, gradients summed
	// across operations and the parameters stay float64.
	Float32
)

var precisionNames = [...]string{"float64", "float32"}

func (p Precision) String() string { return precisionNames[p] }

// ParsePrecision returns the precision named "float64" or "float32".
func ParsePrecision(s string) (Precision, error) {
	for i, n := range precisionNames {
		if n == s {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("nnlayers: unknown precision %q (float64 or float32)", s)
}

// Conv is a periodic D-dimensional convolution with bias (see the package
// documentation), optionally followed by a fused activation. Kernel 1 is a
// per-site linear map (1×1 convolution).
type Conv struct {
	geo         *Geometry
	in, out     int
	kernel, dil int
	tp          *taps
	W, B        *Param // W: [taps·in, out] row-major; B: [out]
	act         Activation
	prec        Precision
	self        *Bank // the bank of this convolution alone
}

// NewConv returns a convolution from in to out channels with odd kernel size
// and dilation ≥ 1, parameters named name+".weight" and name+".bias", zero.
// Initialise them with [Conv.InitXavier] or [Conv.InitZero].
func NewConv(geo *Geometry, name string, in, out, kernel, dilation int) (*Conv, error) {
	if in < 1 || out < 1 || kernel < 1 || kernel%2 == 0 || dilation < 1 {
		return nil, fmt.Errorf("nnlayers: convolution %s: %d → %d channels, kernel %d, dilation %d: need positive channels, an odd kernel and dilation ≥ 1",
			name, in, out, kernel, dilation)
	}
	tp, err := geo.stencil(kernel, dilation)
	if err != nil {
		return nil, fmt.Errorf("nnlayers: convolution %s: %w", name, err)
	}
	c := &Conv{geo: geo, in: in, out: out, kernel: kernel, dil: dilation, tp: tp, act: Identity}
	c.W = NewParam(name+".weight", tp.n*in, out)
	c.B = NewParam(name+".bias", out)
	c.self = &Bank{members: []Outputs{c.AllOutputs()}, kind: "convolutions"}
	return c, nil
}

// SetActivation fuses activation a into the convolution: Apply returns
// a(conv(x)) and keeps only that (a derivative is computed from the
// output), instead of a convolution and a separate activation.
func (c *Conv) SetActivation(a Activation) { c.act = a }

// SetKind names the convolution's kind in a tape's Profile.
func (c *Conv) SetKind(kind string) { c.self.kind = kind }

// SetPrecision sets the arithmetic of the convolution's matrix products.
func (c *Conv) SetPrecision(p Precision) { c.prec = p }

// Activation is the fused activation (Identity: none).
func (c *Conv) Activation() Activation { return c.act }

// Channels returns the input and output channels.
func (c *Conv) Channels() (in, out int) { return c.in, c.out }

// Params returns the weight and the bias.
func (c *Conv) Params() Params { return Params{c.W, c.B} }

// InitXavier draws the weight from Xavier normal with the given gain
// (fan-in k^D·in, fan-out k^D·out) and zeroes the bias.
func (c *Conv) InitXavier(seed uint64, gain float64) {
	c.W.Init(seed, XavierStd(gain, c.tp.n*c.in, c.tp.n*c.out))
	clear(c.B.Value)
}

// InitZero zeroes weight and bias (the last layer of a flow's context
// network, so that the flow starts as the identity).
func (c *Conv) InitZero() {
	clear(c.W.Value)
	clear(c.B.Value)
}

// Flops is the number of floating-point operations of one forward pass on
// b batch members (the backward pass costs twice as much).
func (c *Conv) Flops(b int) int64 {
	return int64(c.geo.Volume()) * int64(b) * int64(c.out) * (2*int64(c.tp.n*c.in) + 1)
}

// Apply returns the convolution of x (and its fused activation).
func (c *Conv) Apply(t *Tape, x *Tensor) *Tensor { return c.self.Apply(t, x)[0] }

// Outputs is the output channels [Lo, Hi) of a convolution: a member of a
// bank.
type Outputs struct {
	Conv   *Conv
	Lo, Hi int
}

// Outputs returns output channels [lo, hi) of c; AllOutputs all of them.
func (c *Conv) Outputs(lo, hi int) Outputs { return Outputs{Conv: c, Lo: lo, Hi: hi} }

// AllOutputs returns all of c's output channels.
func (c *Conv) AllOutputs() Outputs { return Outputs{Conv: c, Lo: 0, Hi: c.out} }

// Bank is a convolution whose output channels are cut into slices, each
// returned in a tensor of its own (the heads of the pseudofermion flows'
// context network: each part of a head is read by a different operation,
// which then streams through a contiguous tensor). The product is the
// convolution's: one matrix product whose epilogue stores each column in
// its slice's tensor.
type Bank struct {
	members   []Outputs
	recs      Records[bankRec]
	lay       *layout
	kind      string // for a Profile
	uncleared bool   // outputs' gradients left pending
}

// SetUnclearedGrads makes the bank hand out its outputs with their
// gradients not cleared: the first operation of the backward pass to take
// one ([Tensor.GradForWrite]) stores its values instead of adding them to
// zeros, which saves clearing the buffer and reading it back. Every
// operation that consumes an output must then take its gradient through
// [Tensor.GradForAdd] or [Tensor.GradForWrite] (the built-in operations
// do; a gradient no operation took counts as zero). Callers that set an
// output's gradient themselves take it with GradForWrite first.
func (b *Bank) SetUnclearedGrads(on bool) { b.uncleared = on }

// SetKind names the bank's kind in a tape's Profile (default
// "convolutions").
func (b *Bank) SetKind(kind string) { b.kind = kind }

// bankRec is one application of a bank: its output tensors.
type bankRec struct {
	outs []*Tensor
}

// NewBank returns the bank of slices of one convolution, in order of their
// channels.
func NewBank(members ...Outputs) (*Bank, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("nnlayers: a bank of no slices")
	}
	c := members[0].Conv
	lo := 0
	for _, m := range members {
		if m.Conv != c {
			return nil, fmt.Errorf("nnlayers: a bank holds slices of one convolution, not of %s and %s", c.W.Name, m.Conv.W.Name)
		}
		if m.Lo != lo || m.Hi > c.out || m.Lo >= m.Hi {
			return nil, fmt.Errorf("nnlayers: slices [%d, %d) of convolution %s with %d outputs: the slices must cover its channels in order", m.Lo, m.Hi, c.W.Name, c.out)
		}
		lo = m.Hi
	}
	if lo != c.out {
		return nil, fmt.Errorf("nnlayers: the slices of convolution %s end at channel %d of %d", c.W.Name, lo, c.out)
	}
	return &Bank{members: members, kind: "convolutions"}, nil
}

// Len is the number of members.
func (b *Bank) Len() int { return len(b.members) }

// Params returns the convolution's parameters.
func (b *Bank) Params() Params { return b.members[0].Conv.Params() }

// Flops is the number of floating-point operations of one forward pass on
// bs batch members.
func (b *Bank) Flops(bs int) int64 {
	n := int64(0)
	for _, m := range b.members {
		c := m.Conv
		n += int64(c.geo.Volume()) * int64(bs) * int64(m.Hi-m.Lo) * (2*int64(c.tp.n*c.in) + 1)
	}
	return n
}

// Apply returns the convolution of x, one tensor per slice (the slice of
// tensors is the bank's and is overwritten by its next application on t's
// next pass; the tensors are t's).
func (b *Bank) Apply(t *Tape, x *Tensor) []*Tensor {
	c0 := b.members[0].Conv
	v := c0.geo.Volume()
	if x.V != v || x.C != c0.in {
		panic(fmt.Sprintf("nnlayers: convolution %s of %d channels applied to %s", c0.W.Name, c0.in, x.shape()))
	}
	start := t.Begin()
	rec := b.recs.Next(t)
	rec.outs = rec.outs[:0]
	for _, m := range b.members {
		rec.outs = append(rec.outs, t.tensor(v, x.B, m.Hi-m.Lo, false, !b.uncleared)) // the epilogue writes them
	}
	pad := x
	if d := c0.tp.depth; d > 0 {
		z, _ := c0.geo.zone(d)
		pad = t.Uncleared(z.Len(), x.B, c0.in) // the copy and the exchange write it all
		t.copyData(pad.Data, x.Data)
		c0.geo.halo(d, x.B*c0.in).Exchange(pad.Data, decomp.All)
	}
	if c0.prec == Float32 {
		bankForward(t, scratchOf[float32](t), b, x, pad, rec.outs)
	} else {
		bankForward(t, scratchOf[float64](t), b, x, pad, rec.outs)
	}
	t.record(node{op: b, in: [2]*Tensor{x}, scratch: pad, bank: rec})
	t.endProducts(b.kind, start, b.Flops(x.B), false)
	return rec.outs
}

func (b *Bank) backward(t *Tape, n *node) {
	x, pad, ys := n.in[0], n.scratch, n.bank.outs
	for _, y := range ys {
		y.GradForAdd() // a gradient no consumer took is zero
	}
	if b.members[0].Conv.prec == Float32 {
		bankBackward(t, scratchOf[float32](t), b, x, pad, ys)
	} else {
		bankBackward(t, scratchOf[float64](t), b, x, pad, ys)
	}
}
