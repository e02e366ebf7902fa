package coupling

import (
	"fmt"
	"math"

	"pfmpi/decomp"
	"pfmpi/halo"
	"pfmpi/nnlayers"
)

// Neighbour offsets of the loops (2D): the site itself, +0̂, +1̂, +0̂+1̂,
// +2·0̂, +2·1̂.
var loopOffsets = [6][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0}, {0, 2}}

// term is one link of a loop: angle θ_dir at offset nb, with a sign.
type term struct {
	nb, dir int
	sign    float64
}

// The loops of the context: the plaquette P_01 and the 2×1 rectangles
// elongated along 0 and along 1 (package documentation).
var loops = [3][]term{
	{{0, 0, 1}, {1, 1, 1}, {2, 0, -1}, {0, 1, -1}},
	{{0, 0, 1}, {1, 0, 1}, {4, 1, 1}, {3, 0, -1}, {2, 0, -1}, {0, 1, -1}},
	{{0, 1, 1}, {2, 1, 1}, {5, 0, 1}, {3, 1, -1}, {1, 1, -1}, {0, 0, -1}},
}

// Features is the number of context input channels: (cos, sin) of the
// three loops, zero where a loop is not frozen.
const Features = 6

// U1Layer is a gauge-equivariant coupling layer of a 2D U(1) flow (see
// the package documentation): it updates the links U_μ(x) of its active
// plaquettes by U′ = P′P⁻¹U with P′ = h(P) a circle map whose parameters a
// context network computes from the frozen loops.
type U1Layer struct {
	geo    *nnlayers.Geometry
	mu     int
	off    int
	sign   float64 // +1: the active link enters P_01 as U_0(x); −1: as U_1(x)†
	net    nnlayers.Module
	params nnlayers.Params
	cmap   CircleMap
	active []int32      // local sites of the active plaquettes
	frozen [3][]float64 // per loop and site: 1 if the loop holds no active link
	nb     [6][]int32   // neighbour tables on the depth-2 box zone
	fwd    loopsOp      // the records of one application
	tr     transformOp  //
	xs     []float64    // plaquette angle at the active sites, per batch member
	work   [][]float64  // per goroutine scratch of the circle map
	name   string
	tape   *nnlayers.Tape // of the current application
}

// NewU1Layer returns layer number i of a flow on geo (2D, extents
// divisible by 4) with the masking pattern of the Schwinger-model flows
// (Albergo et al. 2022, appendix): active direction μ = ⌊i/4⌋ mod 2, offset
// o = i mod 4, ν = 1 − μ; the plaquettes at x with x_μ − o − 2(x_ν mod 2) ≡
// 0 (mod 4) are active and their links U_μ(x) move. net maps Features
// channels to cmap.Params() channels.
func NewU1Layer(geo *nnlayers.Geometry, i int, net nnlayers.Module, cmap CircleMap) (*U1Layer, error) {
	ly := geo.Layout()
	lat := ly.Lattice()
	dims := lat.Dims()
	if len(dims) != 2 || dims[0]%4 != 0 || dims[1]%4 != 0 {
		return nil, fmt.Errorf("coupling: U(1) gauge layers need a 2D lattice with extents divisible by 4, got %v", dims)
	}
	l := &U1Layer{geo: geo, mu: (i / 4) % 2, off: i % 4, net: net, params: net.Params(), cmap: cmap,
		name: fmt.Sprintf("u1 layer %d", i)}
	l.sign = 1
	if l.mu == 1 {
		l.sign = -1
	}
	for k, off := range loopOffsets {
		tab, err := geo.Shift(2, off[:])
		if err != nil {
			return nil, err
		}
		l.nb[k] = tab
	}
	activeLink := func(dir int, x []int) bool {
		nu := 1 - l.mu
		return dir == l.mu && (((x[l.mu]-l.off-2*(x[nu]%2))%4)+4)%4 == 0
	}
	v := ly.Volume()
	x, y := make([]int, 2), make([]int, 2)
	for k := range l.frozen {
		l.frozen[k] = make([]float64, v)
	}
	for s := 0; s < v; s++ {
		ly.GlobalCoord(s, x)
		if activeLink(l.mu, x) {
			l.active = append(l.active, int32(s))
		}
		for k, loop := range loops {
			free := true
			for _, t := range loop {
				for d := range 2 {
					y[d] = (x[d] + loopOffsets[t.nb][d]) % dims[d]
				}
				if activeLink(t.dir, y) {
					free = false
				}
			}
			if free {
				l.frozen[k][s] = 1
			}
		}
	}
	l.fwd.l, l.tr.l = l, l
	return l, nil
}

// Params returns the context network's parameters.
func (l *U1Layer) Params() nnlayers.Params { return l.params }

// loopAngle returns the angle of loop k at site s, batch member b, from the
// padded angles (2 per site and batch member).
func (l *U1Layer) loopAngle(k, s, b int, pad *nnlayers.Tensor) float64 {
	sum := 0.0
	for _, t := range loops[k] {
		sum += t.sign * pad.Data[(int(l.nb[t.nb][s])*pad.B+b)*2+t.dir]
	}
	return sum
}

// addLoopGrad adds g·∂(loop k)/∂θ at site s, member b, to the padded
// gradient.
func (l *U1Layer) addLoopGrad(k, s, b int, pad *nnlayers.Tensor, g float64) {
	for _, t := range loops[k] {
		pad.Grad[(int(l.nb[t.nb][s])*pad.B+b)*2+t.dir] += t.sign * g
	}
}

func (l *U1Layer) ensure(t *nnlayers.Tape, b int) {
	if len(l.xs) < len(l.active)*b {
		l.xs = make([]float64, len(l.active)*b)
	}
	for len(l.work) < t.Workers() {
		l.work = append(l.work, make([]float64, l.cmap.ScratchLen()))
	}
}

// pad returns the angles with their depth-2 halo and the exchange.
func (l *U1Layer) pad(t *nnlayers.Tape, theta *nnlayers.Tensor) (*nnlayers.Tensor, *halo.Halo[float64], error) {
	z, err := l.geo.Zone(2)
	if err != nil {
		return nil, nil, err
	}
	pad := t.Tensor(z.Len(), theta.B, 2)
	copy(pad.Data, theta.Data)
	h, err := l.geo.Halo(2, theta.B*2)
	if err != nil {
		return nil, nil, err
	}
	h.Exchange(pad.Data, decomp.All)
	return pad, h, nil
}

// Forward applies the layer to the angles theta (V × B × 2) and returns the
// new angles and the log-Jacobian density logJ + log h′ at the active
// plaquettes (V × B × 1), recording everything on t.
func (l *U1Layer) Forward(t *nnlayers.Tape, theta, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if theta.C != 2 || theta.V != l.geo.Volume() {
		return nil, nil, fmt.Errorf("coupling: %s applied to %d sites × %d channels", l.name, theta.V, theta.C)
	}
	pad, h, err := l.pad(t, theta)
	if err != nil {
		return nil, nil, err
	}
	b := theta.B
	l.tape = t
	l.ensure(t, b)
	start := t.Begin()
	feat := t.Tensor(theta.V, b, Features)
	l.fwd.h, l.fwd.theta, l.fwd.pad, l.fwd.feat, l.fwd.back = h, theta, pad, feat, false
	t.Run(nnlayers.Chunks(b), &l.fwd)
	t.RecordCustom(&l.fwd)
	t.End(couplingKind, start, 0, false)
	par := l.net.Apply(t, feat)
	start = t.Begin()
	out := t.Tensor(theta.V, b, 2)
	copy(out.Data, theta.Data)
	ld := t.Tensor(theta.V, b, 1)
	l.tr.theta, l.tr.pad, l.tr.par, l.tr.out, l.tr.ld, l.tr.back = theta, pad, par, out, ld, false
	t.Run(nnlayers.Chunks(b), &l.tr)
	t.RecordCustom(&l.tr)
	t.End(couplingKind, start, 0, false)
	return out, nnlayers.Add(t, logJ, ld), nil
}

// loopsOp computes the context features (and in backward their gradient
// into the padded angles, then the adjoint halo exchange).
type loopsOp struct {
	l          *U1Layer
	h          *halo.Halo[float64] // the exchange of pad, captured at forward time
	theta, pad *nnlayers.Tensor
	feat       *nnlayers.Tensor
	back       bool
}

func (o *loopsOp) Run(_, chunk int) {
	l := o.l
	lo, hi := nnlayers.ChunkRange(chunk, o.pad.B)
	for s := 0; s < o.theta.V; s++ {
		for b := lo; b < hi; b++ {
			f := o.feat.Data[o.feat.At(s, b, 0):]
			g := o.feat.Grad[o.feat.At(s, b, 0):]
			for k := range loops {
				m := l.frozen[k][s]
				if m == 0 {
					continue
				}
				a := l.loopAngle(k, s, b, o.pad)
				if !o.back {
					f[2*k], f[2*k+1] = math.Cos(a), math.Sin(a)
					continue
				}
				// d cos a = −sin a da, d sin a = cos a da.
				ga := -math.Sin(a)*g[2*k] + math.Cos(a)*g[2*k+1]
				l.addLoopGrad(k, s, b, o.pad, ga)
			}
		}
	}
}

// couplingKind is the gauge layers' own work (loops, transforms) in a
// tape's Profile.
const couplingKind = "gauge couplings"

// Kind names the operation's kind in a tape's Profile.
func (o *loopsOp) Kind() string { return couplingKind }

// Kind names the operation's kind in a tape's Profile.
func (o *transformOp) Kind() string { return couplingKind }

func (o *loopsOp) Backward(t *nnlayers.Tape) error {
	if o.theta.Grad == nil {
		return nil
	}
	o.back = true
	// The transform's backward pass has already added its share to
	// pad.Grad; add the features' share, then return the halo part to its
	// owners.
	t.Run(nnlayers.Chunks(o.pad.B), o)
	o.back = false
	o.h.Adjoint(o.pad.Grad, decomp.All)
	for i := range o.theta.Grad {
		o.theta.Grad[i] += o.pad.Grad[i]
	}
	return nil
}

// transformOp moves the active links.
type transformOp struct {
	l               *U1Layer
	theta, pad, par *nnlayers.Tensor
	out, ld         *nnlayers.Tensor
	back, inverse   bool
}

func (o *transformOp) Run(w, chunk int) {
	l := o.l
	B := o.theta.B
	lo, hi := nnlayers.ChunkRange(chunk, B)
	np := l.cmap.Params()
	scratch := l.work[w]
	for i, s32 := range l.active {
		s := int(s32)
		for b := lo; b < hi; b++ {
			p := o.par.Data[o.par.At(s, b, 0) : o.par.At(s, b, 0)+np]
			xi := i*B + b
			link := o.out.At(s, b, l.mu)
			if o.inverse {
				// pad holds the output angles: its plaquette is y = h(x).
				y := wrap(l.loopAngle(0, s, b, o.pad))
				x, logd := l.cmap.Inverse(p, y, scratch)
				o.out.Data[link] -= l.sign * (y - x)
				o.ld.Data[o.ld.At(s, b, 0)] = logd
				continue
			}
			if !o.back {
				x := wrap(l.loopAngle(0, s, b, o.pad))
				y, logd := l.cmap.Forward(p, x, scratch)
				l.xs[xi] = x
				o.out.Data[link] += l.sign * (y - x)
				o.ld.Data[o.ld.At(s, b, 0)] = logd
				continue
			}
			gd := l.sign * o.out.Grad[link] // dL/dδ, δ = h(x) − x
			gp := o.par.Grad[o.par.At(s, b, 0) : o.par.At(s, b, 0)+np]
			gx := l.cmap.VJP(p, l.xs[xi], gd, o.ld.Grad[o.ld.At(s, b, 0)], gp, scratch) - gd
			l.addLoopGrad(0, s, b, o.pad, gx)
		}
	}
}

func (o *transformOp) Backward(t *nnlayers.Tape) error {
	if o.theta.Grad != nil {
		for i, g := range o.out.Grad {
			o.theta.Grad[i] += g
		}
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.theta.B), o)
	o.back = false
	return nil
}

// Inverse maps angles out (V × B × 2) back through the layer: it returns
// the angles in with Forward(in) = out and the density log h′ at in (V × B
// × 1). It records nothing: call it on a tape in NoGrad mode.
func (l *U1Layer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	// The frozen loops of out are those of in: the context is the same.
	pad, _, err := l.pad(t, out)
	if err != nil {
		return nil, nil, err
	}
	b := out.B
	l.tape = t
	l.ensure(t, b)
	feat := t.Tensor(out.V, b, Features)
	l.fwd.theta, l.fwd.pad, l.fwd.feat, l.fwd.back = out, pad, feat, false
	t.Run(nnlayers.Chunks(b), &l.fwd)
	par := l.net.Apply(t, feat)
	in := t.Tensor(out.V, b, 2)
	copy(in.Data, out.Data)
	ld := t.Tensor(out.V, b, 1)
	l.tr.theta, l.tr.pad, l.tr.par, l.tr.out, l.tr.ld, l.tr.back, l.tr.inverse = out, pad, par, in, ld, false, true
	t.Run(nnlayers.Chunks(b), &l.tr)
	l.tr.inverse = false
	return in, ld, nil
}
