package pfflow

import (
	"fmt"
	"slices"

	"pfmpi/decomp"
	"pfmpi/group"
	"pfmpi/halo"
	"pfmpi/nnlayers"
)

// LinkChannels is the number of tensor channels of the links of an
// nd-dimensional Nc-colour gauge field: nd·Nc² complex numbers per site.
func LinkChannels(nd, nc int) int { return nd * nc * nc * 2 }

// linkAt is the channel of U_μ(x)_{ij} (real part; imaginary part next).
func linkAt(nc, mu, i, j int) int { return ((mu*nc+i)*nc + j) * 2 }

// U1Links returns the links U_μ(x) = e^{iθ_μ(x)} of 2D (or any-D) U(1)
// angles theta (V × B × D) as a links tensor (V × B × 2D), recording the
// map for the backward pass: dL/dθ = Re(conj(G) · i U) ([nnlayers.Phase]).
func U1Links(t *nnlayers.Tape, theta *nnlayers.Tensor) *nnlayers.Tensor {
	return nnlayers.Phase(t, theta)
}

// Context computes the gauge-invariant inputs of the pseudofermion context
// network (Appendix B 2, Eqs. B2–B3): Re Tr P_μν(x) and Im Tr P_μν(x) for
// every plane μ < ν, then x_μ mod 4 for every direction; with Polyakov
// features (beyond the paper), then Re Tr L_μ(x) and Im Tr L_μ(x) for every
// direction, L_μ(x) the Wilson line winding the torus through x in
// direction μ (the same trace for every x on the line). The plaquettes and
// the coordinates do not see the holonomies, on which the pseudofermion
// kernels depend (on small tori strongly): without them the layers' log
// det A(x), hence log q(φ|U)'s normalisation, cannot follow log det K.
type Context struct {
	geo    *nnlayers.Geometry
	nd, nc int
	grp    group.Group
	up     [][]int32 // box zone of depth 1
	coords [][]float64
	lines  [][][]int32 // Polyakov features: per direction, the lines of sites in order of x_μ (nil: none)
	maxLen int
	recs   nnlayers.Records[contextOp]
}

// NewContext returns the input features of Nc-colour links on geo, with
// Polyakov features when polyakov is set (the lattice on one rank).
func NewContext(geo *nnlayers.Geometry, nc int, polyakov bool) (*Context, error) {
	ly := geo.Layout()
	nd := ly.Lattice().NumDims()
	grp, err := group.Of(nc)
	if err != nil {
		return nil, fmt.Errorf("pfflow: %w", err)
	}
	c := &Context{geo: geo, nd: nd, nc: nc, grp: grp}
	if polyakov {
		if geo.Comm().Size() != 1 {
			return nil, fmt.Errorf("pfflow: Polyakov-line context features need the lattice on one rank (a process grid of ones; parallelise over replicas), got %d ranks per lattice", geo.Comm().Size())
		}
		c.lines = polyakovLines(ly)
		c.maxLen = slices.Max(ly.Lattice().Dims())
	}
	for mu := range nd {
		delta := make([]int, nd)
		delta[mu] = 1
		tab, err := geo.Shift(1, delta)
		if err != nil {
			return nil, err
		}
		c.up = append(c.up, tab)
	}
	x := make([]int, nd)
	c.coords = make([][]float64, ly.Volume())
	for s := range c.coords {
		ly.GlobalCoord(s, x)
		c.coords[s] = make([]float64, nd)
		for mu := range nd {
			c.coords[s][mu] = float64(x[mu] % 4)
		}
	}
	return c, nil
}

// Channels is the number of features: 2 per plane and 1 per direction (4
// in 2D), and 2 per direction more with Polyakov features.
func (c *Context) Channels() int {
	n := c.nd*(c.nd-1) + c.nd
	if c.lines != nil {
		n += 2 * c.nd
	}
	return n
}

// polyakovLines returns, per direction μ, the lines of sites along μ
// (local indices in order of x_μ) of a lattice held whole by one rank.
func polyakovLines(ly *decomp.Layout) [][][]int32 {
	dims := ly.Lattice().Dims()
	nd := len(dims)
	x := make([]int, nd)
	lines := make([][][]int32, nd)
	for mu := range nd {
		index := map[string]int{} // the line's key: the other coordinates
		for s := range ly.Volume() {
			ly.GlobalCoord(s, x)
			key := make([]byte, 0, 4*nd)
			for nu, v := range x {
				if nu != mu {
					key = append(key, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
				}
			}
			k, ok := index[string(key)]
			if !ok {
				k = len(lines[mu])
				index[string(key)] = k
				lines[mu] = append(lines[mu], make([]int32, dims[mu]))
			}
			lines[mu][k][x[mu]] = int32(s)
		}
	}
	return lines
}

// Apply returns the features of links (V × B × LinkChannels).
func (c *Context) Apply(t *nnlayers.Tape, links *nnlayers.Tensor) (*nnlayers.Tensor, error) {
	if links.C != LinkChannels(c.nd, c.nc) || links.V != c.geo.Volume() {
		return nil, fmt.Errorf("pfflow: context of %d sites × %d channels, want %d × %d", links.V, links.C, c.geo.Volume(), LinkChannels(c.nd, c.nc))
	}
	z, err := c.geo.Zone(1)
	if err != nil {
		return nil, err
	}
	h, err := c.geo.Halo(1, links.B*links.C)
	if err != nil {
		return nil, err
	}
	start := t.Begin()
	defer t.End("context features", start, 0, false)
	pad := t.Tensor(z.Len(), links.B, links.C)
	copy(pad.Data, links.Data)
	h.Exchange(pad.Data, decomp.All)
	feat := t.Tensor(links.V, links.B, c.Channels())
	o := c.recs.Next(t)
	*o = contextOp{c: c, h: h, links: links, pad: pad, feat: feat, work: o.work}
	o.ensure(t.Workers())
	t.Run(nnlayers.Chunks(links.B), o)
	t.RecordCustom(o)
	return feat, nil
}

type contextOp struct {
	c                *Context
	h                *halo.Halo[float64] // the exchange of the links, captured at forward time
	links, pad, feat *nnlayers.Tensor
	back             bool
	work             [][]complex128
}

func (o *contextOp) ensure(w int) {
	n := o.c.nc * o.c.nc
	for len(o.work) < w {
		// 10 matrices for the plaquettes, 3 + 2(L+1) for the Polyakov lines
		o.work = append(o.work, make([]complex128, (13+2*(o.c.maxLen+1))*n))
	}
}

// load copies link (site s of the padded tensor, member b, direction mu)
// into m.
func (o *contextOp) load(m []complex128, s, b, mu int) {
	nc := o.c.nc
	base := o.pad.At(s, b, 0)
	for i := range nc {
		for j := range nc {
			m[i*nc+j] = cget(o.pad.Data, base+linkAt(nc, mu, i, j))
		}
	}
}

// addGrad adds g (n × n) to the gradient of the padded link.
func (o *contextOp) addGrad(g []complex128, s, b, mu int) {
	nc := o.c.nc
	base := o.pad.At(s, b, 0)
	for i := range nc {
		for j := range nc {
			cadd(o.pad.Grad, base+linkAt(nc, mu, i, j), g[i*nc+j])
		}
	}
}

func (o *contextOp) Run(w, chunk int) {
	c := o.c
	nc, nn, grp := c.nc, c.nc*c.nc, c.grp
	m := o.work[w]
	u1, u2, u3, u4 := m[0:nn], m[nn:2*nn], m[2*nn:3*nn], m[3*nn:4*nn]
	a, bb, p, g := m[4*nn:5*nn], m[5*nn:6*nn], m[6*nn:7*nn], m[7*nn:8*nn]
	d3, d4 := m[8*nn:9*nn], m[9*nn:10*nn]
	lo, hi := nnlayers.ChunkRange(chunk, o.links.B)
	for s := 0; s < o.links.V; s++ {
		for b := lo; b < hi; b++ {
			f := o.feat.At(s, b, 0)
			k := 0
			for mu := range c.nd {
				for nu := mu + 1; nu < c.nd; nu++ {
					// P = U_μ(x) U_ν(x+μ̂) U_μ(x+ν̂)† U_ν(x)†.
					o.load(u1, s, b, mu)
					o.load(u2, int(c.up[mu][s]), b, nu)
					o.load(u3, int(c.up[nu][s]), b, mu)
					o.load(u4, s, b, nu)
					grp.Adj(d3, u3)
					grp.Adj(d4, u4)
					if !o.back {
						grp.Mul(a, u1, u2)
						grp.Mul(bb, a, d3)
						grp.Mul(p, bb, d4)
						var tr complex128
						for i := range nc {
							tr += p[i*nc+i]
						}
						o.feat.Data[f+2*k], o.feat.Data[f+2*k+1] = real(tr), imag(tr)
						k++
						continue
					}
					G := complex(o.feat.Grad[f+2*k], o.feat.Grad[f+2*k+1])
					k++
					if G == 0 {
						continue
					}
					// G_U1 = G (U2 U3† U4†)†, G_U2 = G (U3† U4† U1)†,
					// G_U3 = Ḡ U4† U1 U2, G_U4 = Ḡ U1 U2 U3†.
					grp.Mul(a, u2, d3)
					grp.Mul(bb, a, d4)
					grp.Adj(g, bb)
					scaleMat(g, G)
					o.addGrad(g, s, b, mu)
					grp.Mul(a, d3, d4)
					grp.Mul(bb, a, u1)
					grp.Adj(g, bb)
					scaleMat(g, G)
					o.addGrad(g, int(c.up[mu][s]), b, nu)
					grp.Mul(a, d4, u1)
					grp.Mul(g, a, u2)
					scaleMat(g, conj(G))
					o.addGrad(g, int(c.up[nu][s]), b, mu)
					grp.Mul(a, u1, u2)
					grp.Mul(g, a, d3)
					scaleMat(g, conj(G))
					o.addGrad(g, s, b, nu)
				}
			}
			if !o.back {
				for mu := range c.nd {
					o.feat.Data[f+2*k+mu] = c.coords[s][mu]
				}
			}
		}
	}
	if c.lines != nil {
		for b := lo; b < hi; b++ {
			o.polyakov(b, m[10*nn:])
		}
	}
}

// polyakov sets (or, backward, back-propagates) the Polyakov features of
// member b: for the line x_1 … x_L of direction μ, Tr L with L = U_μ(x_1)
// ⋯ U_μ(x_L). Backward, with G the sum of the feature gradients over the
// line, Tr L = Tr U_k R_k with R_k = U_{k+1} ⋯ U_L U_1 ⋯ U_{k−1} gives
// G_{U_k} = G R_k†.
func (o *contextOp) polyakov(b int, m []complex128) {
	c := o.c
	nc, nn, grp := c.nc, c.nc*c.nc, c.grp
	first := c.nd*(c.nd-1) + c.nd // channel of the first Polyakov feature
	u, a, g := m[:nn], m[nn:2*nn], m[2*nn:3*nn]
	pre := m[3*nn:] // pre[k] = U_1 ⋯ U_k (pre[0] = 1), then suf[k] = U_{k+1} ⋯ U_L
	for mu := range c.nd {
		ch := first + 2*mu
		for _, line := range c.lines[mu] {
			n := len(line)
			suf := pre[(n+1)*nn:]
			setIdentity(pre[:nn], nc)
			for k, s := range line {
				o.load(u, int(s), b, mu)
				grp.Mul(pre[(k+1)*nn:(k+2)*nn], pre[k*nn:(k+1)*nn], u)
			}
			if !o.back {
				var tr complex128
				for i := range nc {
					tr += pre[n*nn+i*nc+i]
				}
				for _, s := range line {
					f := o.feat.At(int(s), b, ch)
					o.feat.Data[f], o.feat.Data[f+1] = real(tr), imag(tr)
				}
				continue
			}
			var G complex128
			for _, s := range line {
				f := o.feat.At(int(s), b, ch)
				G += complex(o.feat.Grad[f], o.feat.Grad[f+1])
			}
			if G == 0 {
				continue
			}
			setIdentity(suf[n*nn:(n+1)*nn], nc)
			for k := n - 1; k >= 0; k-- {
				o.load(u, int(line[k]), b, mu)
				grp.Mul(suf[k*nn:(k+1)*nn], u, suf[(k+1)*nn:(k+2)*nn])
			}
			for k, s := range line {
				// R_k = (U_{k+1} ⋯ U_L)(U_1 ⋯ U_{k−1}) = suf[k+1] pre[k] (0-based k).
				grp.Mul(a, suf[(k+1)*nn:(k+2)*nn], pre[k*nn:(k+1)*nn])
				grp.Adj(g, a)
				scaleMat(g, G)
				o.addGrad(g, int(s), b, mu)
			}
		}
	}
}

// setIdentity sets m to the n × n identity.
func setIdentity(m []complex128, n int) {
	clear(m[:n*n])
	for i := range n {
		m[i*n+i] = 1
	}
}

// Kind names the operation's kind in a tape's Profile.
func (o *contextOp) Kind() string { return "context features" }

func (o *contextOp) Backward(t *nnlayers.Tape) error {
	if o.links.Grad == nil {
		return nil
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.links.B), o)
	o.back = false
	o.h.Adjoint(o.pad.Grad, decomp.All)
	for i := range o.links.Grad {
		o.links.Grad[i] += o.pad.Grad[i]
	}
	return nil
}

func scaleMat(m []complex128, z complex128) {
	for i := range m {
		m[i] *= z
	}
}

func conj(z complex128) complex128 { return complex(real(z), -imag(z)) }
