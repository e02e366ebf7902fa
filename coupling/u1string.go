package coupling

import (
	"fmt"
	"math"

	"pfmpi/nnlayers"
)

// U1StringLayer is the U(1) counterpart of the marginal SU(3) string layers
// ([SU3StringLayer]): it maps whole strings of plaquettes of a 2D U(1)
// field without context, so that every plaquette of a string but the seam
// is mapped exactly. With the plaquette angle w(x) = θ_d(x) + θ_m(x+d̂) −
// θ_d(x+m̂) − θ_m(x) of a string of direction d (m = 1 − d), the layer
// keeps θ_m(x_0) and shifts the later links of the string by
//
//	θ′_m(x_{k+1}) = θ_m(x_{k+1}) + δ_{k+1},   δ_{k+1} = δ_k + h_k(w(x_k)) − w(x_k),   δ_0 = 0,
//
// so that w′(x_k) = h_k(w(x_k)) for k = 0 … L_d − 2. With θ_d fixed this is
// triangular in (θ_m(x_0), w(x_0), …, w(x_{L_d−2})), and log J = Σ_k log
// h_k′. The map h is a [CircleMap] whose parameters are trained directly
// (the layer has no context: [MarginalStringPatterns] map all rows at once,
// then the column of their seams).
//
// Bridge plaquettes (the last Bridge of every string before its seam, n =
// L_d − 1 − k ≤ Bridge plaquettes after them) see the flux left, the angle
// M_k = Σ_{j ≥ k} (θ_d(x_j) − θ_d(x_j+m̂)) + θ_m(x_0) − θ′_m(x_k), the sum of
// the string's plaquettes from x_k to the seam, which does not depend on
// w(x_k) or later plaquettes. Under the target the string's plaquettes are
// independent p₁ conditioned on that sum, and a bridge plaquette is mapped
// as
//
//	h(w) = σ + g(w − σ),   σ = arg(1 + c_n e^{iM_k}),   c_n = tanh a_n,
//
// g the circle map with its parameters plus trained weights per n times
// the features 1, cos M_k, sin M_k, cos 2M_k, sin 2M_k. σ is the mode of
// a product of two von Mises densities of concentrations κ and c_n κ
// centred at 0 and M_k, a smooth periodic function of M_k for |c_n| < 1
// (near M_k = 0 it is M_k c_n/(1 + c_n): the Brownian-bridge fraction
// 1/(n+1) at c_n = 1/n, where it starts, at most 0.9). In U(1) the conditional is a density on the circle, which
// such a map can represent; with the column of the marginal layers bridged
// throughout the flow can approach the target up to the fit of the maps.
//
// Gauge equivariance: w and M are gauge invariant and the shifts δ are
// differences of them. The recursion runs along whole strings: the lattice
// must be on one rank.
type U1StringLayer struct {
	geo     *nnlayers.Geometry
	d, m    int
	cmap    CircleMap
	base    *nnlayers.Param // the circle map's parameters
	bridge  *nnlayers.Param // per n: a_n, then the weights [j·u1BridgeFeatures + f]
	nBridge int
	params  nnlayers.Params
	strings [][]int32
	up      [2][]int32
	op      u1StringOp
	pattern StringPattern
	name    string
}

// u1BridgeFeatures is the number of features of M conditioning a U(1)
// bridge map.
const u1BridgeFeatures = 5

// u1BridgeScale scales the bridge features: their weights then move the
// map's parameters a tenth as fast as the base parameters under Adam,
// whose steps do not depend on a parameter's scale (at equal rates the
// conditioning outran the base map and training diverged).
const u1BridgeScale = 0.1

// U1StringLayerSpec configures a U(1) string layer.
type U1StringLayerSpec struct {
	Index   int // position in the flow (names the parameters)
	Pattern StringPattern
	Map     CircleMap
	Bridge  int // bridge plaquettes before every seam, at most L_d − 1
}

// NewU1StringLayer returns the layer of spec on geo (2D, even extents, one
// rank); it starts as the identity.
func NewU1StringLayer(geo *nnlayers.Geometry, spec U1StringLayerSpec) (*U1StringLayer, error) {
	ly := geo.Layout()
	dims := ly.Lattice().Dims()
	pat := spec.Pattern
	if err := pat.check(dims); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("u1 string layer %d", spec.Index)
	if geo.Comm().Size() != 1 {
		return nil, fmt.Errorf("coupling: %s needs the lattice on one rank (a process grid of ones; parallelise over replicas), got %d ranks per lattice", name, geo.Comm().Size())
	}
	if spec.Bridge < 0 || spec.Bridge > dims[pat.Dir]-1 {
		return nil, fmt.Errorf("coupling: %s: %d bridge plaquettes on strings of %d (need 0 … %d)", name, spec.Bridge, dims[pat.Dir], dims[pat.Dir]-1)
	}
	np := spec.Map.Params()
	l := &U1StringLayer{geo: geo, d: pat.Dir, m: 1 - pat.Dir, cmap: spec.Map, pattern: pat, name: name,
		base: nnlayers.NewParam(fmt.Sprintf("gauge%d/map", spec.Index), np)}
	l.params = nnlayers.Params{l.base}
	if spec.Bridge > 0 {
		l.nBridge = spec.Bridge
		l.bridge = nnlayers.NewParam(fmt.Sprintf("gauge%d/bridge", spec.Index), spec.Bridge, 1+np*u1BridgeFeatures)
		for n := 1; n <= spec.Bridge; n++ {
			l.bridge.Value[(n-1)*(1+np*u1BridgeFeatures)] = math.Atanh(min(1/float64(n), 0.9))
		}
		l.params = append(l.params, l.bridge)
	}
	l.up, l.strings = stringSites(ly, pat)
	l.op.l = l
	return l, nil
}

// Params returns the layer's parameters.
func (l *U1StringLayer) Params() nnlayers.Params { return l.params }

// Roles returns the role of every local plaquette in the layer.
func (l *U1StringLayer) Roles() ([]Role, error) { return StringRoles(l.geo.Layout(), l.pattern) }

// Forward applies the layer to the angles theta (V × B × 2) and returns the
// new angles and logJ plus the layer's log-Jacobian density.
func (l *U1StringLayer) Forward(t *nnlayers.Tape, theta, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	out, ld, err := l.apply(t, theta, false)
	if err != nil {
		return nil, nil, err
	}
	return out, nnlayers.Add(t, logJ, ld), nil
}

// Inverse maps angles out back through the layer (t in NoGrad mode) and
// returns them with the forward log-Jacobian density.
func (l *U1StringLayer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	return l.apply(t, out, true)
}

func (l *U1StringLayer) apply(t *nnlayers.Tape, theta *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
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

// u1StringOp runs the recursion along the strings (forward, inverse,
// backward).
type u1StringOp struct {
	l             *U1StringLayer
	in, out, ld   *nnlayers.Tensor
	inverse, back bool
	work          [][]float64 // per worker: the circle map's scratch
	scr           []u1StringScratch
}

// u1StringScratch is one chunk's working memory.
type u1StringScratch struct {
	n, gn  []float64 // N_k (flux of the rectangle from x_k, without θ′_m(x_k)) and ∂L/∂N_k
	p, gp  []float64 // a plaquette's map parameters and their gradient
	gBase  []float64 // the chunk's share of the gradients
	gBridg []float64
}

func (o *u1StringOp) Kind() string { return couplingKind }

func (o *u1StringOp) ready(workers, chunks int) {
	l := o.l
	for len(o.work) < workers {
		o.work = append(o.work, make([]float64, l.cmap.ScratchLen()))
	}
	np := l.cmap.Params()
	ld := len(l.strings[0])
	for len(o.scr) < chunks {
		sc := u1StringScratch{n: make([]float64, ld+1), gn: make([]float64, ld+1),
			p: make([]float64, np), gp: make([]float64, np), gBase: make([]float64, np)}
		if l.bridge != nil {
			sc.gBridg = make([]float64, l.bridge.Size())
		}
		o.scr = append(o.scr, sc)
	}
}

func (o *u1StringOp) Run(w, chunk int) {
	lo, hi := nnlayers.ChunkRange(chunk, o.in.B)
	sc := &o.scr[chunk]
	for _, str := range o.l.strings {
		for b := lo; b < hi; b++ {
			if o.back {
				o.backwardString(str, b, o.work[w], sc)
			} else {
				o.forwardString(str, b, o.work[w], sc)
			}
		}
	}
}

// angle returns θ_dir at site s of member b of x.
func angle(x *nnlayers.Tensor, s, b, dir int) float64 { return x.Data[x.At(s, b, dir)] }

// plaquette returns w(x_k) of x for the string step s → y.
func (l *U1StringLayer) plaquette(x *nnlayers.Tensor, s, y, b int) float64 {
	return angle(x, s, b, l.d) + angle(x, y, b, l.m) - angle(x, int(l.up[l.m][s]), b, l.d) - angle(x, s, b, l.m)
}

// fluxPaths fills n[k] = Σ_{j ≥ k} (θ_d(x_j) − θ_d(x_j+m̂)) + θ_m(x_0) of x.
func (l *U1StringLayer) fluxPaths(x *nnlayers.Tensor, str []int32, b int, n []float64) {
	ld := len(str)
	n[ld] = angle(x, int(str[0]), b, l.m)
	for k := ld - 1; k >= 0; k-- {
		s := int(str[k])
		n[k] = n[k+1] + angle(x, s, b, l.d) - angle(x, int(l.up[l.m][s]), b, l.d)
	}
}

// u1Bridge is the frame of a bridge plaquette.
type u1Bridge struct {
	n     int
	c     float64 // c_n = tanh a_n
	sigma float64 // arg(1 + c e^{iM})
	phi   [u1BridgeFeatures]float64
}

// mapOf returns the map's parameters and, for a bridge plaquette (n > 0),
// its frame, at plaquette k of a string of length ld whose flux left is
// m (when bridged).
func (o *u1StringOp) mapOf(sc *u1StringScratch, k, ld int, m float64) ([]float64, u1Bridge) {
	l := o.l
	n := ld - 1 - k
	if l.bridge == nil || n > l.nBridge {
		return l.base.Value, u1Bridge{}
	}
	np := len(sc.p)
	wt := l.bridge.Value[(n-1)*(1+np*u1BridgeFeatures):]
	br := u1Bridge{n: n, c: math.Tanh(wt[0])}
	br.sigma = math.Atan2(br.c*math.Sin(m), 1+br.c*math.Cos(m))
	br.phi = [u1BridgeFeatures]float64{u1BridgeScale, u1BridgeScale * math.Cos(m), u1BridgeScale * math.Sin(m), u1BridgeScale * math.Cos(2*m), u1BridgeScale * math.Sin(2*m)}
	for j := range np {
		v := l.base.Value[j]
		for f, x := range br.phi {
			v += wt[1+j*u1BridgeFeatures+f] * x
		}
		sc.p[j] = v
	}
	return sc.p, br
}

// centred returns x mod 2π in (−π, π].
func centred(x float64) float64 {
	y := wrap(x)
	if y > math.Pi {
		y -= 2 * math.Pi
	}
	return y
}

// forwardString (and inverseString, with o.inverse): see U1StringLayer.
func (o *u1StringOp) forwardString(str []int32, b int, work []float64, sc *u1StringScratch) {
	l := o.l
	ld := len(str)
	if l.bridge != nil {
		l.fluxPaths(o.in, str, b, sc.n)
	}
	delta := 0.0 // θ′_m(x_k) − θ_m(x_k)
	for k := 0; k+1 < ld; k++ {
		s, y := int(str[k]), int(str[k+1])
		// The flux left uses the new link at x_k: in the forward pass
		// θ_m(x_k) + δ_k, in the inverse pass the input's own.
		var m float64
		if l.bridge != nil {
			if o.inverse {
				m = sc.n[k] - angle(o.in, s, b, l.m)
			} else {
				m = sc.n[k] - angle(o.in, s, b, l.m) - delta
			}
		}
		p, br := o.mapOf(sc, k, ld, m)
		w := l.plaquette(o.in, s, y, b)
		var step, logd float64
		if o.inverse {
			// o.in holds the new angles, whose plaquette is w′ = w +
			// g(x) − x with x = wrap(w − σ): wrap(w′ − σ) = g(x).
			gx := wrap(w - br.sigma)
			x, ldv := l.cmap.Inverse(p, gx, work)
			step, logd = gx-x, ldv
			delta += step
			o.out.Data[o.out.At(y, b, l.m)] -= delta
		} else {
			x := wrap(w - br.sigma)
			gx, ldv := l.cmap.Forward(p, x, work)
			step, logd = gx-x, ldv // h(w) − w
			delta += step
			o.out.Data[o.out.At(y, b, l.m)] += delta
		}
		o.ld.Data[o.ld.At(s, b, 0)] = logd
	}
}

// backwardString back-propagates through the recursion from the end of the
// string; with g = ∂L/∂δ_{k+1} (the output θ′_m(x_{k+1}) and the later
// steps), δ_{k+1} = δ_k + g(x) − x passes g to g's VJP and −g to x, x =
// wrap(w − σ) passes ∂L/∂x to w and −∂L/∂x to σ, and a bridge plaquette's σ
// = α wrap(M) and features pass ∂L/∂M on to M = N_k − θ_m(x_k) − δ_k.
func (o *u1StringOp) backwardString(str []int32, b int, work []float64, sc *u1StringScratch) {
	l := o.l
	ld := len(str)
	g := o.in.Grad
	if l.bridge != nil {
		l.fluxPaths(o.in, str, b, sc.n)
		clear(sc.gn)
	}
	np := len(sc.p)
	carry := 0.0 // ∂L/∂δ_{k+1} through the later steps
	for k := ld - 2; k >= 0; k-- {
		s, y := int(str[k]), int(str[k+1])
		var m float64
		if l.bridge != nil {
			m = sc.n[k] - angle(o.out, s, b, l.m)
		}
		p, br := o.mapOf(sc, k, ld, m)
		x := wrap(l.plaquette(o.in, s, y, b) - br.sigma)
		gd := o.out.Grad[o.out.At(y, b, l.m)] + carry
		gp := sc.gBase
		if br.n > 0 {
			gp = sc.gp
			clear(gp)
		}
		gx := l.cmap.VJP(p, x, gd, o.ld.Grad[o.ld.At(s, b, 0)], gp, work) - gd
		if g != nil {
			g[o.in.At(s, b, l.d)] += gx
			g[o.in.At(y, b, l.m)] += gx
			g[o.in.At(int(l.up[l.m][s]), b, l.d)] -= gx
			g[o.in.At(s, b, l.m)] -= gx
		}
		carry = gd
		if br.n == 0 {
			continue
		}
		stride := 1 + np*u1BridgeFeatures
		wt, acc := l.bridge.Value[(br.n-1)*stride:], sc.gBridg[(br.n-1)*stride:]
		var gphi [u1BridgeFeatures]float64
		for j, v := range gp {
			sc.gBase[j] += v
			for f, ph := range br.phi {
				acc[1+j*u1BridgeFeatures+f] += v * ph
				gphi[f] += v * wt[1+j*u1BridgeFeatures+f]
			}
		}
		// σ = atan2(c sin M, 1 + c cos M): ∂σ/∂M = c(c + cos M)/r, ∂σ/∂c =
		// sin M/r, r = 1 + 2c cos M + c², and ∂c/∂a = 1 − c².
		gs := -gx
		r := 1 + 2*br.c*math.Cos(m) + br.c*br.c
		acc[0] += gs * math.Sin(m) / r * (1 - br.c*br.c)
		gm := gs*br.c*(br.c+math.Cos(m))/r + u1BridgeScale*(-gphi[1]*math.Sin(m)+gphi[2]*math.Cos(m)-2*gphi[3]*math.Sin(2*m)+2*gphi[4]*math.Cos(2*m))
		sc.gn[k] += gm
		if g != nil {
			g[o.in.At(s, b, l.m)] -= gm
		}
		carry -= gm
	}
	if g == nil || l.bridge == nil {
		return
	}
	// N_k = N_{k+1} + θ_d(x_k) − θ_d(x_k+m̂), N_{L_d} = θ_m(x_0).
	acc := 0.0
	for k := range ld {
		s := int(str[k])
		acc += sc.gn[k]
		g[o.in.At(s, b, l.d)] += acc
		g[o.in.At(int(l.up[l.m][s]), b, l.d)] -= acc
	}
	g[o.in.At(int(str[0]), b, l.m)] += acc
}

func (o *u1StringOp) Backward(t *nnlayers.Tape) error {
	if o.in.Grad != nil {
		for i, v := range o.out.Grad {
			o.in.Grad[i] += v
		}
	}
	chunks := nnlayers.Chunks(o.in.B)
	o.ready(t.Workers(), chunks)
	for i := range o.scr {
		clear(o.scr[i].gBase)
		clear(o.scr[i].gBridg)
	}
	o.back = true
	t.Run(chunks, o)
	o.back = false
	// Chunk by chunk, in order: deterministic.
	l := o.l
	for i := range chunks {
		for j, v := range o.scr[i].gBase {
			l.base.Grad[j] += v
		}
		if l.bridge != nil {
			for j, v := range o.scr[i].gBridg {
				l.bridge.Grad[j] += v
			}
		}
	}
	return nil
}
