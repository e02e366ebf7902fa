package coupling

import (
	"fmt"
	"math"

	"pfmpi/nnlayers"
)

// U1HolonomyLayer maps the two holonomies of a 2D U(1) field, the degrees
// of freedom that no plaquette-local layer can move. Every other U(1)
// layer shifts links by functions of plaquettes, so it commutes with the
// twists
//
//	θ_0(0, x_1) → θ_0(0, x_1) + α  for all x_1,    θ_1(x_0, 0) → θ_1(x_0, 0) + β  for all x_0,
//
// which leave every plaquette unchanged and add α to every Polyakov line
// P_0(x_1) = Σ_{x_0} θ_0(x_0, x_1) and β to every P_1(x_0) = Σ_{x_1}
// θ_1(x_0, x_1). Such a flow's density, given the plaquettes, is uniform
// in (α, β), while the fermion determinant of the target is not
// (it sees the holonomies through the boundary phases).
//
// The layer acts on the mean Polyakov lines, the lattice form of the flat
// (harmonic) part of the field,
//
//	H_0 = P_0(0) + c_0,   c_0 = −(1/L_1) Σ_{x} (L_1 − 1 − x_1) w̃(x),
//	H_1 = P_1(0) + c_1,   c_1 =  (1/L_0) Σ_{x} (L_0 − 1 − x_0) w̃(x),
//
// w̃ the plaquette angles in (−π, π] (P_0(x_1+1) = P_0(x_1) − Σ_{x_0}
// w(x), P_1(x_0+1) = P_1(x_0) + Σ_{x_1} w(x); c is the mean of these
// offsets), by a coupling of two circle maps,
//
//	H′_0 = g(H_0; p_0),   p_0 = W_0[t] φ(H_1),
//	H′_1 = g(H_1; p_1),   p_1 = W_1[t] φ(H′_0),
//
// with φ(c) = (1, cos c, sin c, cos 2c, sin 2c) and t the class of the
// topological charge Q = Σ w̃ / 2π (Q = 0, |Q| = 1, |Q| ≥ 2): weights per
// class, all zero at the start (the identity). The links are then twisted
// by α = H′_0 − H_0 and β = H′_1 − H_1. In the coordinates (plaquettes,
// H_0, H_1, gauge) only H moves, so log J = log g′(H_0) + log g′(H_1), and
// the map is a bijection (its inverse runs the stages backwards with the
// same plaquettes). H and Q are gauge invariant and the twists commute
// with gauge transformations: the layer is gauge equivariant.
//
// The sums run over the whole lattice: it must be on one rank.
type U1HolonomyLayer struct {
	geo    *nnlayers.Geometry
	dims   [2]int
	cmap   CircleMap
	w      [2]*nnlayers.Param // per stage: [t][j][f], t < holClasses, j < cmap.Params(), f < holFeatures
	params nnlayers.Params
	up     [2][]int32
	coord  [2][]int32 // x_0, x_1 of every site
	origin int        // the site (0, 0), which carries the layer's log J
	op     u1HolonomyOp
	name   string
}

// holFeatures is the number of Fourier features of the other holonomy;
// holClasses the number of topological classes.
const (
	holFeatures = 5
	holClasses  = 3
)

// NewU1HolonomyLayer returns a holonomy layer (the identity until trained)
// with circle map cmap on geo (2D, one rank); index names its parameters.
func NewU1HolonomyLayer(geo *nnlayers.Geometry, index int, cmap CircleMap) (*U1HolonomyLayer, error) {
	ly := geo.Layout()
	d := ly.Lattice().Dims()
	name := fmt.Sprintf("u1 holonomy layer %d", index)
	if len(d) != 2 {
		return nil, fmt.Errorf("coupling: %s needs a 2D lattice, got %dD", name, len(d))
	}
	if geo.Comm().Size() != 1 {
		return nil, fmt.Errorf("coupling: %s needs the lattice on one rank (a process grid of ones; parallelise over replicas), got %d ranks per lattice", name, geo.Comm().Size())
	}
	l := &U1HolonomyLayer{geo: geo, dims: [2]int{d[0], d[1]}, cmap: cmap, name: name}
	for st := range 2 {
		l.w[st] = nnlayers.NewParam(fmt.Sprintf("gauge%d/holonomy%d", index, st), holClasses, cmap.Params()*holFeatures)
		l.params = append(l.params, l.w[st])
	}
	v := ly.Volume()
	x := make([]int, 2)
	for i := range 2 {
		l.coord[i] = make([]int32, v)
	}
	for s := range v {
		ly.GlobalCoord(s, x)
		l.coord[0][s], l.coord[1][s] = int32(x[0]), int32(x[1])
		if x[0] == 0 && x[1] == 0 {
			l.origin = s
		}
	}
	l.up, _ = stringSites(ly, MarginalStringPatterns(d)[0])
	l.op.l = l
	return l, nil
}

// Params returns the layer's parameters.
func (l *U1HolonomyLayer) Params() nnlayers.Params { return l.params }

// Forward applies the layer to the angles theta (V × B × 2) and returns the
// new angles and logJ plus the layer's log-Jacobian density.
func (l *U1HolonomyLayer) Forward(t *nnlayers.Tape, theta, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	out, ld, err := l.apply(t, theta, false)
	if err != nil {
		return nil, nil, err
	}
	return out, nnlayers.Add(t, logJ, ld), nil
}

// Inverse maps angles out back through the layer (t in NoGrad mode) and
// returns them with the forward log-Jacobian density.
func (l *U1HolonomyLayer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	return l.apply(t, out, true)
}

func (l *U1HolonomyLayer) apply(t *nnlayers.Tape, theta *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if theta.C != 2 || theta.V != l.geo.Volume() {
		return nil, nil, fmt.Errorf("coupling: %s applied to %d sites × %d channels", l.name, theta.V, theta.C)
	}
	start := t.Begin()
	out := t.Tensor(theta.V, theta.B, 2)
	copy(out.Data, theta.Data)
	ld := t.Tensor(theta.V, theta.B, 1)
	o := &l.op
	o.in, o.out, o.ld, o.inverse, o.back = theta, out, ld, inverse, false
	o.ready(t.Workers(), nnlayers.Chunks(theta.B))
	t.Run(nnlayers.Chunks(theta.B), o)
	o.inverse = false
	t.RecordCustom(o)
	t.End(couplingKind, start, 0, false)
	return out, ld, nil
}

// holFrame is what a member's plaquettes fix: the offsets c_0, c_1 and the
// topological class.
type holFrame struct {
	c     [2]float64
	class int
}

// frame returns the plaquette frame of member b of x.
func (l *U1HolonomyLayer) frame(x *nnlayers.Tensor, b int) holFrame {
	var fr holFrame
	q := 0.0
	for s := range x.V {
		w := centred(angle(x, s, b, 0) + angle(x, int(l.up[0][s]), b, 1) - angle(x, int(l.up[1][s]), b, 0) - angle(x, s, b, 1))
		q += w
		fr.c[0] -= float64(l.dims[1]-1-int(l.coord[1][s])) * w
		fr.c[1] += float64(l.dims[0]-1-int(l.coord[0][s])) * w
	}
	fr.c[0] /= float64(l.dims[1])
	fr.c[1] /= float64(l.dims[0])
	switch n := math.Abs(math.Round(q / twoPi)); {
	case n == 0:
		fr.class = 0
	case n == 1:
		fr.class = 1
	default:
		fr.class = 2
	}
	return fr
}

// polyakov returns P_0(0) and P_1(0) of member b of x.
func (l *U1HolonomyLayer) polyakov(x *nnlayers.Tensor, b int) [2]float64 {
	var p [2]float64
	for s := range x.V {
		if l.coord[1][s] == 0 {
			p[0] += angle(x, s, b, 0)
		}
		if l.coord[0][s] == 0 {
			p[1] += angle(x, s, b, 1)
		}
	}
	return p
}

// holPhi returns φ(c).
func holPhi(c float64) [holFeatures]float64 {
	return [holFeatures]float64{1, math.Cos(c), math.Sin(c), math.Cos(2 * c), math.Sin(2 * c)}
}

// mapParams fills p with W_st[class] φ.
func (l *U1HolonomyLayer) mapParams(st, class int, phi [holFeatures]float64, p []float64) {
	np := len(p)
	w := l.w[st].Value[class*np*holFeatures:]
	for j := range np {
		v := 0.0
		for f, x := range phi {
			v += w[j*holFeatures+f] * x
		}
		p[j] = v
	}
}

// u1HolonomyOp runs the layer member by member (forward, inverse,
// backward).
type u1HolonomyOp struct {
	l             *U1HolonomyLayer
	in, out, ld   *nnlayers.Tensor
	inverse, back bool
	work          [][]float64 // per worker: the circle map's scratch
	scr           []u1HolonomyScratch
}

// u1HolonomyScratch is one chunk's working memory.
type u1HolonomyScratch struct {
	p, gp [2][]float64 // the stages' map parameters and their gradients
	gw    [2][]float64 // the chunk's share of the weight gradients
}

func (o *u1HolonomyOp) Kind() string { return couplingKind }

func (o *u1HolonomyOp) ready(workers, chunks int) {
	l := o.l
	for len(o.work) < workers {
		o.work = append(o.work, make([]float64, l.cmap.ScratchLen()))
	}
	np := l.cmap.Params()
	for len(o.scr) < chunks {
		var sc u1HolonomyScratch
		for st := range 2 {
			sc.p[st], sc.gp[st] = make([]float64, np), make([]float64, np)
			sc.gw[st] = make([]float64, l.w[st].Size())
		}
		o.scr = append(o.scr, sc)
	}
}

func (o *u1HolonomyOp) Run(w, chunk int) {
	lo, hi := nnlayers.ChunkRange(chunk, o.in.B)
	sc := &o.scr[chunk]
	for b := lo; b < hi; b++ {
		if o.back {
			o.backward(b, o.work[w], sc)
		} else {
			o.forward(b, o.work[w], sc)
		}
	}
}

// twist adds (α, β) to the twisted links of member b of out.
func (o *u1HolonomyOp) twist(b int, alpha, beta float64) {
	l := o.l
	for s := range o.out.V {
		if l.coord[0][s] == 0 {
			o.out.Data[o.out.At(s, b, 0)] += alpha
		}
		if l.coord[1][s] == 0 {
			o.out.Data[o.out.At(s, b, 1)] += beta
		}
	}
}

// forward maps member b (or inverts it, with o.inverse): see U1HolonomyLayer.
func (o *u1HolonomyOp) forward(b int, work []float64, sc *u1HolonomyScratch) {
	l := o.l
	fr := l.frame(o.in, b)
	p := l.polyakov(o.in, b)
	h0, h1 := wrap(p[0]+fr.c[0]), wrap(p[1]+fr.c[1])
	var ld0, ld1, alpha, beta float64
	if o.inverse {
		// o.in holds H′: undo stage 1 (conditioned on H′_0), then stage 0.
		l.mapParams(1, fr.class, holPhi(h0), sc.p[1])
		x1, d1 := l.cmap.Inverse(sc.p[1], h1, work)
		l.mapParams(0, fr.class, holPhi(x1), sc.p[0])
		x0, d0 := l.cmap.Inverse(sc.p[0], h0, work)
		ld0, ld1, alpha, beta = d0, d1, x0-h0, x1-h1
	} else {
		l.mapParams(0, fr.class, holPhi(h1), sc.p[0])
		y0, d0 := l.cmap.Forward(sc.p[0], h0, work)
		l.mapParams(1, fr.class, holPhi(y0), sc.p[1])
		y1, d1 := l.cmap.Forward(sc.p[1], h1, work)
		ld0, ld1, alpha, beta = d0, d1, y0-h0, y1-h1
	}
	o.twist(b, alpha, beta)
	o.ld.Data[o.ld.At(l.origin, b, 0)] = ld0 + ld1
}

// backward back-propagates member b: out = in + twist(α, β) passes ∂L/∂out
// through and sums it over the twisted links into ∂L/∂α, ∂L/∂β; α = H′_0
// − H_0 and β = H′_1 − H_1 go through the stages in reverse (stage 1's
// parameters depend on H′_0, stage 0's on H_1), and H = P(0) + c to the
// links, c through the plaquettes.
func (o *u1HolonomyOp) backward(b int, work []float64, sc *u1HolonomyScratch) {
	l := o.l
	x := o.in
	fr := l.frame(x, b)
	p := l.polyakov(x, b)
	h0, h1 := wrap(p[0]+fr.c[0]), wrap(p[1]+fr.c[1])
	phi0 := holPhi(h1)
	l.mapParams(0, fr.class, phi0, sc.p[0])
	y0, _ := l.cmap.Forward(sc.p[0], h0, work)
	phi1 := holPhi(y0)
	l.mapParams(1, fr.class, phi1, sc.p[1])

	var ga, gb float64
	for s := range x.V {
		if l.coord[0][s] == 0 {
			ga += o.out.Grad[o.out.At(s, b, 0)]
		}
		if l.coord[1][s] == 0 {
			gb += o.out.Grad[o.out.At(s, b, 1)]
		}
	}
	gl := o.ld.Grad[o.ld.At(l.origin, b, 0)]
	// Stage 1: β = g(H_1; p_1(H′_0)) − H_1.
	clear(sc.gp[1])
	gh1 := l.cmap.VJP(sc.p[1], h1, gb, gl, sc.gp[1], work) - gb
	gy0 := ga + o.weights(1, fr.class, phi1, y0, sc)
	// Stage 0: α = g(H_0; p_0(H_1)) − H_0.
	clear(sc.gp[0])
	gh0 := l.cmap.VJP(sc.p[0], h0, gy0, gl, sc.gp[0], work) - ga
	gh1 += o.weights(0, fr.class, phi0, h1, sc)
	g := x.Grad
	if g == nil {
		return
	}
	for s := range x.V {
		if l.coord[1][s] == 0 {
			g[x.At(s, b, 0)] += gh0
		}
		if l.coord[0][s] == 0 {
			g[x.At(s, b, 1)] += gh1
		}
		gw := -gh0*float64(l.dims[1]-1-int(l.coord[1][s]))/float64(l.dims[1]) +
			gh1*float64(l.dims[0]-1-int(l.coord[0][s]))/float64(l.dims[0])
		g[x.At(s, b, 0)] += gw
		g[x.At(int(l.up[0][s]), b, 1)] += gw
		g[x.At(int(l.up[1][s]), b, 0)] -= gw
		g[x.At(s, b, 1)] -= gw
	}
}

// weights adds the weight gradients of stage st from its parameter
// gradients sc.gp[st] (features φ(c)) and returns ∂L/∂c through φ.
func (o *u1HolonomyOp) weights(st, class int, phi [holFeatures]float64, c float64, sc *u1HolonomyScratch) float64 {
	np := len(sc.gp[st])
	w := o.l.w[st].Value[class*np*holFeatures:]
	acc := sc.gw[st][class*np*holFeatures:]
	var gphi [holFeatures]float64
	for j, v := range sc.gp[st] {
		for f, ph := range phi {
			acc[j*holFeatures+f] += v * ph
			gphi[f] += v * w[j*holFeatures+f]
		}
	}
	return -gphi[1]*math.Sin(c) + gphi[2]*math.Cos(c) - 2*gphi[3]*math.Sin(2*c) + 2*gphi[4]*math.Cos(2*c)
}

func (o *u1HolonomyOp) Backward(t *nnlayers.Tape) error {
	if o.in.Grad != nil {
		for i, v := range o.out.Grad {
			o.in.Grad[i] += v
		}
	}
	chunks := nnlayers.Chunks(o.in.B)
	o.ready(t.Workers(), chunks)
	for i := range o.scr {
		for st := range 2 {
			clear(o.scr[i].gw[st])
		}
	}
	o.back = true
	t.Run(chunks, o)
	o.back = false
	// Chunk by chunk, in order: deterministic.
	for i := range chunks {
		for st := range 2 {
			for j, v := range o.scr[i].gw[st] {
				o.l.w[st].Grad[j] += v
			}
		}
	}
	return nil
}
