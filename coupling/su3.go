package coupling

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/nnlayers"
	"pfmpi/su3"
)

// SU3Features is the number of context channels of an SU(3) layer: Re and
// Im of (1/3) Tr P_01(x) where that plaquette is frozen.
const SU3Features = 2

// su3LinkChannels is 2 directions × 9 complex entries.
const su3LinkChannels = 2 * 9 * 2

// SU3Layer is a gauge-equivariant coupling layer of a 2D SU(3) flow: for
// every active link, with W = U_μ(x)S(x) the untraced active plaquette
// starting at x (S its staple), U′_μ(x) = h(W)W† U_μ(x) with h a
// [SpectralMap] whose parameters a context network computes from the
// frozen plaquettes; then U′S = h(W). Links are tensors of V × B × 36
// channels: U_μ(x)_{ij} (row-major complex) at channel (9μ + 3i + j)·2.
// Masks as in [NewU1Layer].
type SU3Layer struct {
	index  int
	geo    *nnlayers.Geometry
	mu     int
	net    nnlayers.Module
	params nnlayers.Params
	smap   SpectralMap
	active []int32
	frozen []float64 // per site: P_01(x) holds no active link
	up     [2][]int32
	feat   su3FeatOp
	tr     su3TransformOp
	tape   *nnlayers.Tape
	name   string
}

// NewSU3Layer returns layer number i on geo (2D, extents divisible by 4);
// net maps SU3Features channels to smap.Params().
func NewSU3Layer(geo *nnlayers.Geometry, i int, net nnlayers.Module, smap SpectralMap) (*SU3Layer, error) {
	ly := geo.Layout()
	dims := ly.Lattice().Dims()
	if len(dims) != 2 || dims[0]%4 != 0 || dims[1]%4 != 0 {
		return nil, fmt.Errorf("coupling: SU(3) gauge layers need a 2D lattice with extents divisible by 4, got %v", dims)
	}
	l := &SU3Layer{geo: geo, index: i, mu: (i / 4) % 2, net: net, params: net.Params(), smap: smap, name: fmt.Sprintf("su3 layer %d", i)}
	off := i % 4
	for d := range 2 {
		delta := []int{0, 0}
		delta[d] = 1
		tab, err := geo.Shift(1, delta)
		if err != nil {
			return nil, err
		}
		l.up[d] = tab
	}
	activeLink := func(dir int, x []int) bool {
		nu := 1 - l.mu
		return dir == l.mu && (((x[l.mu]-off-2*(x[nu]%2))%4)+4)%4 == 0
	}
	v := ly.Volume()
	l.frozen = make([]float64, v)
	x, y := make([]int, 2), make([]int, 2)
	for s := 0; s < v; s++ {
		ly.GlobalCoord(s, x)
		if activeLink(l.mu, x) {
			l.active = append(l.active, int32(s))
		}
		// P_01(x) = U_0(x) U_1(x+0̂) U_0(x+1̂)† U_1(x)†.
		free := !activeLink(0, x) && !activeLink(1, x)
		y[0], y[1] = (x[0]+1)%dims[0], x[1]
		free = free && !activeLink(1, y)
		y[0], y[1] = x[0], (x[1]+1)%dims[1]
		free = free && !activeLink(0, y)
		if free {
			l.frozen[s] = 1
		}
	}
	l.feat.l, l.tr.l = l, l
	return l, nil
}

// Roles returns the role of every local plaquette in the layer (see
// [Roles]).
func (l *SU3Layer) Roles() ([]Role, error) { return Roles(l.geo.Layout(), l.index) }

// Params returns the context network's parameters.
func (l *SU3Layer) Params() nnlayers.Params { return l.params }

// link reads U_dir at padded site s, member b.
func link(pad *nnlayers.Tensor, s, b, dir int) su3.Matrix {
	return su3.FromReals(pad.Data[pad.At(s, b, su3.Reals*dir):])
}

func setLink(t *nnlayers.Tensor, s, b, dir int, m su3.Matrix) {
	m.PutReals(t.Data[t.At(s, b, su3.Reals*dir):])
}

func addGrad(g []float64, t *nnlayers.Tensor, s, b, dir int, m su3.Matrix) {
	m.AddReals(g[t.At(s, b, su3.Reals*dir):], 1)
}

func gradOf(t *nnlayers.Tensor, s, b, dir int) su3.Matrix {
	return su3.FromReals(t.Grad[t.At(s, b, su3.Reals*dir):])
}

func (l *SU3Layer) pad(t *nnlayers.Tape, u *nnlayers.Tensor) (*nnlayers.Tensor, *halo.Halo[float64], error) {
	z, err := l.geo.Zone(1)
	if err != nil {
		return nil, nil, err
	}
	pad := t.Tensor(z.Len(), u.B, su3LinkChannels)
	copy(pad.Data, u.Data)
	h, err := l.geo.Halo(1, u.B*su3LinkChannels)
	if err != nil {
		return nil, nil, err
	}
	h.Exchange(pad.Data, decomp.All)
	return pad, h, nil
}

// staple returns S with W = U_μ(x) S the active plaquette at padded site s
// (μ = 0: P_01(x); μ = 1: P_01(x)† = U_1(x) U_0(x+1̂) U_1(x+0̂)† U_0(x)†)
// and its three links A, B, C: S = A B† C†.
func (l *SU3Layer) staple(pad *nnlayers.Tensor, s, b int) (S, A, B, C su3.Matrix) {
	mu := l.mu
	nu := 1 - mu
	A = link(pad, int(l.up[mu][s]), b, nu)
	B = link(pad, int(l.up[nu][s]), b, mu)
	C = link(pad, s, b, nu)
	return A.MulAdj(B).MulAdj(C), A, B, C
}

// Forward applies the layer to the links u (V × B × 36) and returns the
// new links and logJ plus the layer's log-Jacobian density (Haar).
func (l *SU3Layer) Forward(t *nnlayers.Tape, u, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	out, ld, err := l.apply(t, u, false)
	if err != nil {
		return nil, nil, err
	}
	return out, nnlayers.Add(t, logJ, ld), nil
}

// Inverse maps links out back through the layer (t in NoGrad mode) and
// returns them with the forward log-Jacobian density.
func (l *SU3Layer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	return l.apply(t, out, true)
}

// apply computes the context of the frozen plaquettes (the same for the
// input and the output links) and moves the active links forward or back,
// recording both parts on t (nothing in NoGrad mode).
func (l *SU3Layer) apply(t *nnlayers.Tape, u *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if u.C != su3LinkChannels || u.V != l.geo.Volume() {
		return nil, nil, fmt.Errorf("coupling: %s applied to %d sites × %d channels", l.name, u.V, u.C)
	}
	pad, h, err := l.pad(t, u)
	if err != nil {
		return nil, nil, err
	}
	l.tape = t
	start := t.Begin()
	feat := t.Tensor(u.V, u.B, SU3Features)
	l.feat.h, l.feat.u, l.feat.pad, l.feat.f, l.feat.back = h, u, pad, feat, false
	t.Run(nnlayers.Chunks(u.B), &l.feat)
	t.RecordCustom(&l.feat)
	t.End(couplingKind, start, 0, false)
	par := l.net.Apply(t, feat)
	start = t.Begin()
	out := t.Tensor(u.V, u.B, su3LinkChannels)
	copy(out.Data, u.Data)
	ld := t.Tensor(u.V, u.B, 1)
	l.tr.u, l.tr.pad, l.tr.par, l.tr.out, l.tr.ld, l.tr.back, l.tr.inverse = u, pad, par, out, ld, false, inverse
	l.tr.err = nil
	l.tr.eig.reset(!t.NoGrad && !inverse, u.V, u.B)
	t.Run(nnlayers.Chunks(u.B), &l.tr)
	l.tr.inverse = false
	t.RecordCustom(&l.tr)
	t.End(couplingKind, start, 0, false)
	return out, ld, l.tr.err
}

// su3FeatOp computes the masked plaquette features and their backward.
type su3FeatOp struct {
	l         *SU3Layer
	h         *halo.Halo[float64] // the exchange of pad, captured at forward time
	u, pad, f *nnlayers.Tensor
	back      bool
}

func (o *su3FeatOp) Run(_, chunk int) {
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	plaquetteFeatures(o.pad, o.f, o.u.V, o.l.up, o.l.frozen, lo, hi, o.back)
}

// plaquetteFeatures sets the context features Re and Im of (1/3) Tr P_01(s),
// P_01(s) = U_0(s) U_1(s+0̂) U_0(s+1̂)† U_1(s)†, of links u (neighbours
// through up) in channels 0 and 1 of f at the first v sites with frozen[s]
// ≠ 0, members [lo, hi); with back it adds their gradient (from f.Grad) to
// u.Grad instead.
func plaquetteFeatures(u, f *nnlayers.Tensor, v int, up [2][]int32, frozen []float64, lo, hi int, back bool) {
	for s := 0; s < v; s++ {
		if frozen[s] == 0 {
			continue
		}
		for b := lo; b < hi; b++ {
			u1 := link(u, s, b, 0)
			u2 := link(u, int(up[0][s]), b, 1)
			u3 := link(u, int(up[1][s]), b, 0)
			u4 := link(u, s, b, 1)
			fi := f.At(s, b, 0)
			if !back {
				tr := u1.Mul(u2).MulAdj(u3).MulAdj(u4).Trace() / 3
				f.Data[fi], f.Data[fi+1] = real(tr), imag(tr)
				continue
			}
			g := complex(f.Grad[fi], f.Grad[fi+1]) / 3
			if g == 0 {
				continue
			}
			// G_U1 = G (U2 U3† U4†)†, G_U2 = G (U3† U4† U1)†,
			// G_U3 = Ḡ U4† U1 U2, G_U4 = Ḡ U1 U2 U3†.
			gc := complex(real(g), -imag(g))
			addGrad(u.Grad, u, s, b, 0, u2.MulAdj(u3).MulAdj(u4).Adj().Scale(g))
			addGrad(u.Grad, u, int(up[0][s]), b, 1, u3.AdjMul(u4.Adj()).Mul(u1).Adj().Scale(g))
			addGrad(u.Grad, u, int(up[1][s]), b, 0, u4.AdjMul(u1).Mul(u2).Scale(gc))
			addGrad(u.Grad, u, s, b, 1, u1.Mul(u2).MulAdj(u3).Scale(gc))
		}
	}
}

// Kind names the operation's kind in a tape's Profile.
func (o *su3FeatOp) Kind() string { return couplingKind }

// Kind names the operation's kind in a tape's Profile.
func (o *su3TransformOp) Kind() string { return couplingKind }

func (o *su3FeatOp) Backward(t *nnlayers.Tape) error {
	if o.u.Grad == nil {
		return nil
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.u.B), o)
	o.back = false
	o.h.Adjoint(o.pad.Grad, decomp.All)
	for i := range o.u.Grad {
		o.u.Grad[i] += o.pad.Grad[i]
	}
	return nil
}

// su3TransformOp moves the active links (forward, inverse, backward).
type su3TransformOp struct {
	l                    *SU3Layer
	u, pad, par, out, ld *nnlayers.Tensor
	back, inverse        bool
	eig                  eigenCache
	err                  error
}

func (o *su3TransformOp) Run(_, chunk int) {
	l := o.l
	np := l.smap.Params()
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	for _, s32 := range l.active {
		s := int(s32)
		for b := lo; b < hi; b++ {
			p := o.par.Data[o.par.At(s, b, 0) : o.par.At(s, b, 0)+np]
			S, A, B, C := l.staple(o.pad, s, b)
			U := link(o.pad, s, b, l.mu)
			switch {
			case o.inverse: // pad holds U′: W′ = U′S = h(W), U = W S†
				w, ld, err := l.smap.Inverse(p, U.Mul(S))
				if err != nil {
					o.err = err
					continue
				}
				setLink(o.out, s, b, l.mu, w.MulAdj(S))
				o.ld.Data[o.ld.At(s, b, 0)] = ld
			case !o.back:
				F, ld, th, v := l.smap.RotationEigen(p, U.Mul(S))
				o.eig.store(s, b, th, v)
				setLink(o.out, s, b, l.mu, F.Mul(U))
				o.ld.Data[o.ld.At(s, b, 0)] = ld
			default:
				gOut := gradOf(o.out, s, b, l.mu)
				gp := o.par.Grad[o.par.At(s, b, 0) : o.par.At(s, b, 0)+np]
				th, v := o.eig.load(s, b)
				gW, F := l.smap.RotationVJPEigen(p, th, v, gOut.MulAdj(U), o.ld.Grad[o.ld.At(s, b, 0)], gp)
				// U′ = F U: G_U = F† G′ (replacing the pass-through) + G_W S†.
				if o.u.Grad != nil {
					addGrad(o.u.Grad, o.u, s, b, l.mu, F.AdjMul(gOut).Sub(gOut))
				}
				addGrad(o.pad.Grad, o.pad, s, b, l.mu, gW.MulAdj(S))
				// S = A B† C†: G_A = G_S C B, G_B = C† G_S† A, G_C = G_S† A B†.
				gS := U.AdjMul(gW)
				mu, nu := l.mu, 1-l.mu
				addGrad(o.pad.Grad, o.pad, int(l.up[mu][s]), b, nu, gS.Mul(C).Mul(B))
				addGrad(o.pad.Grad, o.pad, int(l.up[nu][s]), b, mu, C.AdjMul(gS.Adj()).Mul(A))
				addGrad(o.pad.Grad, o.pad, s, b, nu, gS.Adj().Mul(A).MulAdj(B))
			}
		}
	}
}

func (o *su3TransformOp) Backward(t *nnlayers.Tape) error {
	if o.u.Grad != nil {
		for i, g := range o.out.Grad {
			o.u.Grad[i] += g
		}
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.u.B), o)
	o.back = false
	return nil
}
