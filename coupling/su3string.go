package coupling

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/nnlayers"
	"pfmpi/su3"
)

// SU3StringLayer is a gauge-equivariant coupling layer of a 2D SU(3) flow
// that maps whole strings of plaquettes, so that no plaquette it leaves
// unmapped changes except one per string (the seam).
//
// A [StringPattern] gives the string direction d (the moving direction is
// m = 1 − d), the rows x_m of the strings and the seam start a; the regular
// sequence (RegularStringPattern) alternates direction and parity. The
// plaquette of a string at x
// is W(x) = U_d(x) U_m(x+d̂) U_d(x+m̂)† U_m(x)†, and only the string's own
// links U_m move. Along each string, from x_0 (x_d = a) through x_k = x_0 +
// k d̂, the layer keeps U_m(x_0) and sets
//
//	U′_m(x_{k+1}) = U_d(x_k)† h(W(x_k)) U′_m(x_k) U_d(x_k+m̂),   k = 0 … L_d − 2,
//
// so that W′(x_k) = h(W(x_k)) exactly for every plaquette of the string but
// the seam W(x_{L_d−1}), which changes by a right factor. The links U_d
// and the other rows are untouched: the plaquettes of the rows of the
// other parity are frozen, and a context network computes the parameters
// of the [SpectralMap] h at every site from them (Re and Im of (1/3) Tr,
// zero on the active rows). With U_d fixed, the string's U_m links and the
// variables (U_m(x_0), W(x_0) … W(x_{L_d−2})) are related by left and right
// translations, which preserve Haar measure, so
//
//	log J = Σ_strings Σ_{k < L_d−1} log J_h(W(x_k)).
//
// Gauge equivariance: h is conjugation equivariant and each step of the
// recursion is a product of covariant factors.
//
// The recursion runs along whole strings: the layer needs the lattice on one
// rank (parallelise over replicas). Extents must be even.
type SU3StringLayer struct {
	geo     *nnlayers.Geometry
	d, m    int
	net     nnlayers.Module
	params  nnlayers.Params
	smap    SpectralMap
	strings [][]int32 // sites x_0 … x_{L_d−1} of every active string
	frozen  []float64 // per site: 1 on the rows of the other parity
	up      [2][]int32
	feat    su3StringFeat
	tr      su3StringOp
	name    string
	pattern StringPattern
}

// StringPattern says which strings a string layer maps.
type StringPattern struct {
	Dir   int   // string direction d; the links U_m, m = 1 − d, move
	Rows  []int // x_m of the strings mapped; the other rows are frozen
	Start int   // x_d of the first plaquette of every string; the seam is at x_d = Start − 1
}

// RegularStringPattern returns the pattern of layer i of the regular
// sequence on a lattice of extents dims: direction d = ⌊i/2⌋ mod 2, the
// rows of parity i mod 2, seam start ⌊i/4⌋·(L_d/2 + 1) mod L_d.
func RegularStringPattern(dims []int, i int) StringPattern {
	d := (i / 2) % 2
	p := StringPattern{Dir: d, Start: (i / 4) * (dims[d]/2 + 1) % dims[d]}
	for r := i % 2; r < dims[1-d]; r += 2 {
		p.Rows = append(p.Rows, r)
	}
	return p
}

// MarginalStringPatterns returns the two patterns that map every plaquette
// but one without context: all rows of direction 0 (seams at x_0 = L_0 −
// 1), then the column of those seams (its seam at x_1 = L_1 − 1).
func MarginalStringPatterns(dims []int) [2]StringPattern {
	all := make([]int, dims[1])
	for r := range all {
		all[r] = r
	}
	return [2]StringPattern{{Dir: 0, Rows: all}, {Dir: 1, Rows: []int{dims[0] - 1}}}
}

func (p StringPattern) check(dims []int) error {
	if len(dims) != 2 || dims[0]%2 != 0 || dims[1]%2 != 0 || dims[0] < 2 || dims[1] < 2 {
		return fmt.Errorf("coupling: SU(3) string layers need a 2D lattice with even extents, got %v", dims)
	}
	if p.Dir != 0 && p.Dir != 1 || p.Start < 0 || p.Start >= dims[p.Dir] || len(p.Rows) == 0 {
		return fmt.Errorf("coupling: string pattern %+v on %v: need direction 0 or 1, 0 ≤ start < L_d and at least one row", p, dims)
	}
	seen := make(map[int]bool, len(p.Rows))
	for _, r := range p.Rows {
		if r < 0 || r >= dims[1-p.Dir] || seen[r] {
			return fmt.Errorf("coupling: string pattern %+v on %v: rows must be distinct, in [0, %d)", p, dims, dims[1-p.Dir])
		}
		seen[r] = true
	}
	return nil
}

// StringLayerSpec configures a string layer.
type StringLayerSpec struct {
	Index   int             // position in the flow (names the parameters)
	Pattern StringPattern   // the strings mapped
	Net     nnlayers.Module // SU3Features channels → Map.Params()
	Map     SpectralMap
}

// NewSU3StringLayer returns the string layer of spec on geo (2D, even
// extents, one rank).
func NewSU3StringLayer(geo *nnlayers.Geometry, spec StringLayerSpec) (*SU3StringLayer, error) {
	ly := geo.Layout()
	dims := ly.Lattice().Dims()
	pat := spec.Pattern
	if err := pat.check(dims); err != nil {
		return nil, err
	}
	if geo.Comm().Size() != 1 {
		return nil, fmt.Errorf("coupling: SU(3) string layers need the lattice on one rank (a process grid of ones; parallelise over replicas), got %d ranks per lattice", geo.Comm().Size())
	}
	l := &SU3StringLayer{geo: geo, net: spec.Net, params: spec.Net.Params(), smap: spec.Map, pattern: pat,
		name: fmt.Sprintf("su3 string layer %d", spec.Index)}
	l.d, l.m = pat.Dir, 1-pat.Dir
	v := ly.Volume()
	site := make(map[[2]int]int32, v)
	x := make([]int, 2)
	for s := range v {
		ly.GlobalCoord(s, x)
		site[[2]int{x[0], x[1]}] = int32(s)
	}
	for dir := range 2 {
		l.up[dir] = make([]int32, v)
		for s := range v {
			ly.GlobalCoord(s, x)
			x[dir] = (x[dir] + 1) % dims[dir]
			l.up[dir][s] = site[[2]int{x[0], x[1]}]
		}
	}
	active := make([]bool, dims[l.m])
	for _, r := range pat.Rows {
		active[r] = true
	}
	l.frozen = make([]float64, v)
	for s := range v {
		ly.GlobalCoord(s, x)
		if !active[x[l.m]] {
			l.frozen[s] = 1
		}
	}
	for _, r := range pat.Rows {
		str := make([]int32, dims[l.d])
		for k := range str {
			x[l.m], x[l.d] = r, (pat.Start+k)%dims[l.d]
			str[k] = site[[2]int{x[0], x[1]}]
		}
		l.strings = append(l.strings, str)
	}
	l.feat.l, l.tr.l = l, l
	return l, nil
}

// StringRoles returns the role in a string layer of pattern p of the
// plaquette P_01(x) at every local site x of ly: active where the layer
// maps it, passive at the seams, frozen on the other rows.
func StringRoles(ly *decomp.Layout, p StringPattern) ([]Role, error) {
	dims := ly.Lattice().Dims()
	if err := p.check(dims); err != nil {
		return nil, err
	}
	d, m := p.Dir, 1-p.Dir
	active := make([]bool, dims[m])
	for _, r := range p.Rows {
		active[r] = true
	}
	roles := make([]Role, ly.Volume())
	x := make([]int, 2)
	for s := range roles {
		ly.GlobalCoord(s, x)
		switch {
		case !active[x[m]]:
			roles[s] = Frozen
		case x[d] == (p.Start+dims[d]-1)%dims[d]:
			roles[s] = Passive
		default:
			roles[s] = Active
		}
	}
	return roles, nil
}

// Roles returns the role of every local plaquette in the layer.
func (l *SU3StringLayer) Roles() []Role {
	r, _ := StringRoles(l.geo.Layout(), l.pattern) // checked by NewSU3StringLayer
	return r
}

// Params returns the context network's parameters.
func (l *SU3StringLayer) Params() nnlayers.Params { return l.params }

// Forward applies the layer to the links u (V × B × 36) and returns the
// new links and logJ plus the layer's log-Jacobian density (Haar).
func (l *SU3StringLayer) Forward(t *nnlayers.Tape, u, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	out, ld, err := l.apply(t, u, false)
	if err != nil {
		return nil, nil, err
	}
	return out, nnlayers.Add(t, logJ, ld), nil
}

// Inverse maps links out back through the layer (t in NoGrad mode) and
// returns them with the forward log-Jacobian density.
func (l *SU3StringLayer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	return l.apply(t, out, true)
}

func (l *SU3StringLayer) apply(t *nnlayers.Tape, u *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if u.C != su3LinkChannels || u.V != l.geo.Volume() {
		return nil, nil, fmt.Errorf("coupling: %s applied to %d sites × %d channels", l.name, u.V, u.C)
	}
	start := t.Begin()
	feat := t.Tensor(u.V, u.B, SU3Features)
	l.feat.u, l.feat.f, l.feat.back = u, feat, false
	t.Run(nnlayers.Chunks(u.B), &l.feat)
	t.RecordCustom(&l.feat)
	t.End(couplingKind, start, 0, false)
	par := l.net.Apply(t, feat)
	start = t.Begin()
	out := t.Tensor(u.V, u.B, su3LinkChannels)
	copy(out.Data, u.Data)
	ld := t.Tensor(u.V, u.B, 1)
	l.tr.u, l.tr.par, l.tr.out, l.tr.ld, l.tr.back, l.tr.inverse = u, par, out, ld, false, inverse
	l.tr.err = nil
	l.tr.eig.reset(!t.NoGrad && !inverse, u.V, u.B)
	t.Run(nnlayers.Chunks(u.B), &l.tr)
	l.tr.inverse = false
	t.RecordCustom(&l.tr)
	t.End(couplingKind, start, 0, false)
	return out, ld, l.tr.err
}

// plaquette01 returns the four links of P_01(s) = U1 U2 U3† U4†.
func (l *SU3StringLayer) plaquette01(u *nnlayers.Tensor, s, b int) (u1, u2, u3, u4 su3.Matrix) {
	return link(u, s, b, 0), link(u, int(l.up[0][s]), b, 1), link(u, int(l.up[1][s]), b, 0), link(u, s, b, 1)
}

// su3StringFeat computes the frozen plaquette features and their backward.
type su3StringFeat struct {
	l    *SU3StringLayer
	u, f *nnlayers.Tensor
	back bool
}

func (o *su3StringFeat) Kind() string { return couplingKind }

func (o *su3StringFeat) Run(_, chunk int) {
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	plaquetteFeatures(o.u, o.f, o.u.V, o.l.up, o.l.frozen, lo, hi, o.back)
}

func (o *su3StringFeat) Backward(t *nnlayers.Tape) error {
	if o.u.Grad == nil {
		return nil
	}
	// Chunks of the batch write disjoint members of u.Grad.
	o.back = true
	t.Run(nnlayers.Chunks(o.u.B), o)
	o.back = false
	return nil
}

// su3StringOp runs the recursion along the strings (forward, inverse,
// backward).
type su3StringOp struct {
	l               *SU3StringLayer
	u, par, out, ld *nnlayers.Tensor
	back, inverse   bool
	err             error
	eig             eigenCache
}

// eigenCache keeps, per site and member, the eigenphases and eigenvectors
// of the plaquettes a forward pass mapped, for its backward pass (tape
// passes with gradients only).
type eigenCache struct {
	data []float64
	b    int
	on   bool
}

// eigenSize is the number of values of one cached eigen-decomposition.
const eigenSize = 3 + 18

// reset readies the cache for a pass over v sites × b members (on: the
// pass records gradients).
func (c *eigenCache) reset(on bool, v, b int) {
	c.on, c.b = on, b
	if n := v * b * eigenSize; on && len(c.data) < n {
		c.data = make([]float64, n)
	}
}

func (c *eigenCache) store(s, b int, th [3]float64, v su3.Matrix) {
	if !c.on {
		return
	}
	e := c.data[(s*c.b+b)*eigenSize : (s*c.b+b+1)*eigenSize]
	copy(e, th[:])
	for i, z := range v {
		e[3+2*i], e[4+2*i] = real(z), imag(z)
	}
}

func (c *eigenCache) load(s, b int) ([3]float64, su3.Matrix) {
	e := c.data[(s*c.b+b)*eigenSize : (s*c.b+b+1)*eigenSize]
	return [3]float64{e[0], e[1], e[2]}, matrixAt(e, 3)
}

func (o *su3StringOp) Kind() string { return couplingKind }

// stringPlaquette returns W(x) = U_d(x) U_m(x+d̂) U_d(x+m̂)† U_m(x)† of
// links u, with its factors.
func (l *SU3StringLayer) stringPlaquette(u *nnlayers.Tensor, x, y, b int) (w, ud, um1, udm, um su3.Matrix) {
	ud = link(u, x, b, l.d)
	um1 = link(u, y, b, l.m)
	udm = link(u, int(l.up[l.m][x]), b, l.d)
	um = link(u, x, b, l.m)
	return ud.Mul(um1).MulAdj(udm).MulAdj(um), ud, um1, udm, um
}

func (o *su3StringOp) Run(_, chunk int) {
	l := o.l
	np := l.smap.Params()
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	for _, str := range l.strings {
		for b := lo; b < hi; b++ {
			switch {
			case o.inverse:
				o.inverseString(str, b, np)
			case !o.back:
				o.forwardString(str, b, np)
			default:
				o.backwardString(str, b, np)
			}
		}
	}
}

func (o *su3StringOp) params(s, b, np int) []float64 {
	i := o.par.At(s, b, 0)
	return o.par.Data[i : i+np]
}

// forwardString: U′_m(x_{k+1}) = U_d(x_k)† F W U′_m(x_k) U_d(x_k+m̂), F W = h(W).
func (o *su3StringOp) forwardString(str []int32, b, np int) {
	l := o.l
	x := link(o.u, int(str[0]), b, l.m)
	for k := 0; k+1 < len(str); k++ {
		s, y := int(str[k]), int(str[k+1])
		w, ud, _, udm, _ := l.stringPlaquette(o.u, s, y, b)
		f, ld, th, v := l.smap.RotationEigen(o.params(s, b, np), w)
		o.eig.store(s, b, th, v)
		// Projected back onto SU(3): the product carries W's rounding
		// away from the group, which the recursion would otherwise
		// pass on along the row and, layer after layer, amplify (a
		// 24-layer 8×8 model reached |UU† − 1| = 2.5e-3, where log J no
		// longer described the map). The projection moves x by O(ε).
		x = ud.AdjMul(f.Mul(w)).Mul(x).Mul(udm).Unitarize()
		setLink(o.out, y, b, l.m, x)
		o.ld.Data[o.ld.At(s, b, 0)] = ld
	}
}

// inverseString: u holds U′; W′(x_k) = h(W(x_k)) from the new links, W =
// h⁻¹(W′), and the old links follow from the same recursion with W.
func (o *su3StringOp) inverseString(str []int32, b, np int) {
	l := o.l
	x := link(o.u, int(str[0]), b, l.m) // the old link, = the new one at x_0
	for k := 0; k+1 < len(str); k++ {
		s, y := int(str[k]), int(str[k+1])
		wNew, ud, _, udm, _ := l.stringPlaquette(o.u, s, y, b)
		w, ld, err := l.smap.Inverse(o.params(s, b, np), wNew)
		if err != nil {
			o.err = err
			return
		}
		x = ud.AdjMul(w).Mul(x).Mul(udm).Unitarize()
		setLink(o.out, y, b, l.m, x)
		o.ld.Data[o.ld.At(s, b, 0)] = ld
	}
}

// backwardString back-propagates through the recursion from the end of the
// string. For Y = A H X B (A = U_d(x)†, H = h(W), X = U′_m(x), B =
// U_d(x+m̂)) and G_Y: G_{U_d(x)} = H X B G_Y†, G_B = X† H† U_d(x) G_Y, G_X =
// H† U_d(x) G_Y B†, G_H = U_d(x) G_Y B† X†; H = F W gives G_F = G_H W† and
// the direct G_W = F† G_H, and RotationVJP the rest of G_W and the
// parameters' gradient. W = U_d(x) U_m(x+d̂) U_d(x+m̂)† U_m(x)† passes G_W
// to the old links.
func (o *su3StringOp) backwardString(str []int32, b, np int) {
	l := o.l
	var gx su3.Matrix // ∂L/∂U′_m(x_{k+1}) through the later steps
	for k := len(str) - 2; k >= 0; k-- {
		s, y := int(str[k]), int(str[k+1])
		gy := gradOf(o.out, y, b, l.m).Add(gx)
		w, ud, um1, udm, um := l.stringPlaquette(o.u, s, y, b)
		xNew := link(o.out, s, b, l.m)
		gh := ud.Mul(gy).MulAdj(udm).MulAdj(xNew)
		pi := o.par.At(s, b, 0)
		th, v := o.eig.load(s, b)
		gw, f := l.smap.RotationVJPEigen(o.par.Data[pi:pi+np], th, v, gh.MulAdj(w), o.ld.Grad[o.ld.At(s, b, 0)], o.par.Grad[pi:pi+np])
		h := f.Mul(w)
		gw = gw.Add(f.AdjMul(gh))
		gx = h.AdjMul(ud).Mul(gy).MulAdj(udm)
		if o.u.Grad == nil {
			continue
		}
		// The output gradient of U_m(y) was passed through to u.Grad:
		// take it back, it entered gy.
		addGrad(o.u.Grad, o.u, y, b, l.m, gradOf(o.out, y, b, l.m).Scale(-1))
		addGrad(o.u.Grad, o.u, s, b, l.d, h.Mul(xNew).Mul(udm).MulAdj(gy))
		addGrad(o.u.Grad, o.u, int(l.up[l.m][s]), b, l.d, xNew.AdjMul(h.Adj()).Mul(ud).Mul(gy))
		// W = U_d(x) U_m(y) U_d(x+m̂)† U_m(x)†.
		addGrad(o.u.Grad, o.u, s, b, l.d, gw.Mul(um1.MulAdj(udm).MulAdj(um).Adj()))
		addGrad(o.u.Grad, o.u, y, b, l.m, ud.AdjMul(gw).Mul(um.Mul(udm)))
		addGrad(o.u.Grad, o.u, int(l.up[l.m][s]), b, l.d, um.Adj().Mul(gw.Adj()).Mul(ud).Mul(um1))
		addGrad(o.u.Grad, o.u, s, b, l.m, gw.Adj().Mul(ud).Mul(um1).MulAdj(udm))
	}
	if o.u.Grad != nil {
		addGrad(o.u.Grad, o.u, int(str[0]), b, l.m, gx)
	}
}

func (o *su3StringOp) Backward(t *nnlayers.Tape) error {
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
