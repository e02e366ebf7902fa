package pfflow

import (
	"fmt"

	"pfmpi/decomp"
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
// every plane μ < ν, then x_μ mod 4 for every direction.
type Context struct {
	geo    *nnlayers.Geometry
	nd, nc int
	up     [][]int32 // box zone of depth 1
	coords [][]float64
	recs   nnlayers.Records[contextOp]
}

// NewContext returns the input features of Nc-colour links on geo.
func NewContext(geo *nnlayers.Geometry, nc int) (*Context, error) {
	ly := geo.Layout()
	nd := ly.Lattice().NumDims()
	c := &Context{geo: geo, nd: nd, nc: nc}
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
// in 2D).
func (c *Context) Channels() int { return c.nd*(c.nd-1) + c.nd }

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
		o.work = append(o.work, make([]complex128, 10*n))
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
	nc, nn := c.nc, c.nc*c.nc
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
					matDagger(d3, u3, nc)
					matDagger(d4, u4, nc)
					if !o.back {
						matMul(a, u1, u2, nc)
						matMul(bb, a, d3, nc)
						matMul(p, bb, d4, nc)
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
					matMul(a, u2, d3, nc)
					matMul(bb, a, d4, nc)
					matDagger(g, bb, nc)
					scaleMat(g, G)
					o.addGrad(g, s, b, mu)
					matMul(a, d3, d4, nc)
					matMul(bb, a, u1, nc)
					matDagger(g, bb, nc)
					scaleMat(g, G)
					o.addGrad(g, int(c.up[mu][s]), b, nu)
					matMul(a, d4, u1, nc)
					matMul(g, a, u2, nc)
					scaleMat(g, conj(G))
					o.addGrad(g, int(c.up[nu][s]), b, mu)
					matMul(a, u1, u2, nc)
					matMul(g, a, d3, nc)
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
