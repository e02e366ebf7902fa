package dslash

import (
	"fmt"
	"math/cmplx"
	"pfmpi/hugemem"
	"unsafe"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/group"
	"pfmpi/halo"
)

// Operator is a Dirac operator on one rank's share of fermion fields. Full
// vectors hold the V local sites in parity order (even sites first), Ns·Nc
// values per site, spin-major; even vectors hold the V_e even sites and odd
// vectors the odd ones. All methods are collective over the domain
// communicator.
type Operator interface {
	Layout() *decomp.Layout
	// PerSite is Ns·Nc.
	PerSite() int
	// M sets out = D in and Mdag out = D† in (full vectors).
	M(out, in []complex128)
	Mdag(out, in []complex128)
	// Dhop sets out = (D − 1) in, the hopping term −κH (dag: of D†).
	Dhop(out, in []complex128, dag bool)
	// Meo sets out (even) = D_eo in (odd); Moe sets out (odd) = D_oe in
	// (even). With dag, the blocks of D†: (D†)_eo = (D_oe)†, (D†)_oe = (D_eo)†.
	Meo(out, in []complex128, dag bool)
	Moe(out, in []complex128, dag bool)
	// Gamma5 applies γ5 in place to a full, even or odd vector.
	Gamma5(x []complex128)
	// MDeriv adds coeff·∂/∂x_a Re⟨χ, D ψ⟩ at U_μ(x) → exp(x_b T_b) U_μ(x) to f
	// (full vectors; see gauge for the algebra coordinates).
	MDeriv(f *gauge.Algebra, chi, psi []complex128, coeff float64)
	// TraceDeriv adds coeff·∂/∂x_a Re Tr(G dD) for G given by its blocks at
	// neighbouring sites (the lattice on one rank).
	TraceDeriv(f *gauge.Algebra, block func(dst []complex128, y, x int), coeff float64)
	// Cost is the work of one M on this rank.
	Cost() Cost
}

// Cost counts floating-point operations and bytes moved (no cache reuse) by
// one application of an operator on one rank.
type Cost struct {
	Flops int64
	Bytes int64
}

// Wilson is the Wilson–Dirac operator of Eq. (5), in 2D and 4D:
//
//	(Dψ)(x) = ψ(x) − κ Σ_μ [(1 − γ_μ) U_μ(x) ψ(x+μ̂) + (1 + γ_μ) U_μ†(x−μ̂) ψ(x−μ̂)],
//
// antiperiodic in time (direction 0), periodic in space.
type Wilson struct {
	u        *gauge.Field
	kappa    float64
	basis    *spinBasis
	ly       *decomp.Layout
	zone     *decomp.Zone
	nc, n    int // colours; values per site Ns·Nc
	grp      group.Group
	hn       int // values per half spinor
	v, ve    int
	nd       int
	eo       bool // even global extents: the parity blocks exist
	ex       *projExchange
	full     *halo.Halo[complex128] // full-spinor halo for MDeriv
	scratch  [2][]complex128        // (V+H)·n buffers for MDeriv
	up, dn   [decomp.MaxDims][]int32
	interior [3][]int32 // per output parity (Even, Odd, All): sites whose hops stay on the rank
	boundary [3][]int32
	// Overlap controls whether hops compute interior sites while the halo
	// is in flight (default true); switch it off to measure the gain.
	Overlap bool
	// kernel is the implementation of the hop (tests and benchmarks force
	// each one); path is what it resolves to for this operator.
	kernel  kernelPath
	path    kernelPath
	hopAsm  [2]hopFunc  // the assembly kernels of path for D and D†, if any
	packAsm [2]packFunc // and their halo packing
	// streamBytes is the size of an output vector from which the assembly
	// kernels write it with non-temporal stores (it would not stay in the
	// caches anyway) — plain applications only, never the solver's fused
	// ones (see hop); tests set it to 0 to check that path.
	streamBytes int
	fuseBuf     []complex128 // the Go kernels' result when a fused hop updates out
	nbr         []int32      // neighbours of site y: nbr[(y·Nd + μ)·2 + {0: forward, 1: backward}]
}

// streamBytes is the default Wilson.streamBytes: outputs larger than the
// last-level cache share of a core.
const streamBytes = 8 << 20

// lexSliceBytes is the largest slice (the sites of one coordinate of
// direction 0, their spinors in and out and their links) for which full
// vectors are visited in lexicographic order.
const lexSliceBytes = 512 << 10

// Phases is the fermion boundary phase per direction: −1 in time
// (antiperiodic), +1 in space. Every fermion field's halo uses it
// (HaloPhases).
func Phases(nd int) []float64 {
	p := make([]float64, nd)
	for mu := range p {
		p[mu] = 1
	}
	p[0] = -1
	return p
}

// HaloPhases is Phases as the complex factors package halo applies to the
// values that cross the boundary.
func HaloPhases(nd int) []complex128 {
	p := make([]complex128, nd)
	for mu, x := range Phases(nd) {
		p[mu] = complex(x, 0)
	}
	return p
}

// NewWilson returns the Wilson operator with hopping parameter κ on the gauge
// field u (which it reads at every application; update u in place to change it).
func NewWilson(u *gauge.Field, kappa float64) (*Wilson, error) {
	sp := u.Space()
	ly := sp.Layout()
	lat := ly.Lattice()
	basis, err := basisFor(lat.NumDims())
	if err != nil {
		return nil, err
	}
	zone, err := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
	if err != nil {
		return nil, err
	}
	w := &Wilson{
		u: u, kappa: kappa, basis: basis, ly: ly, zone: zone, nc: sp.Nc(), grp: sp.Group(),
		n: basis.ns * sp.Nc(), hn: basis.half * sp.Nc(), v: ly.Volume(), ve: ly.EvenCount(),
		nd: lat.NumDims(), Overlap: true,
	}
	w.eo = true
	for _, l := range lat.Dims() {
		w.eo = w.eo && l%2 == 0
	}
	phases := Phases(w.nd)
	if w.ex, err = newProjExchange(sp.Comm(), zone, phases, w.hn); err != nil {
		return nil, err
	}
	cphases := make([]complex128, w.nd)
	for mu, p := range phases {
		cphases[mu] = complex(p, 0)
	}
	if w.full, err = halo.New[complex128](sp.Comm(), zone, w.n, cphases); err != nil {
		w.ex.close()
		return nil, err
	}
	for i := range w.scratch {
		w.scratch[i] = hugemem.Make[complex128](zone.Len() * w.n)
	}
	for mu := 0; mu < w.nd; mu++ {
		w.up[mu], w.dn[mu] = zone.Up(mu), zone.Dn(mu)
	}
	w.nbr = hugemem.Make[int32](2 * w.nd * w.v)
	for y := 0; y < w.v; y++ {
		for mu := 0; mu < w.nd; mu++ {
			w.nbr[2*(y*w.nd+mu)], w.nbr[2*(y*w.nd+mu)+1] = w.up[mu][y], w.dn[mu][y]
		}
	}
	w.setKernel(pathAuto)
	w.streamBytes = streamBytes
	slice := w.v / lat.Local()[0] * (2*w.n + w.nd*w.nc*w.nc) * 16
	w.siteLists(slice <= lexSliceBytes)
	return w, nil
}

// siteLists sorts the sites of each output parity into those whose hops
// stay on the rank (interior) and the others (boundary), in the order the
// hop visits them. Sites of one parity are visited in storage order. Full
// vectors are visited in lexicographic order, both parities interleaved,
// if lex is set — when a slice of the lattice across the slowest direction
// fits in a core's cache: a site's backward neighbours and their links
// were then read a few sites before, rather than in a second pass over the
// other parity (measured: 1.3× on 2D lattices; on 4D 16⁴ and 20⁴ the reuse
// distance exceeds the cache and the two streaming passes are faster).
func (w *Wilson) siteLists(lex bool) {
	lexOrder := w.ly.LexToSite()
	for _, p := range []decomp.Parity{decomp.Even, decomp.Odd, decomp.All} {
		w.interior[p], w.boundary[p] = w.interior[p][:0], w.boundary[p][:0]
		lo, hi := w.ly.Sites(p)
		for i := lo; i < hi; i++ {
			s := i
			if p == decomp.All && lex {
				s = int(lexOrder[i])
			}
			inside := true
			for mu := 0; mu < w.nd; mu++ {
				inside = inside && int(w.up[mu][s]) < w.v && int(w.dn[mu][s]) < w.v
			}
			if inside {
				w.interior[p] = append(w.interior[p], int32(s))
			} else {
				w.boundary[p] = append(w.boundary[p], int32(s))
			}
		}
	}
}

// setKernel selects the hop's implementation (pathAuto: the fastest that
// runs here); a path without a kernel for this Nd, Nc falls back to the
// generic Go.
func (w *Wilson) setKernel(p kernelPath) {
	w.kernel, w.path = p, p
	if p == pathAuto {
		w.path = bestPath(w.nd, w.nc)
	}
	if !w.path.runs(w.nd, w.nc) {
		w.path = pathGeneric
	}
	w.hopAsm = [2]hopFunc{asmKernel(w.path, w.nd, w.nc, false), asmKernel(w.path, w.nd, w.nc, true)}
	w.packAsm = [2]packFunc{asmPack(w.path, w.nd, w.nc, false), asmPack(w.path, w.nd, w.nc, true)}
}

// Close releases the communication plans.
func (w *Wilson) Close() {
	w.ex.close()
	w.full.Close()
}

// Kappa is the hopping parameter.
func (w *Wilson) Kappa() float64 { return w.kappa }

// Gauge is the gauge field the operator reads.
func (w *Wilson) Gauge() *gauge.Field { return w.u }

func (w *Wilson) Layout() *decomp.Layout { return w.ly }
func (w *Wilson) PerSite() int           { return w.n }

// Spins is Ns (2 in 2D, 4 in 4D).
func (w *Wilson) Spins() int { return w.basis.ns }

// Gamma5 applies γ5 = diag(1, …, −1, …) to a full, even or odd vector in place.
func (w *Wilson) Gamma5(x []complex128) {
	half := w.basis.half * w.nc
	for s := 0; s+w.n <= len(x); s += w.n {
		lower := x[s+half : s+w.n]
		for i := range lower {
			lower[i] = -lower[i]
		}
	}
}

func (w *Wilson) checkLen(what string, x []complex128, sites int) {
	if len(x) != sites*w.n {
		panic(fmt.Sprintf("dslash: %s has %d values, want %d sites × %d", what, len(x), sites, w.n))
	}
}

func (w *Wilson) M(out, in []complex128) {
	w.checkLen("M output", out, w.v)
	w.checkLen("M input", in, w.v)
	w.apply(out, decomp.All, in, decomp.All, false, in, w.kappa)
}

func (w *Wilson) Mdag(out, in []complex128) {
	w.checkLen("Mdag output", out, w.v)
	w.checkLen("Mdag input", in, w.v)
	w.apply(out, decomp.All, in, decomp.All, true, in, w.kappa)
}

// MdagNorm sets out = D† in and returns |out|² on this rank, in the pass of
// D† (CG on DD† needs ⟨p, DD†p⟩ = |D†p|²).
func (w *Wilson) MdagNorm(out, in []complex128) float64 {
	w.checkLen("MdagNorm output", out, w.v)
	w.checkLen("MdagNorm input", in, w.v)
	return w.applyFused(out, decomp.All, in, decomp.All, true, in, w.kappa, fusion{on: true})
}

// MUpdate sets r −= α D in and returns |r|² on this rank, in the pass of D
// (D in is not stored).
func (w *Wilson) MUpdate(r, in []complex128, alpha float64) float64 {
	w.checkLen("MUpdate r", r, w.v)
	w.checkLen("MUpdate input", in, w.v)
	return w.applyFused(r, decomp.All, in, decomp.All, false, in, w.kappa, fusion{on: true, alpha: alpha, update: true})
}

func (w *Wilson) Dhop(out, in []complex128, dag bool) {
	w.checkLen("Dhop output", out, w.v)
	w.checkLen("Dhop input", in, w.v)
	w.apply(out, decomp.All, in, decomp.All, dag, nil, w.kappa)
}

func (w *Wilson) requireEO() {
	if !w.eo {
		panic(fmt.Sprintf("dslash: even/odd blocks need even global extents, the lattice is %v", w.ly.Lattice().Dims()))
	}
}

func (w *Wilson) Meo(out, in []complex128, dag bool) {
	w.requireEO()
	w.checkLen("Meo output", out, w.ve)
	w.checkLen("Meo input", in, w.v-w.ve)
	w.apply(out, decomp.Even, in, decomp.Odd, dag, nil, w.kappa)
}

// meoSubtract sets out (even) = x − D_eo in (dag: (D†)_eo): x + κ H_eo in,
// the hop with the sign of κ turned (the Schur complement's second half).
// With fu set it fuses that step and returns Σ |out(y)|² (see fusion).
func (w *Wilson) meoSubtract(out, x, in []complex128, dag bool, fu fusion) float64 {
	w.requireEO()
	w.checkLen("Meo output", out, w.ve)
	w.checkLen("Meo x", x, w.ve)
	w.checkLen("Meo input", in, w.v-w.ve)
	return w.applyFused(out, decomp.Even, in, decomp.Odd, dag, x, -w.kappa, fu)
}

func (w *Wilson) Moe(out, in []complex128, dag bool) {
	w.requireEO()
	w.checkLen("Moe output", out, w.v-w.ve)
	w.checkLen("Moe input", in, w.ve)
	w.apply(out, decomp.Odd, in, decomp.Even, dag, nil, w.kappa)
}

// apply computes out = x − κ H in on the sites of parity pOut from in on
// parity pIn (x nil: out = −κ H in), exchanging projected half spinors and,
// with Overlap, computing interior sites while they travel. κ is the
// operator's or, for fused sums such as x + κH in, its negative.
func (w *Wilson) apply(out []complex128, pOut decomp.Parity, in []complex128, pIn decomp.Parity, dag bool, x []complex128, kappa float64) {
	w.applyFused(out, pOut, in, pIn, dag, x, kappa, fusion{})
}

// fusion folds a step of CG into a hop's pass: with update, out(y) −= α·r(y)
// for the hop's result r(y) instead of out(y) = r(y); a fused hop returns
// Σ |out(y)|² over its sites.
type fusion struct {
	on     bool // fuse at all (the zero fusion is a plain hop)
	alpha  float64
	update bool
}

// applyFused is apply with a fused step (the zero fu: none); it returns
// Σ |out(y)|² over this rank's output sites when fu is set.
func (w *Wilson) applyFused(out []complex128, pOut decomp.Parity, in []complex128, pIn decomp.Parity, dag bool, x []complex128, kappa float64, fu fusion) float64 {
	outLo, _ := w.ly.Sites(pOut)
	inLo, _ := w.ly.Sites(pIn)
	w.startHalo(in, inLo, pIn, dag)
	var norm float64
	if w.Overlap {
		norm = w.hop(out, outLo, w.interior[pOut], in, inLo, dag, x, kappa, fu)
		w.finishHalo(pIn)
	} else {
		w.finishHalo(pIn)
		norm = w.hop(out, outLo, w.interior[pOut], in, inLo, dag, x, kappa, fu)
	}
	return norm + w.hop(out, outLo, w.boundary[pOut], in, inLo, dag, x, kappa, fu)
}

// signs returns the projector signs s of (1 + sγ) for the forward and the
// backward hop: D has (1 − γ) forward, (1 + γ) backward; D† the reverse.
func signs(dag bool) (fwd, bwd float64) {
	if dag {
		return 1, -1
	}
	return -1, 1
}

// startHalo packs the half spinors the neighbours need and posts the messages.
func (w *Wilson) startHalo(in []complex128, inLo int, pIn decomp.Parity, dag bool) {
	e := w.ex
	if e.active {
		panic("dslash: hop started while another is in flight")
	}
	e.active = true
	sF, sB := signs(dag)
	links := w.u.Data().Data()
	nl := w.nd * w.nc * w.nc
	var hbuf [6]complex128
	h := hbuf[:w.hn]
	pack := func(pp *projPeer, k int, dst []complex128) {
		ent := pp.entries[k]
		s := int(ent.site)
		psi := in[(s-inLo)*w.n : (s-inLo+1)*w.n]
		mu := int(ent.mu)
		if ent.fwd {
			w.basis.project(dst, psi, mu, sF, w.nc)
		} else {
			w.basis.project(h, psi, mu, sB, w.nc)
			u := links[s*nl+mu*w.nc*w.nc : s*nl+(mu+1)*w.nc*w.nc]
			for i := 0; i < w.basis.half; i++ {
				w.grp.AdjMulVec(dst[i*w.nc:(i+1)*w.nc], u, h[i*w.nc:(i+1)*w.nc])
			}
		}
		if ent.phase != 1 {
			for i := range dst {
				dst[i] = -dst[i]
			}
		}
	}
	fn := w.packAsm[0]
	if dag {
		fn = w.packAsm[1]
	}
	// packRun packs entries lo..hi of pp into dst (hi − lo half spinors).
	packRun := func(pp *projPeer, lo, hi int, dst []complex128) {
		if fn != nil && hi > lo {
			_ = dst[(hi-lo)*w.hn-1]
			fn(&dst[0], (*int32)(unsafe.Pointer(&pp.entries[lo])), hi-lo, &in[0], inLo, &links[0])
			return
		}
		for k := lo; k < hi; k++ {
			pack(pp, k, dst[(k-lo)*w.hn:(k-lo+1)*w.hn])
		}
	}
	for i := range e.peers {
		pp := &e.peers[i]
		lo, hi := pp.p.SendRange(pIn)
		packRun(pp, lo, hi, pp.sendBuf[lo*w.hn:hi*w.hn])
	}
	e.plans[pIn].Start()
	if pp := e.self; pp != nil {
		lo, hi := pp.p.SendRange(pIn)
		packRun(pp, lo, hi, e.halfHalo[(pp.p.RecvLo+lo)*w.hn:(pp.p.RecvLo+hi)*w.hn])
	}
}

func (w *Wilson) finishHalo(pIn decomp.Parity) {
	w.ex.plans[pIn].Wait()
	w.ex.active = false
}

// hop computes, for each output site y in sites, out(y) = x(y) − κ Σ_μ [hops]
// (x nil: −κ Σ). Neighbours below V are read from in (covering sites from
// inLo), others from the half-spinor halo.
func (w *Wilson) hop(out []complex128, outLo int, sites []int32, in []complex128, inLo int, dag bool, x []complex128, kappa float64, fu fusion) float64 {
	if len(sites) == 0 {
		return 0
	}
	if w.path == pathAVX2 || w.path == pathAVX512 {
		fn := w.hopAsm[0]
		if dag {
			fn = w.hopAsm[1]
		}
		var xp, hp *complex128
		if x != nil {
			xp = &x[0]
		}
		if len(w.ex.halfHalo) > 0 {
			hp = &w.ex.halfHalo[0]
		}
		// Not in the solver's fused applications: CG reads their output
		// (A†p) or updates it in place (r) within the same iteration, and a
		// non-temporal store would send to memory what the next pass reads
		// from the caches (docs/dirac-kernels.md: one CG iteration on U(1)
		// 1024² fell from about 1.5 to 1.3 × 2 D without them).
		stream := !fu.on && len(out)*16 >= w.streamBytes && uintptr(unsafe.Pointer(&out[0]))%16 == 0
		f := fu
		return fn(&out[0], outLo, &sites[0], len(sites), &in[0], inLo, &w.u.Data().Data()[0], hp, &w.nbr[0], w.v, xp, kappa, stream, f.alpha, f.update)
	}
	// The Go kernels fuse after the fact: the result goes to scratch when
	// it updates out.
	dst := out
	if fu.update {
		if len(w.fuseBuf) < len(out) {
			w.fuseBuf = make([]complex128, len(out))
		}
		dst = w.fuseBuf[:len(out)]
	}
	w.hopGo(dst, outLo, sites, in, inLo, dag, x, kappa)
	if !fu.on {
		return 0
	}
	norm, n := 0.0, w.n
	for _, ys := range sites {
		o := out[(int(ys)-outLo)*n : (int(ys)-outLo+1)*n]
		if fu.update {
			r := dst[(int(ys)-outLo)*n : (int(ys)-outLo+1)*n]
			for i := range o {
				o[i] -= complex(fu.alpha, 0) * r[i]
			}
		}
		for _, z := range o {
			norm += real(z)*real(z) + imag(z)*imag(z)
		}
	}
	return norm
}

// hopGo is the hop by the Go kernels of w.path (generated, archsimd or generic).
func (w *Wilson) hopGo(out []complex128, outLo int, sites []int32, in []complex128, inLo int, dag bool, x []complex128, kappa float64) {
	sF, sB := signs(dag)
	switch w.path {
	case pathSIMD:
		w.hop4D3SIMD(out, outLo, sites, in, inLo, sF, x, kappa)
		return
	case pathGenerated:
		var kernel func(out []complex128, outLo int, sites []int32, in []complex128, inLo int, x []complex128, kappa float64)
		switch {
		case w.nd == 2 && w.nc == 1 && !dag:
			kernel = w.hop2D1D
		case w.nd == 2 && w.nc == 1:
			kernel = w.hop2D1Ddag
		case w.nd == 2 && w.nc == 3 && !dag:
			kernel = w.hop2D3D
		case w.nd == 2 && w.nc == 3:
			kernel = w.hop2D3Ddag
		case w.nd == 4 && w.nc == 3 && !dag:
			kernel = w.hop4D3D
		default:
			kernel = w.hop4D3Ddag
		}
		kernel(out, outLo, sites, in, inLo, x, kappa)
		return
	}
	nc, n, hn, half, grp := w.nc, w.n, w.hn, w.basis.half, w.grp
	v := w.v
	links := w.u.Data().Data()
	nl := w.nd * nc * nc
	nn := nc * nc
	halfHalo := w.ex.halfHalo
	k := complex(-kappa, 0)
	var accBuf [12]complex128
	var hBuf, h2Buf [6]complex128
	acc, h, h2 := accBuf[:n], hBuf[:hn], h2Buf[:hn]
	for _, ys := range sites {
		y := int(ys)
		clear(acc)
		for mu := 0; mu < w.nd; mu++ {
			uy := links[y*nl+mu*nn : y*nl+(mu+1)*nn]
			// forward: (1 + sF γ_μ) U_μ(y) ψ(y+μ̂)
			f := int(w.up[mu][y])
			var src []complex128
			if f < v {
				w.basis.project(h, in[(f-inLo)*n:(f-inLo+1)*n], mu, sF, nc)
				src = h
			} else {
				src = halfHalo[(f-v)*hn : (f-v+1)*hn]
			}
			for i := 0; i < half; i++ {
				grp.MulVec(h2[i*nc:(i+1)*nc], uy, src[i*nc:(i+1)*nc])
			}
			w.basis.reconstruct(acc, h2, mu, sF, nc)
			// backward: (1 + sB γ_μ) U_μ†(y−μ̂) ψ(y−μ̂)
			b := int(w.dn[mu][y])
			if b < v {
				w.basis.project(h, in[(b-inLo)*n:(b-inLo+1)*n], mu, sB, nc)
				ub := links[b*nl+mu*nn : b*nl+(mu+1)*nn]
				for i := 0; i < half; i++ {
					grp.AdjMulVec(h2[i*nc:(i+1)*nc], ub, h[i*nc:(i+1)*nc])
				}
				w.basis.reconstruct(acc, h2, mu, sB, nc)
			} else {
				w.basis.reconstruct(acc, halfHalo[(b-v)*hn:(b-v+1)*hn], mu, sB, nc)
			}
		}
		o := out[(y-outLo)*n : (y-outLo+1)*n]
		if x != nil {
			xy := x[(y-outLo)*n : (y-outLo+1)*n]
			for i := range o {
				o[i] = xy[i] + k*acc[i]
			}
		} else {
			for i := range o {
				o[i] = k * acc[i]
			}
		}
	}
}

// project sets h = ψ_up + s A_μ ψ_dn.
func (b *spinBasis) project(h, psi []complex128, mu int, s float64, nc int) {
	a := &b.a[mu]
	for i := 0; i < b.half; i++ {
		c := complex(s, 0) * a.phase[i]
		up := psi[i*nc : (i+1)*nc]
		dn := psi[(b.half+a.col[i])*nc : (b.half+a.col[i]+1)*nc]
		hi := h[i*nc : (i+1)*nc]
		for k := range hi {
			hi[k] = up[k] + c*dn[k]
		}
	}
}

// reconstruct adds (1 + sγ_μ)ψ = (h, s A_μ† h) to acc.
func (b *spinBasis) reconstruct(acc, h []complex128, mu int, s float64, nc int) {
	a := &b.a[mu]
	for i := 0; i < b.half; i++ {
		c := complex(s, 0) * cmplx.Conj(a.phase[i])
		hi := h[i*nc : (i+1)*nc]
		up := acc[i*nc : (i+1)*nc]
		dn := acc[(b.half+a.col[i])*nc : (b.half+a.col[i]+1)*nc]
		for k := range hi {
			up[k] += hi[k]
			dn[k] += c * hi[k]
		}
	}
}
