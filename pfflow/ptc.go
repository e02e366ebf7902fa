package pfflow

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
)

// Transport is the parallel-transport machinery shared by the PTCs of a
// lattice: the nearest-neighbour zone with the antiperiodic time boundary
// (fermion boundary conditions, as in package dslash) and its halo
// exchanges, built once per number of values per site.
type Transport struct {
	geo    *nnlayers.Geometry
	comm   mpi.Comm
	nd, nc int
	zone   *decomp.Zone
	up, dn [][]int32
	halos  map[int]*halo.Halo[float64]
	phases []complex128
}

// NewTransport returns the transports of Nc-colour fields on geo.
func NewTransport(geo *nnlayers.Geometry, nc int) (*Transport, error) {
	ly := geo.Layout()
	nd := ly.Lattice().NumDims()
	zone, err := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
	if err != nil {
		return nil, err
	}
	tr := &Transport{geo: geo, comm: geo.Comm(), nd: nd, nc: nc, zone: zone, halos: map[int]*halo.Halo[float64]{}}
	tr.phases = make([]complex128, nd)
	for mu := range nd {
		tr.phases[mu] = 1
		tr.up = append(tr.up, zone.Up(mu))
		tr.dn = append(tr.dn, zone.Dn(mu))
	}
	tr.phases[0] = -1
	return tr, nil
}

// Close releases the halo exchanges.
func (tr *Transport) Close() {
	for _, h := range tr.halos {
		h.Close()
	}
	clear(tr.halos)
}

func (tr *Transport) halo(n int) (*halo.Halo[float64], error) {
	if h, ok := tr.halos[n]; ok {
		return h, nil
	}
	h, err := halo.New[float64](tr.comm, tr.zone, n, tr.phases)
	if err != nil {
		return nil, err
	}
	tr.halos[n] = h
	return h, nil
}

// PTC is a parallel-transport convolution (Eqs. 25–26): from a field with
// In features (each an Nc-colour vector) it gathers, at every site y, the
// field at y and at its 2d neighbours parallel transported to y,
//
//	L(y) = {φ(y), U_μ(y) φ(y+μ̂), U_μ(y−μ̂)† φ(y−μ̂) : μ = 0 … d−1},
//
// K̃ = (2d+1)·In features ordered (self, +0̂, −0̂, +1̂, −1̂, …) × In, and
// returns Out features PTC_α(y) = Σ_γ M_αγ(y) L_γ(y). M (Out × K̃ complex,
// row-major, real and imaginary parts adjacent) is an input tensor: the
// context network's output at y. The map is linear in φ and, with a
// gauge-invariant M, gauge equivariant.
type PTC struct {
	tr      *Transport
	in, out int
	op      ptcOp
}

// NewPTC returns a PTC from in to out features.
func NewPTC(tr *Transport, in, out int) *PTC {
	p := &PTC{tr: tr, in: in, out: out}
	p.op.p = p
	return p
}

// Gathered is K̃ = (2d+1)·In.
func (p *PTC) Gathered() int { return (2*p.tr.nd + 1) * p.in }

// Params is the number of real channels of M: 2·Out·K̃.
func (p *PTC) Params() int { return 2 * p.out * p.Gathered() }

// Flops is the number of floating-point operations of one forward pass on
// b batch members per site: the transports (2d Nc×Nc matrix–vector
// products per input feature) and the Out × K̃ complex matrix on Nc colours.
func (p *PTC) Flops(b int) int64 {
	nc := int64(p.tr.nc)
	transports := int64(2*p.tr.nd) * int64(p.in) * nc * nc * 8
	mix := int64(p.out) * int64(p.Gathered()) * nc * 8
	return int64(p.tr.geo.Volume()) * int64(b) * (transports + mix)
}

// Apply returns PTC[U, φ] for the links (V × B × LinkChannels), the field
// phi (V × B × In·Nc·2) and the matrices M, channels [off, off+Params) of m
// (a context head's output, read in place).
func (p *PTC) Apply(t *nnlayers.Tape, links, phi, m *nnlayers.Tensor, off int) (*nnlayers.Tensor, error) {
	tr := p.tr
	nc := tr.nc
	if phi.C != p.in*nc*2 || off < 0 || m.C < off+p.Params() || links.C != LinkChannels(tr.nd, nc) ||
		phi.V != links.V || m.V != links.V || phi.B != links.B || m.B != links.B {
		return nil, fmt.Errorf("pfflow: PTC %d→%d applied to field %d×%d×%d, matrices ×%d, links ×%d",
			p.in, p.out, phi.V, phi.B, phi.C, m.C, links.C)
	}
	slots := (1 + tr.nd) * p.in * nc * 2
	h, err := tr.halo(phi.B * slots)
	if err != nil {
		return nil, err
	}
	o := &p.op
	o.t, o.links, o.phi, o.m, o.moff = t, links, phi, m, off
	o.pad = t.Tensor(tr.zone.Len(), phi.B, slots)
	o.gath = t.Tensor(phi.V, phi.B, p.Gathered()*nc*2)
	o.out = t.Tensor(phi.V, phi.B, p.out*nc*2)
	o.ensure(t.Workers())
	o.stage = 0
	t.Run(nnlayers.Chunks(phi.B), o)
	h.Exchange(o.pad.Data, decomp.All)
	o.stage = 1
	t.Run(nnlayers.Chunks(phi.B), o)
	t.RecordCustom(o)
	return o.out, nil
}

type ptcOp struct {
	p              *PTC
	t              *nnlayers.Tape
	links, phi, m  *nnlayers.Tensor
	pad, gath, out *nnlayers.Tensor
	moff           int // first channel of M in m
	stage          int
	work           [][]complex128
}

func (o *ptcOp) ensure(w int) {
	nc := o.p.tr.nc
	n := 2*nc*nc + 2*o.p.Gathered()*nc + 2*nc
	for len(o.work) < w {
		o.work = append(o.work, make([]complex128, n))
	}
}

// link copies U_μ(s) of member b into u.
func (o *ptcOp) link(u []complex128, s, b, mu int) {
	nc := o.p.tr.nc
	base := o.links.At(s, b, 0)
	for i := range nc {
		for j := range nc {
			u[i*nc+j] = cget(o.links.Data, base+linkAt(nc, mu, i, j))
		}
	}
}

func (o *ptcOp) Run(w, chunk int) {
	p := o.p
	tr := p.tr
	nd, nc, in, kt := tr.nd, tr.nc, p.in, p.Gathered()
	buf := o.work[w]
	u, gu := buf[:nc*nc], buf[nc*nc:2*nc*nc]
	vec := buf[2*nc*nc : 2*nc*nc+nc]
	gl := buf[2*nc*nc+2*nc:]
	lo, hi := nnlayers.ChunkRange(chunk, o.phi.B)
	fstride := nc * 2 // one feature
	slot := in * fstride
	for s := 0; s < o.phi.V; s++ {
		for b := lo; b < hi; b++ {
			switch o.stage {
			case 0: // pad: slot 0 = φ(x), slot 1+μ = U_μ(x)† φ(x)
				src := o.phi.At(s, b, 0)
				dst := o.pad.At(s, b, 0)
				copy(o.pad.Data[dst:dst+slot], o.phi.Data[src:src+slot])
				for mu := range nd {
					o.link(u, s, b, mu)
					for k := range in {
						for i := range nc {
							var z complex128
							for j := range nc {
								z += conj(u[j*nc+i]) * cget(o.phi.Data, src+k*fstride+2*j)
							}
							cset(o.pad.Data, dst+(1+mu)*slot+k*fstride+2*i, z)
						}
					}
				}
			case 1: // gather and mix
				g := o.gath.At(s, b, 0)
				src := o.phi.At(s, b, 0)
				copy(o.gath.Data[g:g+slot], o.phi.Data[src:src+slot])
				for mu := range nd {
					o.link(u, s, b, mu)
					fw := o.pad.At(int(tr.up[mu][s]), b, 0)
					bw := o.pad.At(int(tr.dn[mu][s]), b, 0) + (1+mu)*slot
					gf := g + (1+2*mu)*slot
					gb := g + (2+2*mu)*slot
					for k := range in {
						for i := range nc {
							var z complex128
							for j := range nc {
								z += u[i*nc+j] * cget(o.pad.Data, fw+k*fstride+2*j)
							}
							cset(o.gath.Data, gf+k*fstride+2*i, z)
						}
					}
					copy(o.gath.Data[gb:gb+slot], o.pad.Data[bw:bw+slot])
				}
				mb := o.m.At(s, b, o.moff)
				ob := o.out.At(s, b, 0)
				for a := range p.out {
					for c := range nc {
						var z complex128
						for gm := range kt {
							z += cget(o.m.Data, mb+2*(a*kt+gm)) * cget(o.gath.Data, g+gm*fstride+2*c)
						}
						cset(o.out.Data, ob+a*fstride+2*c, z)
					}
				}
			case 2: // backward: M, the gathered features, then the scatter
				g := o.gath.At(s, b, 0)
				mb := o.m.At(s, b, o.moff)
				ob := o.out.At(s, b, 0)
				for i := range gl[:kt*nc] {
					gl[i] = 0
				}
				for a := range p.out {
					for gm := range kt {
						mz := cget(o.m.Data, mb+2*(a*kt+gm))
						var gm2 complex128
						for c := range nc {
							gout := cget(o.out.Grad, ob+a*fstride+2*c)
							gm2 += gout * conj(cget(o.gath.Data, g+gm*fstride+2*c))
							gl[gm*nc+c] += conj(mz) * gout
						}
						if o.m.Grad != nil {
							cadd(o.m.Grad, mb+2*(a*kt+gm), gm2)
						}
					}
				}
				if o.phi.Grad != nil {
					src := o.phi.At(s, b, 0)
					for k := range in {
						for c := range nc {
							cadd(o.phi.Grad, src+k*fstride+2*c, gl[k*nc+c])
						}
					}
				}
				for mu := range nd {
					o.link(u, s, b, mu)
					fw := o.pad.At(int(tr.up[mu][s]), b, 0)
					bw := o.pad.At(int(tr.dn[mu][s]), b, 0) + (1+mu)*slot
					for k := range in {
						gf := gl[((1+2*mu)*in+k)*nc:]
						gb := gl[((2+2*mu)*in+k)*nc:]
						// L = U φ′: G_φ′ = U† G_L, G_U = G_L φ′†.
						for j := range nc {
							var z complex128
							for i := range nc {
								z += conj(u[i*nc+j]) * gf[i]
							}
							cadd(o.pad.Grad, fw+k*fstride+2*j, z)
						}
						if o.links.Grad != nil {
							lb := o.links.At(s, b, 0)
							for i := range nc {
								for j := range nc {
									cadd(o.links.Grad, lb+linkAt(nc, mu, i, j), gf[i]*conj(cget(o.pad.Data, fw+k*fstride+2*j)))
								}
							}
						}
						for c := range nc {
							cadd(o.pad.Grad, bw+k*fstride+2*c, gb[c])
						}
					}
				}
			case 3: // backward through the pad: ψ = U† φ gives G_φ += U G_ψ, G_U += φ G_ψ†
				src := o.phi.At(s, b, 0)
				dst := o.pad.At(s, b, 0)
				if o.phi.Grad != nil {
					for i := range o.phi.Grad[src : src+slot] {
						o.phi.Grad[src+i] += o.pad.Grad[dst+i]
					}
				}
				for mu := range nd {
					o.link(u, s, b, mu)
					for i := range gu {
						gu[i] = 0
					}
					for k := range in {
						for i := range nc {
							vec[i] = cget(o.pad.Grad, dst+(1+mu)*slot+k*fstride+2*i)
						}
						if o.phi.Grad != nil {
							for i := range nc {
								var z complex128
								for j := range nc {
									z += u[i*nc+j] * vec[j]
								}
								cadd(o.phi.Grad, src+k*fstride+2*i, z)
							}
						}
						for i := range nc {
							phi := cget(o.phi.Data, src+k*fstride+2*i)
							for j := range nc {
								gu[i*nc+j] += phi * conj(vec[j])
							}
						}
					}
					if o.links.Grad != nil {
						lb := o.links.At(s, b, 0)
						for i := range nc {
							for j := range nc {
								cadd(o.links.Grad, lb+linkAt(nc, mu, i, j), gu[i*nc+j])
							}
						}
					}
				}
			}
		}
	}
}

func (o *ptcOp) Backward() {
	o.stage = 2
	o.t.Run(nnlayers.Chunks(o.phi.B), o)
	h, _ := o.p.tr.halo(o.phi.B * o.pad.C)
	h.Adjoint(o.pad.Grad, decomp.All)
	o.stage = 3
	o.t.Run(nnlayers.Chunks(o.phi.B), o)
}
