package pfflow

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/halo"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
)

// Transport is the parallel-transport machinery shared by the PTCs of a
// lattice: the nearest-neighbour zone with the antiperiodic time boundary
// (fermion boundary conditions, [dslash.HaloPhases])
// and its halo exchanges, built once per number of values per site.
type Transport struct {
	geo    *nnlayers.Geometry
	comm   mpi.Comm
	nd, nc int
	zone   *decomp.Zone
	up, dn [][]int32
	halos  map[int]*halo.Halo[float64]
	phases []complex128
	gl     []complex128 // Ḡ_L of the PTC being differentiated (one at a time)
	glf    []float64    // the same for the one-colour kernels
	// generic makes one colour use the general kernels (tests compare them).
	generic bool
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
	tr.phases = dslash.HaloPhases(nd)
	for mu := range nd {
		tr.up = append(tr.up, zone.Up(mu))
		tr.dn = append(tr.dn, zone.Dn(mu))
	}
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
//
// Forward runs two kernels — pad (φ and U_μ†φ into the halo buffer, then
// one exchange) and mix (gather L at y and apply M) — and backward three:
// the adjoint of mix (Ḡ_M, the links' gradient and Ḡ_L, with L recomputed
// rather than stored), the scatter of Ḡ_L to the neighbours' halo-buffer
// gradient, the adjoint exchange, and the adjoint of pad. The kernels that
// write only their own sites run on blocks of consecutive (site, member)
// rows, the scatter on chunks of the batch (whose writes are disjoint);
// the 2 → 2 one-colour kernels fuse the adjoint of mix with the scatter
// and run it on chunks.
type PTC struct {
	tr      *Transport
	in, out int
	recs    nnlayers.Records[ptcOp]
}

// NewPTC returns a PTC from in to out features.
func NewPTC(tr *Transport, in, out int) *PTC {
	return &PTC{tr: tr, in: in, out: out}
}

// Gathered is K̃ = (2d+1)·In.
func (p *PTC) Gathered() int { return (2*p.tr.nd + 1) * p.in }

// Params is the number of real channels of M: 2·Out·K̃.
func (p *PTC) Params() int { return 2 * p.out * p.Gathered() }

// Flops is the number of floating-point operations of one forward pass on
// b batch members: the transports (2d Nc×Nc matrix–vector products per
// input feature) and the Out × K̃ complex matrix on Nc colours.
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
	start := t.Begin()
	o := p.recs.Next(t)
	*o = ptcOp{p: p, h: h, links: links, phi: phi, m: m, moff: off, work: o.work,
		pad: t.Uncleared(tr.zone.Len(), phi.B, slots), out: t.Uncleared(phi.V, phi.B, p.out*nc*2)}
	o.ensure(t.Workers())
	ks := p.kernels()
	for i := range o.stages {
		o.stages[i] = ptcStage{o: o, kernel: ks.run[i], chunks: ks.chunked[i]}
	}
	o.run(t, ptcPad)
	h.Exchange(o.pad.Data, decomp.All)
	o.run(t, ptcMix)
	t.RecordCustom(o)
	t.End("PTC", start, p.Flops(phi.B), false)
	return o.out, nil
}

// Kind names the PTC's kind in a tape's Profile.
func (o *ptcOp) Kind() string { return "PTC" }

// BackwardFlops counts the backward pass: the adjoints of the mix (Ḡ_M and
// Ḡ_L) and of the transports, twice the forward pass.
func (o *ptcOp) BackwardFlops() int64 { return 2 * o.p.Flops(o.phi.B) }

// ptcRows is the number of (site, member) rows of a row-block task.
const ptcRows = 128

func (o *ptcOp) rowBlocks() int { return (o.phi.V*o.phi.B + ptcRows - 1) / ptcRows }

// The kernels of a PTC, in order.
const (
	ptcPad     = iota // slot 0 = φ(x), slot 1+μ = U_μ(x)†φ(x)
	ptcMix            // out(y) = M(y) L(y)
	ptcMixBack        // Ḡ_M, Ḡ_L and the links' gradient from Ḡ_out
	ptcScatter        // Ḡ_L into the halo buffer's gradient (on chunks of the batch)
	ptcPadBack        // Ḡ_φ, Ḡ_U from the halo buffer's gradient
	ptcStages
)

// ptcKernel runs one kernel of a PTC on rows [lo, hi) (or, on chunks of
// the batch, on batch members [lo, hi)) with goroutine w's scratch.
type ptcKernel func(o *ptcOp, w, lo, hi int)

// ptcKernels is a set of kernels: nil skips a stage; chunked stages run on
// chunks of the batch (their writes to other sites' rows stay disjoint).
type ptcKernels struct {
	run     [ptcStages]ptcKernel
	chunked [ptcStages]bool
}

// kernels returns the PTC's kernels: for one colour in 2D with 2 → 2
// features, for one colour, or general.
func (p *PTC) kernels() *ptcKernels {
	switch {
	case p.is2x2():
		return &u1x2Kernels
	case p.tr.nc == 1 && !p.tr.generic:
		return &u1Kernels
	}
	return &generalKernels
}

// is2x2 reports whether the PTC runs the one-colour 2D 2 → 2 kernels.
func (p *PTC) is2x2() bool {
	return p.tr.nc == 1 && !p.tr.generic && p.tr.nd == 2 && p.in == 2 && p.out == 2
}

var (
	generalKernels = ptcKernels{run: [ptcStages]ptcKernel{(*ptcOp).padKernel, (*ptcOp).mixKernel, (*ptcOp).mixBackKernel,
		(*ptcOp).scatterKernel, (*ptcOp).padBackKernel}, chunked: [ptcStages]bool{ptcScatter: true}}
	u1Kernels = ptcKernels{run: [ptcStages]ptcKernel{(*ptcOp).padU1, (*ptcOp).mixU1, (*ptcOp).mixBackU1,
		(*ptcOp).scatterU1, (*ptcOp).padBackU1}, chunked: [ptcStages]bool{ptcScatter: true}}
	// The 2 → 2 kernels scatter Ḡ_L in the adjoint of the mix.
	u1x2Kernels = ptcKernels{run: [ptcStages]ptcKernel{ptcPad: (*ptcOp).pad2, ptcMix: (*ptcOp).mix2,
		ptcMixBack: (*ptcOp).back2, ptcPadBack: (*ptcOp).padBack2}, chunked: [ptcStages]bool{ptcMixBack: true}}
)

// ptcStage is one kernel of a PTC application as a task of the tape.
type ptcStage struct {
	o      *ptcOp
	kernel ptcKernel
	chunks bool // items are chunks of the batch, not blocks of rows
}

// Run runs the kernel on item: a block of rows, or a chunk of the batch.
func (st *ptcStage) Run(w, item int) {
	if st.chunks {
		lo, hi := nnlayers.ChunkRange(item, st.o.phi.B)
		st.kernel(st.o, w, lo, hi)
		return
	}
	r0 := item * ptcRows
	st.kernel(st.o, w, r0, min(r0+ptcRows, st.o.phi.V*st.o.phi.B))
}

// run runs kernel k on the tape's goroutines.
func (o *ptcOp) run(t *nnlayers.Tape, k int) {
	if o.stages[k].kernel == nil {
		return
	}
	items := o.rowBlocks()
	if o.stages[k].chunks {
		items = nnlayers.Chunks(o.phi.B)
	}
	t.Run(items, &o.stages[k])
}

// ptcOp is one application of a PTC.
type ptcOp struct {
	p             *PTC
	h             *halo.Halo[float64] // the exchange of pad, captured at forward time
	links, phi, m *nnlayers.Tensor
	pad, out      *nnlayers.Tensor
	moff          int  // first channel of M in m
	assignM       bool // the backward pass stores M̄ (m's gradient was left uncleared)
	stages        [ptcStages]ptcStage
	work          []ptcScratch // per goroutine
}

// ptcScratch is one goroutine's scratch: complex for the general kernels,
// real and imaginary parts of L for the one-colour ones.
type ptcScratch struct {
	c      []complex128
	re, im []float64
	l      []float64 // L of a block of rows (the 2 → 2 kernels)
}

func (o *ptcOp) ensure(w int) {
	nc := o.p.tr.nc
	kt := o.p.Gathered()
	n := o.p.tr.nd*nc*nc + 2*kt*nc + 2*nc
	for len(o.work) < w {
		o.work = append(o.work, ptcScratch{c: make([]complex128, n), re: make([]float64, kt), im: make([]float64, kt),
			l: make([]float64, 20*ptcBlock2)})
	}
}

// Backward runs the backward kernels.
func (o *ptcOp) Backward(t *nnlayers.Tape) error {
	tr := o.p.tr
	// M̄ is stored, not added, where the assembly writes all of it.
	o.assignM = false
	if o.back2Stores() {
		_, o.assignM = o.m.GradForWrite()
	} else {
		o.m.GradForAdd()
	}
	n := o.phi.V * o.phi.B * o.p.Gathered() * tr.nc
	switch {
	case o.stages[ptcScatter].kernel == nil: // no Ḡ_L buffer
	case tr.nc == 1 && !tr.generic:
		if cap(tr.glf) < 2*n {
			tr.glf = make([]float64, 2*n)
		}
		tr.glf = tr.glf[:2*n]
	default:
		if cap(tr.gl) < n {
			tr.gl = make([]complex128, n)
		}
		tr.gl = tr.gl[:n]
	}
	o.run(t, ptcMixBack)
	o.run(t, ptcScatter)
	o.h.Adjoint(o.pad.Grad, decomp.All)
	o.run(t, ptcPadBack)
	return nil
}

// loadLinks copies the nd links U_μ(s) of member b into u (μ-major, Nc×Nc).
func (o *ptcOp) loadLinks(u []complex128, s, b int) {
	nc := o.p.tr.nc
	d := o.links.Data[o.links.At(s, b, 0):]
	for i := range u[:o.p.tr.nd*nc*nc] {
		u[i] = complex(d[2*i], d[2*i+1])
	}
}

func (o *ptcOp) padKernel(w, r0, r1 int) {
	tr := o.p.tr
	nd, nc, in := tr.nd, tr.nc, o.p.in
	u := o.work[w].c[:nd*nc*nc]
	slot := in * nc * 2
	for r := r0; r < r1; r++ {
		s, b := r/o.phi.B, r%o.phi.B
		{
			src := o.phi.Data[o.phi.At(s, b, 0):][:slot]
			dst := o.pad.Data[o.pad.At(s, b, 0):][:(1+nd)*slot]
			copy(dst, src)
			o.loadLinks(u, s, b)
			for mu := range nd {
				um := u[mu*nc*nc : (mu+1)*nc*nc]
				out := dst[(1+mu)*slot:]
				for k := range in {
					f := src[k*2*nc:]
					g := out[k*2*nc:]
					for i := range nc {
						var z complex128
						for j := range nc {
							z += conj(um[j*nc+i]) * complex(f[2*j], f[2*j+1])
						}
						g[2*i], g[2*i+1] = real(z), imag(z)
					}
				}
			}
		}
	}
}

// gather fills l (K̃·Nc) with L(s) of member b.
func (o *ptcOp) gather(l, u []complex128, s, b int) {
	tr := o.p.tr
	nd, nc, in := tr.nd, tr.nc, o.p.in
	slot := in * nc * 2
	self := o.pad.Data[o.pad.At(s, b, 0):][:slot]
	for i := range in * nc {
		l[i] = complex(self[2*i], self[2*i+1])
	}
	for mu := range nd {
		um := u[mu*nc*nc : (mu+1)*nc*nc]
		fw := o.pad.Data[o.pad.At(int(tr.up[mu][s]), b, 0):][:slot]
		bw := o.pad.Data[o.pad.At(int(tr.dn[mu][s]), b, 0)+(1+mu)*slot:][:slot]
		lf := l[(1+2*mu)*in*nc:]
		lb := l[(2+2*mu)*in*nc:]
		for k := range in {
			f := fw[k*2*nc:]
			for i := range nc {
				var z complex128
				for j := range nc {
					z += um[i*nc+j] * complex(f[2*j], f[2*j+1])
				}
				lf[k*nc+i] = z
			}
		}
		for i := range in * nc {
			lb[i] = complex(bw[2*i], bw[2*i+1])
		}
	}
}

func (o *ptcOp) mixKernel(w, r0, r1 int) {
	tr := o.p.tr
	nd, nc := tr.nd, tr.nc
	kt := o.p.Gathered()
	buf := o.work[w].c
	u := buf[:nd*nc*nc]
	l := buf[nd*nc*nc : nd*nc*nc+kt*nc]
	for r := r0; r < r1; r++ {
		s, b := r/o.phi.B, r%o.phi.B
		{
			o.loadLinks(u, s, b)
			o.gather(l, u, s, b)
			m := o.m.Data[o.m.At(s, b, o.moff):][:2*o.p.out*kt]
			out := o.out.Data[o.out.At(s, b, 0):][:o.p.out*nc*2]
			for a := range o.p.out {
				row := m[2*a*kt : 2*(a+1)*kt]
				for c := range nc {
					var z complex128
					for g := range kt {
						z += complex(row[2*g], row[2*g+1]) * l[g*nc+c]
					}
					out[2*(a*nc+c)], out[2*(a*nc+c)+1] = real(z), imag(z)
				}
			}
		}
	}
}

func (o *ptcOp) mixBackKernel(w, r0, r1 int) {
	tr := o.p.tr
	nd, nc, in := tr.nd, tr.nc, o.p.in
	kt := o.p.Gathered()
	buf := o.work[w].c
	u := buf[:nd*nc*nc]
	l := buf[nd*nc*nc : nd*nc*nc+kt*nc]
	slot := in * nc * 2
	var mg []float64
	for r := r0; r < r1; r++ {
		s, b := r/o.phi.B, r%o.phi.B
		if o.m.Grad != nil { // L is needed for Ḡ_M only
			o.loadLinks(u, s, b)
			o.gather(l, u, s, b)
		}
		mb := o.m.At(s, b, o.moff)
		m := o.m.Data[mb:][:2*o.p.out*kt]
		if o.m.Grad != nil {
			mg = o.m.Grad[mb:][:2*o.p.out*kt]
		}
		gout := o.out.Grad[o.out.At(s, b, 0):][:o.p.out*nc*2]
		gl := tr.gl[r*kt*nc : (r+1)*kt*nc]
		clear(gl)
		// out = M L: Ḡ_M = Ḡ_out L†, Ḡ_L = M† Ḡ_out.
		for a := range o.p.out {
			row := m[2*a*kt : 2*(a+1)*kt]
			ga := gout[2*a*nc : 2*(a+1)*nc]
			for g := range kt {
				mz := conj(complex(row[2*g], row[2*g+1]))
				var gm complex128
				for c := range nc {
					gz := complex(ga[2*c], ga[2*c+1])
					gm += gz * conj(l[g*nc+c])
					gl[g*nc+c] += mz * gz
				}
				if mg != nil {
					mg[2*(a*kt+g)] += real(gm)
					mg[2*(a*kt+g)+1] += imag(gm)
				}
			}
		}
		// L_self is pad slot 0 at y; L_+μ = U_μ(y) pad(y+μ̂): Ḡ_U =
		// Ḡ_L pad(y+μ̂)†. The neighbours' shares follow in the scatter.
		self := o.pad.Grad[o.pad.At(s, b, 0):][:slot]
		for i := range in * nc {
			self[2*i] += real(gl[i])
			self[2*i+1] += imag(gl[i])
		}
		if o.links.Grad == nil {
			continue
		}
		lg := o.links.Grad[o.links.At(s, b, 0):]
		for mu := range nd {
			fw := o.pad.Data[o.pad.At(int(tr.up[mu][s]), b, 0):][:slot]
			gf := gl[(1+2*mu)*in*nc:]
			for k := range in {
				f := fw[k*2*nc:]
				for i := range nc {
					for j := range nc {
						z := gf[k*nc+i] * conj(complex(f[2*j], f[2*j+1]))
						c := linkAt(nc, mu, i, j)
						lg[c] += real(z)
						lg[c+1] += imag(z)
					}
				}
			}
		}
	}
}

// scatterKernel adds the neighbours' shares of Ḡ_L to the halo buffer's
// gradient: U_μ(y)† Ḡ_{L+μ} at y+μ̂, Ḡ_{L−μ} to slot 1+μ at y−μ̂.
func (o *ptcOp) scatterKernel(_, lo, hi int) {
	tr := o.p.tr
	nd, nc, in := tr.nd, tr.nc, o.p.in
	kt := o.p.Gathered()
	slot := in * nc * 2
	for s := 0; s < o.phi.V; s++ {
		for b := lo; b < hi; b++ {
			r := s*o.phi.B + b
			gl := tr.gl[r*kt*nc : (r+1)*kt*nc]
			ld := o.links.Data[o.links.At(s, b, 0):]
			for mu := range nd {
				gfw := o.pad.Grad[o.pad.At(int(tr.up[mu][s]), b, 0):][:slot]
				gbw := o.pad.Grad[o.pad.At(int(tr.dn[mu][s]), b, 0)+(1+mu)*slot:][:slot]
				gf := gl[(1+2*mu)*in*nc:]
				gb := gl[(2+2*mu)*in*nc:]
				for k := range in {
					for j := range nc {
						var z complex128
						for i := range nc {
							c := linkAt(nc, mu, i, j)
							z += complex(ld[c], -ld[c+1]) * gf[k*nc+i]
						}
						gfw[2*(k*nc+j)] += real(z)
						gfw[2*(k*nc+j)+1] += imag(z)
					}
				}
				for i := range in * nc {
					gbw[2*i] += real(gb[i])
					gbw[2*i+1] += imag(gb[i])
				}
			}
		}
	}
}

// padBackKernel: slot 0 is φ itself; slot 1+μ is ψ = U_μ† φ, so Ḡ_φ += U Ḡ_ψ
// and Ḡ_U += φ Ḡ_ψ†.
func (o *ptcOp) padBackKernel(w, r0, r1 int) {
	tr := o.p.tr
	nd, nc, in := tr.nd, tr.nc, o.p.in
	slot := in * nc * 2
	u := o.work[w].c[:nd*nc*nc]
	for r := r0; r < r1; r++ {
		s, b := r/o.phi.B, r%o.phi.B
		{
			gpad := o.pad.Grad[o.pad.At(s, b, 0):][:(1+nd)*slot]
			src := o.phi.At(s, b, 0)
			var gphi []float64
			if o.phi.Grad != nil {
				gphi = o.phi.Grad[src:][:slot]
				for i, v := range gpad[:slot] {
					gphi[i] += v
				}
			}
			var lg []float64
			if o.links.Grad != nil {
				lg = o.links.Grad[o.links.At(s, b, 0):]
			}
			phi := o.phi.Data[src:][:slot]
			o.loadLinks(u, s, b)
			for mu := range nd {
				um := u[mu*nc*nc : (mu+1)*nc*nc]
				gs := gpad[(1+mu)*slot:]
				for k := range in {
					g := gs[k*2*nc:]
					if gphi != nil {
						for i := range nc {
							var z complex128
							for j := range nc {
								z += um[i*nc+j] * complex(g[2*j], g[2*j+1])
							}
							gphi[2*(k*nc+i)] += real(z)
							gphi[2*(k*nc+i)+1] += imag(z)
						}
					}
					if lg != nil {
						f := phi[k*2*nc:]
						for i := range nc {
							for j := range nc {
								z := complex(f[2*i], f[2*i+1]) * conj(complex(g[2*j], g[2*j+1]))
								c := linkAt(nc, mu, i, j)
								lg[c] += real(z)
								lg[c+1] += imag(z)
							}
						}
					}
				}
			}
		}
	}
}
