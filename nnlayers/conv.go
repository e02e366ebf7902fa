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
}

// NewGeometry returns the geometry of layout ly over its domain communicator.
func NewGeometry(comm mpi.Comm, ly *decomp.Layout) *Geometry {
	return &Geometry{comm: comm, ly: ly, zones: map[int]*decomp.Zone{},
		halos: map[[2]int]*halo.Halo[float64]{}, shifts: map[string][]int32{}}
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

// Conv is a periodic D-dimensional convolution with bias (see the package
// documentation). Kernel 1 is a per-site linear map (1×1 convolution).
type Conv struct {
	geo          *Geometry
	in, out      int
	kernel, dil  int
	depth        int
	taps         int       // k^D
	nbr          [][]int32 // per tap: site → index in [0, V+H)
	W, B         *Param    // W: [taps·in, out] row-major; B: [out]
	scratch      [][]float64
	chunkW       [][]float64 // per batch chunk: partial dW (+ dB at the end)
	wt           []float64   // Wᵀ, refreshed in every backward pass
	forwardTask  convTask
	backwardTask convTask
	noSIMD       bool // the portable kernels even where vector ones exist (tests)
}

// NewConv returns a convolution from in to out channels with odd kernel size
// and dilation ≥ 1, parameters named name+".weight" and name+".bias", zero.
// Initialise them with [Conv.InitXavier] or [Conv.InitZero].
func NewConv(geo *Geometry, name string, in, out, kernel, dilation int) (*Conv, error) {
	if in < 1 || out < 1 || kernel < 1 || kernel%2 == 0 || dilation < 1 {
		return nil, fmt.Errorf("nnlayers: convolution %s: %d → %d channels, kernel %d, dilation %d: need positive channels, an odd kernel and dilation ≥ 1",
			name, in, out, kernel, dilation)
	}
	nd := geo.ly.Lattice().NumDims()
	r := (kernel - 1) / 2
	c := &Conv{geo: geo, in: in, out: out, kernel: kernel, dil: dilation, depth: r * dilation}
	c.taps = 1
	for range nd {
		c.taps *= kernel
	}
	c.W = NewParam(name+".weight", c.taps*in, out)
	c.B = NewParam(name+".bias", out)
	if c.depth > 0 {
		delta := make([]int, nd)
		for t := range c.taps {
			k := t
			for mu := nd - 1; mu >= 0; mu-- {
				delta[mu] = (k%kernel - r) * dilation
				k /= kernel
			}
			tab, err := geo.Shift(c.depth, delta)
			if err != nil {
				return nil, fmt.Errorf("nnlayers: convolution %s: %w", name, err)
			}
			c.nbr = append(c.nbr, tab)
		}
	}
	c.forwardTask.c, c.backwardTask.c = c, c
	c.backwardTask.back = true
	return c, nil
}

// Params returns the weight and the bias.
func (c *Conv) Params() Params { return Params{c.W, c.B} }

// InitXavier draws the weight from Xavier normal with the given gain
// (fan-in k^D·in, fan-out k^D·out) and zeroes the bias.
func (c *Conv) InitXavier(seed uint64, gain float64) {
	c.W.Init(seed, XavierStd(gain, c.taps*c.in, c.taps*c.out))
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
	return int64(c.geo.Volume()) * int64(b) * int64(c.out) * (2*int64(c.taps*c.in) + 1)
}

// Apply returns the convolution of x.
func (c *Conv) Apply(t *Tape, x *Tensor) *Tensor {
	v := c.geo.Volume()
	if x.V != v || x.C != c.in {
		panic(fmt.Sprintf("nnlayers: convolution %s of %d channels applied to %s", c.W.Name, c.in, x.shape()))
	}
	y := t.Tensor(v, x.B, c.out)
	var pad *Tensor
	if c.depth > 0 {
		z, _ := c.geo.zone(c.depth)
		pad = t.Tensor(z.Len(), x.B, c.in)
		copy(pad.Data, x.Data)
		c.geo.halo(c.depth, x.B*c.in).Exchange(pad.Data, decomp.All)
	} else {
		pad = x
	}
	c.ensureScratch(t.workers.n, x.B)
	c.forwardTask.x, c.forwardTask.pad, c.forwardTask.y = x, pad, y
	t.workers.run(chunks(x.B), &c.forwardTask)
	c.forwardTask.x, c.forwardTask.pad, c.forwardTask.y = nil, nil, nil
	t.record(node{op: c, in: [2]*Tensor{x}, out: y, scratch: pad})
	return y
}

// siteGroup is the number of sites whose rows the backward pass stacks
// into one matrix product for the weight gradient.
const siteGroup = 8

func (c *Conv) ensureScratch(workers, b int) {
	row := c.taps * c.in
	need := siteGroup * ChunkSize * (row + c.out)
	for len(c.scratch) < workers {
		c.scratch = append(c.scratch, make([]float64, need))
	}
	for len(c.chunkW) < chunks(b) {
		c.chunkW = append(c.chunkW, make([]float64, c.W.Size()+c.B.Size()))
	}
	if len(c.wt) != c.W.Size() {
		c.wt = make([]float64, c.W.Size())
	}
}

// convTask runs the forward or the backward pass on one chunk of the batch.
type convTask struct {
	c       *Conv
	back    bool
	x, y    *Tensor
	pad     *Tensor // padded input (forward) or its gradient (backward)
	padData *Tensor // padded input in the backward pass
}

// gather fills a (rows × taps·in) with the neighbourhoods of site s for
// batch members [lo, hi).
func (c *Conv) gather(a []float64, pad *Tensor, s, lo, hi int) {
	in, b := c.in, pad.B
	row := c.taps * in
	for t := 0; t < c.taps; t++ {
		src := s
		if c.depth > 0 {
			src = int(c.nbr[t][s])
		}
		base := (src*b + lo) * in
		for r := 0; r < hi-lo; r++ {
			copy(a[r*row+t*in:r*row+(t+1)*in], pad.Data[base+r*in:base+(r+1)*in])
		}
	}
}

func (ct *convTask) run(w, chunk int) {
	c := ct.c
	b := ct.y.B
	lo, hi := chunkRange(chunk, b)
	rows := hi - lo
	row := c.taps * c.in
	out := c.out
	v := c.geo.Volume()
	simd := !c.noSIMD
	if !ct.back {
		a := c.scratch[w][:rows*row]
		for s := 0; s < v; s++ {
			y := ct.y.Data[(s*b+lo)*out : (s*b+hi)*out]
			for r := 0; r < rows; r++ {
				copy(y[r*out:(r+1)*out], c.B.Value)
			}
			c.gather(a, ct.pad, s, lo, hi)
			gemm(simd, false, rows, out, row, a, row, c.W.Value, out, y, out)
		}
		return
	}
	// Backward, siteGroup sites at a time: dW += Aᵀ dY over the stacked
	// rows of the group; dA = dY Wᵀ per site, scattered to the
	// neighbourhoods.
	part := c.chunkW[chunk]
	clear(part)
	dW := part[:c.W.Size()]
	dB := part[c.W.Size():]
	scratch := c.scratch[w]
	ag := scratch[:siteGroup*rows*row]
	dyg := scratch[siteGroup*rows*row : siteGroup*rows*(row+out)]
	for s0 := 0; s0 < v; s0 += siteGroup {
		g := min(siteGroup, v-s0)
		for k := range g {
			s := s0 + k
			dy := ct.y.Grad[(s*b+lo)*out : (s*b+hi)*out]
			copy(dyg[k*rows*out:], dy)
			for r := 0; r < rows; r++ {
				for o, x := range dy[r*out : (r+1)*out] {
					dB[o] += x
				}
			}
			c.gather(ag[k*rows*row:], ct.padData, s, lo, hi)
		}
		gemm(simd, true, row, out, g*rows, ag, row, dyg, out, dW, out)
		if ct.pad == nil {
			continue
		}
		for k := range g {
			s := s0 + k
			// dA (rows × taps·in) = dY Wᵀ, into the rows of ag.
			da := ag[k*rows*row : (k+1)*rows*row]
			clear(da)
			gemm(simd, false, rows, row, out, dyg[k*rows*out:], out, c.wt, row, da, row)
			for t := 0; t < c.taps; t++ {
				dst := s
				if c.depth > 0 {
					dst = int(c.nbr[t][s])
				}
				base := (dst*b + lo) * c.in
				for r := 0; r < rows; r++ {
					gr := ct.pad.Grad[base+r*c.in : base+(r+1)*c.in]
					for i, x := range da[r*row+t*c.in : r*row+(t+1)*c.in] {
						gr[i] += x
					}
				}
			}
		}
	}
}

func (c *Conv) backward(t *Tape, n *node) {
	x, y, pad := n.in[0], n.out, n.scratch
	ct := &c.backwardTask
	ct.y, ct.padData = y, pad
	var dpad *Tensor
	if x.Grad != nil {
		if c.depth > 0 {
			// The padded gradient reuses the padded input's Grad buffer.
			dpad = pad
			clear(dpad.Grad)
		} else {
			dpad = x
		}
	}
	ct.pad = dpad
	c.ensureScratch(t.workers.n, y.B)
	// Wᵀ (out × taps·in) for dA = dY Wᵀ.
	row := c.taps * c.in
	for i := 0; i < row; i++ {
		for o := 0; o < c.out; o++ {
			c.wt[o*row+i] = c.W.Value[i*c.out+o]
		}
	}
	t.workers.run(chunks(y.B), ct)
	ct.y, ct.pad, ct.padData = nil, nil, nil
	// Parameter gradients: chunk partials in chunk order.
	nw := c.W.Size()
	for k := range chunks(y.B) {
		part := c.chunkW[k]
		for i, v := range part[:nw] {
			c.W.Grad[i] += v
		}
		for i, v := range part[nw:] {
			c.B.Grad[i] += v
		}
	}
	if dpad != nil && c.depth > 0 {
		c.geo.halo(c.depth, y.B*c.in).Adjoint(dpad.Grad, decomp.All)
		for i := range x.Grad {
			x.Grad[i] += dpad.Grad[i]
		}
	}
}
