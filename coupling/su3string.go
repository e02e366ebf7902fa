package coupling

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"

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
// Bridge plaquettes. Under the target, the plaquettes of a string whose
// product M is given are independent p₁ conditioned on that product, and
// the last ones before the seam are pulled towards M: the conditional of
// W(x_k) is ∝ p₁(W) p_n(W⁻¹M_k) with p_n the n-fold convolution of p₁,
// n = L_d − 1 − k the plaquettes after it (seam included) and M_k the
// product of the string's plaquettes from x_k on, the loop
//
//	M_k = N_k U′_m(x_k)†,   N_k = U_d(x_k) … U_d(x_{L_d−1}) U_m(x_0) U_d(x_{L_d−1}+m̂)† … U_d(x_k+m̂)†,
//
// of new and fixed links only (it does not depend on W(x_k) or later
// plaquettes). With Bridge = K > 0, the plaquettes with n ≤ K are mapped as
//
//	W′ = S h(S†W),   S = M_k^{α_n},
//
// S the power of M_k with its eigenphases taken to sum to zero, α_n a
// trained exponent per n (starting at the Brownian-bridge value 1/(n+1)),
// and h's parameters those of the context network plus trained weights
// per n times the features 1, Re and Im of (1/3) Tr S and (1/3) Tr S²
// (starting at zero). Left translations by S preserve Haar measure and S
// depends only on earlier variables of the string, so the Jacobian stays
// triangular and log J_h(S†W) replaces log J_h(W). The marginal column
// layer uses bridges for the plaquettes next to the last seam of the
// lattice, whose product is set by the torus holonomies.
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
	// bridge holds, per distance n = 1 … nBridge to the seam, α_n and the
	// weights of the bridge features: Value[(n−1)·bridgeStride(P) + 1 +
	// j·bridgeFeatures + f] for P = smap.Params(); nil without bridges.
	bridge  *nnlayers.Param
	nBridge int
}

// bridgeFeatures is the number of features of S conditioning a bridge map.
const bridgeFeatures = 5

// bridgeStride is the number of bridge parameters per distance to the seam.
func bridgeStride(np int) int { return 1 + np*bridgeFeatures }

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
	// Bridge is the number of plaquettes before every seam mapped as
	// bridges (see SU3StringLayer), at most L_d − 1; 0: none.
	Bridge int
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
	if spec.Bridge < 0 || spec.Bridge > dims[l.d]-1 {
		return nil, fmt.Errorf("coupling: %s: %d bridge plaquettes on strings of %d (need 0 … %d)", l.name, spec.Bridge, dims[l.d], dims[l.d]-1)
	}
	if spec.Bridge > 0 {
		np := spec.Map.Params()
		l.nBridge = spec.Bridge
		l.bridge = nnlayers.NewParam(fmt.Sprintf("gauge%d/bridge", spec.Index), spec.Bridge, bridgeStride(np))
		for n := 1; n <= spec.Bridge; n++ {
			l.bridge.Value[(n-1)*bridgeStride(np)] = 1 / float64(n+1)
		}
		l.params = append(slices.Clone(l.params), l.bridge)
	}
	l.up, l.strings = stringSites(ly, pat)
	active := make([]bool, dims[l.m])
	for _, r := range pat.Rows {
		active[r] = true
	}
	v := ly.Volume()
	x := make([]int, 2)
	l.frozen = make([]float64, v)
	for s := range v {
		ly.GlobalCoord(s, x)
		if !active[x[l.m]] {
			l.frozen[s] = 1
		}
	}
	l.feat.l, l.tr.l = l, l
	return l, nil
}

// stringSites returns the neighbour tables x + μ̂ of the local sites of ly
// (the whole lattice: string layers need it on one rank) and the sites x_0
// … x_{L_d−1} of every string of pattern p.
func stringSites(ly *decomp.Layout, p StringPattern) (up [2][]int32, strings [][]int32) {
	dims := ly.Lattice().Dims()
	v := ly.Volume()
	site := make(map[[2]int]int32, v)
	x := make([]int, 2)
	for s := range v {
		ly.GlobalCoord(s, x)
		site[[2]int{x[0], x[1]}] = int32(s)
	}
	for dir := range 2 {
		up[dir] = make([]int32, v)
		for s := range v {
			ly.GlobalCoord(s, x)
			x[dir] = (x[dir] + 1) % dims[dir]
			up[dir][s] = site[[2]int{x[0], x[1]}]
		}
	}
	d, m := p.Dir, 1-p.Dir
	for _, r := range p.Rows {
		str := make([]int32, dims[d])
		for k := range str {
			x[m], x[d] = r, (p.Start+k)%dims[d]
			str[k] = site[[2]int{x[0], x[1]}]
		}
		strings = append(strings, str)
	}
	return up, strings
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
	l.tr.readyScratch(u.B)
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
	scr             []stringScratch // per chunk, with bridge plaquettes
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
const eigenSize = 3 + su3.Reals

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
	return [3]float64{e[0], e[1], e[2]}, su3.FromReals(e[3:])
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
	var sc *stringScratch
	if l.bridge != nil {
		sc = &o.scr[chunk]
	}
	for _, str := range l.strings {
		for b := lo; b < hi; b++ {
			switch {
			case o.inverse:
				o.inverseString(str, b, np, sc)
			case !o.back:
				o.forwardString(str, b, np, sc)
			default:
				o.backwardString(str, b, np, sc)
			}
		}
	}
}

// stringScratch is one chunk's working memory for bridge plaquettes.
type stringScratch struct {
	n, gn   []su3.Matrix // N_k and ∂L/∂N_k, k = 0 … L_d
	p, gp   []float64    // a plaquette's map parameters and their gradient
	gradAcc []float64    // the chunk's share of the bridge parameters' gradient
}

// readyScratch sizes one scratch per chunk of a batch of b members.
func (o *su3StringOp) readyScratch(b int) {
	l := o.l
	if l.bridge == nil {
		return
	}
	np := l.smap.Params()
	for len(o.scr) < nnlayers.Chunks(b) {
		ld := len(l.strings[0])
		o.scr = append(o.scr, stringScratch{
			n: make([]su3.Matrix, ld+1), gn: make([]su3.Matrix, ld+1),
			p: make([]float64, np), gp: make([]float64, np),
			gradAcc: make([]float64, l.bridge.Size())})
	}
}

// fluxPaths fills n[k] = N_k of the string of member b in links u: N_{L_d}
// = U_m(x_0), N_k = U_d(x_k) N_{k+1} U_d(x_k+m̂)†.
func (l *SU3StringLayer) fluxPaths(u *nnlayers.Tensor, str []int32, b int, n []su3.Matrix) {
	ld := len(str)
	n[ld] = link(u, int(str[0]), b, l.m)
	for k := ld - 1; k >= 0; k-- {
		s := int(str[k])
		n[k] = link(u, s, b, l.d).Mul(n[k+1]).MulAdj(link(u, int(l.up[l.m][s]), b, l.d))
	}
}

// bridgeOf returns the distance n of plaquette k of a string of length ld
// to the seam when it is a bridge plaquette, else 0.
func (l *SU3StringLayer) bridgeOf(k, ld int) int {
	if n := ld - 1 - k; n <= l.nBridge {
		return n
	}
	return 0
}

// bridgeFeaturesOf returns the features of S: 1, Re and Im of (1/3) Tr S
// and (1/3) Tr S², gauge invariant.
func bridgeFeaturesOf(s su3.Matrix) [bridgeFeatures]float64 {
	t1 := s.Trace() / 3
	t2 := s.Mul(s).Trace() / 3
	return [bridgeFeatures]float64{1, real(t1), imag(t1), real(t2), imag(t2)}
}

// bridgeFeatureGrad returns ∂L/∂S for the features' gradient g.
func bridgeFeatureGrad(s su3.Matrix, g [bridgeFeatures]float64) su3.Matrix {
	d := complex(g[1], g[2]) / 3
	out := s.Adj().Scale(2 * complex(g[3], g[4]) / 3)
	out[0] += d
	out[4] += d
	out[8] += d
	return out
}

// centre returns S = M^α with the eigenphases σ of M taken to sum to zero
// (det S = 1), with σ and M's eigenvectors.
func centre(m su3.Matrix, alpha float64) (s su3.Matrix, sig [3]float64, ev su3.Matrix) {
	sig, ev = su3.Phases(m)
	switch sum := sig[0] + sig[1] + sig[2]; {
	case sum > math.Pi:
		sig[argmax(sig)] -= 2 * math.Pi
	case sum < -math.Pi:
		sig[argmin(sig)] += 2 * math.Pi
	}
	var a [3]float64
	for i := range a {
		a[i] = alpha * sig[i]
	}
	return fromPhases(ev, a), sig, ev
}

func argmax(x [3]float64) int {
	k := 0
	for i := range x {
		if x[i] > x[k] {
			k = i
		}
	}
	return k
}

func argmin(x [3]float64) int {
	k := 0
	for i := range x {
		if x[i] < x[k] {
			k = i
		}
	}
	return k
}

// centreVJP returns G_M given G_S for S = M^α at M = V diag(e^{iσ}) V†,
// and ∂L/∂α: G_M = V (D̄ ∘ (V† G_S V)) V† with D_ij = (s_i − s_j)/(λ_i −
// λ_j) the divided differences of λ ↦ λ^α (Daleckii–Krein), written as
// e^{i(α−1)(σ_i+σ_j)/2} α sinc(αΔ/2)/sinc(Δ/2), Δ = σ_i − σ_j, so that
// D_ii = α s_i/λ_i; ∂S/∂α = V diag(iσ e^{iασ}) V†.
func centreVJP(alpha float64, sig [3]float64, ev, gs su3.Matrix) (su3.Matrix, float64) {
	g := ev.AdjMul(gs).Mul(ev)
	var ga float64
	for i := range 3 {
		ds := complex(0, sig[i]) * cmplx.Exp(complex(0, alpha*sig[i]))
		ga += real(cmplx.Conj(g[4*i]) * ds)
	}
	for i := range 3 {
		for j := range 3 {
			d := sig[i] - sig[j]
			r := alpha * sinc(alpha*d/2) / sinc(d/2)
			g[3*i+j] *= cmplx.Conj(cmplx.Rect(r, (alpha-1)*(sig[i]+sig[j])/2))
		}
	}
	return ev.Mul(g).MulAdj(ev), ga
}

// bridge is the frame of a bridge plaquette: M, S = M^α and its
// eigen-decomposition, the features of S and the map's parameters.
type bridge struct {
	n        int // distance to the seam
	alpha    float64
	m, s, ev su3.Matrix
	sig      [3]float64
	phi      [bridgeFeatures]float64
}

// bridgeFrame returns the frame of a bridge plaquette at distance n from
// the seam with flux m left, and writes the map's parameters (the context
// network's base plus the bridge weights times the features) to p.
func (l *SU3StringLayer) bridgeFrame(n int, m su3.Matrix, base, p []float64) bridge {
	np := len(base)
	w := l.bridge.Value[(n-1)*bridgeStride(np):]
	br := bridge{n: n, alpha: w[0], m: m}
	br.s, br.sig, br.ev = centre(m, br.alpha)
	br.phi = bridgeFeaturesOf(br.s)
	for j := range np {
		v := base[j]
		for f, x := range br.phi {
			v += w[1+j*bridgeFeatures+f] * x
		}
		p[j] = v
	}
	return br
}

// mapOf returns the map parameters and, for a bridge plaquette (n > 0),
// its frame, at plaquette k (site s) of a string with N_k in sc.n and new
// link x at x_k.
func (o *su3StringOp) mapOf(sc *stringScratch, s, b, k, ld, np int, x su3.Matrix) ([]float64, bridge) {
	i := o.par.At(s, b, 0)
	base := o.par.Data[i : i+np]
	var n int
	if sc != nil {
		n = o.l.bridgeOf(k, ld)
	}
	if n == 0 {
		return base, bridge{}
	}
	return sc.p, o.l.bridgeFrame(n, sc.n[k].MulAdj(x), base, sc.p)
}

// forwardString: U′_m(x_{k+1}) = U_d(x_k)† H U′_m(x_k) U_d(x_k+m̂) with H =
// h(W) = F W, or H = S h(S†W) = S F R for a bridge plaquette (R = S†W).
func (o *su3StringOp) forwardString(str []int32, b, np int, sc *stringScratch) {
	l := o.l
	ld := len(str)
	if sc != nil {
		l.fluxPaths(o.u, str, b, sc.n)
	}
	x := link(o.u, int(str[0]), b, l.m)
	for k := 0; k+1 < ld; k++ {
		s, y := int(str[k]), int(str[k+1])
		w, ud, _, udm, _ := l.stringPlaquette(o.u, s, y, b)
		p, br := o.mapOf(sc, s, b, k, ld, np, x)
		var h su3.Matrix
		if br.n > 0 {
			r := br.s.AdjMul(w)
			f, ld, th, v := l.smap.RotationEigen(p, r)
			o.eig.store(s, b, th, v)
			h = br.s.Mul(f).Mul(r)
			o.ld.Data[o.ld.At(s, b, 0)] = ld
		} else {
			f, ld, th, v := l.smap.RotationEigen(p, w)
			o.eig.store(s, b, th, v)
			h = f.Mul(w)
			o.ld.Data[o.ld.At(s, b, 0)] = ld
		}
		// Projected back onto SU(3): the product carries W's rounding
		// away from the group, which the recursion would otherwise
		// pass on along the row and, layer after layer, amplify (a
		// 24-layer 8×8 model reached |UU† − 1| = 2.5e-3, where log J no
		// longer described the map). The projection moves x by O(ε).
		x = ud.AdjMul(h).Mul(x).Mul(udm).Unitarize()
		setLink(o.out, y, b, l.m, x)
	}
}

// inverseString: u holds U′; W′(x_k) = H from the new links, W = h⁻¹(W′)
// (bridge: W = S h⁻¹(S†W′), M_k from the new links as in the forward
// pass), and the old links follow from the same recursion with W.
func (o *su3StringOp) inverseString(str []int32, b, np int, sc *stringScratch) {
	l := o.l
	ld := len(str)
	if sc != nil {
		l.fluxPaths(o.u, str, b, sc.n)
	}
	x := link(o.u, int(str[0]), b, l.m) // the old link, = the new one at x_0
	for k := 0; k+1 < ld; k++ {
		s, y := int(str[k]), int(str[k+1])
		wNew, ud, _, udm, _ := l.stringPlaquette(o.u, s, y, b)
		p, br := o.mapOf(sc, s, b, k, ld, np, link(o.u, s, b, l.m))
		if br.n > 0 {
			wNew = br.s.AdjMul(wNew)
		}
		w, lj, err := l.smap.Inverse(p, wNew)
		if err != nil {
			o.err = err
			return
		}
		if br.n > 0 {
			w = br.s.Mul(w)
		}
		x = ud.AdjMul(w).Mul(x).Mul(udm).Unitarize()
		setLink(o.out, y, b, l.m, x)
		o.ld.Data[o.ld.At(s, b, 0)] = lj
	}
}

// backwardString back-propagates through the recursion from the end of the
// string. For Y = A H X B (A = U_d(x)†, H = h(W), X = U′_m(x), B =
// U_d(x+m̂)) and G_Y: G_{U_d(x)} = H X B G_Y†, G_B = X† H† U_d(x) G_Y, G_X =
// H† U_d(x) G_Y B†, G_H = U_d(x) G_Y B† X†; H = F W gives G_F = G_H W† and
// the direct G_W = F† G_H, and RotationVJP the rest of G_W and the
// parameters' gradient. W = U_d(x) U_m(x+d̂) U_d(x+m̂)† U_m(x)† passes G_W
// to the old links. A bridge plaquette, H = S F R with R = S†W, takes the
// same steps with R in place of W and G_{FR} = S† G_H, then G_W = S G_R and
// G_S = G_H (FR)† + W G_R† plus the features' share; S = M^α passes G_M
// and ∂L/∂α (centreVJP), and M = N_k X† adds G_M† N_k to G_X and G_M X to
// G_{N_k}, which a second pass carries along the row.
func (o *su3StringOp) backwardString(str []int32, b, np int, sc *stringScratch) {
	l := o.l
	ld := len(str)
	if sc != nil {
		l.fluxPaths(o.u, str, b, sc.n)
		clear(sc.gn)
	}
	var gx su3.Matrix // ∂L/∂U′_m(x_{k+1}) through the later steps
	for k := ld - 2; k >= 0; k-- {
		s, y := int(str[k]), int(str[k+1])
		gy := gradOf(o.out, y, b, l.m).Add(gx)
		w, ud, um1, udm, um := l.stringPlaquette(o.u, s, y, b)
		xNew := link(o.out, s, b, l.m)
		gh := ud.Mul(gy).MulAdj(udm).MulAdj(xNew)
		pi := o.par.At(s, b, 0)
		p, br := o.mapOf(sc, s, b, k, ld, np, xNew)
		gp := o.par.Grad[pi : pi+np]
		if br.n > 0 {
			gp = sc.gp
			clear(gp)
		}
		th, v := o.eig.load(s, b)
		var h, gw su3.Matrix
		if br.n > 0 {
			r := br.s.AdjMul(w)
			gfr := br.s.AdjMul(gh)
			gr, f := l.smap.RotationVJPEigen(p, th, v, gfr.MulAdj(r), o.ld.Grad[o.ld.At(s, b, 0)], gp)
			fr := f.Mul(r)
			gr = gr.Add(f.AdjMul(gfr))
			h = br.s.Mul(fr)
			gw = br.s.Mul(gr)
			gs := gh.MulAdj(fr).Add(w.MulAdj(gr))
			// The parameters: the base's gradient to the context
			// network, the bridge weights' to the chunk's accumulator.
			stride := bridgeStride(np)
			wt, acc := l.bridge.Value[(br.n-1)*stride:], sc.gradAcc[(br.n-1)*stride:]
			var gphi [bridgeFeatures]float64
			for j, g := range gp {
				o.par.Grad[pi+j] += g
				for fi, x := range br.phi {
					acc[1+j*bridgeFeatures+fi] += g * x
					gphi[fi] += g * wt[1+j*bridgeFeatures+fi]
				}
			}
			gs = gs.Add(bridgeFeatureGrad(br.s, gphi))
			gm, galpha := centreVJP(br.alpha, br.sig, br.ev, gs)
			acc[0] += galpha
			gx = h.AdjMul(ud).Mul(gy).MulAdj(udm).Add(gm.Adj().Mul(sc.n[k]))
			sc.gn[k] = gm.Mul(xNew)
		} else {
			var f su3.Matrix
			gw, f = l.smap.RotationVJPEigen(p, th, v, gh.MulAdj(w), o.ld.Grad[o.ld.At(s, b, 0)], gp)
			h = f.Mul(w)
			gw = gw.Add(f.AdjMul(gh))
			gx = h.AdjMul(ud).Mul(gy).MulAdj(udm)
		}
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
	if o.u.Grad == nil {
		return
	}
	addGrad(o.u.Grad, o.u, int(str[0]), b, l.m, gx)
	if sc == nil {
		return
	}
	// N_k = U_d(x_k) N_{k+1} U_d(x_k+m̂)†: G_{U_d(x_k)} = G U_d(x_k+m̂)
	// N_{k+1}†, G_{U_d(x_k+m̂)} = G† U_d(x_k) N_{k+1}, G_{N_{k+1}} =
	// U_d(x_k)† G U_d(x_k+m̂); N_{L_d} = U_m(x_0).
	for k := range ld {
		s := int(str[k])
		sm := int(l.up[l.m][s])
		ud, udm := link(o.u, s, b, l.d), link(o.u, sm, b, l.d)
		g := sc.gn[k]
		addGrad(o.u.Grad, o.u, s, b, l.d, g.Mul(udm).MulAdj(sc.n[k+1]))
		addGrad(o.u.Grad, o.u, sm, b, l.d, g.Adj().Mul(ud).Mul(sc.n[k+1]))
		sc.gn[k+1] = sc.gn[k+1].Add(ud.AdjMul(g).Mul(udm))
	}
	addGrad(o.u.Grad, o.u, int(str[0]), b, l.m, sc.gn[ld])
}

func (o *su3StringOp) Backward(t *nnlayers.Tape) error {
	if o.u.Grad != nil {
		for i, g := range o.out.Grad {
			o.u.Grad[i] += g
		}
	}
	o.readyScratch(o.u.B)
	for i := range o.scr {
		clear(o.scr[i].gradAcc)
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.u.B), o)
	o.back = false
	if l := o.l; l.bridge != nil {
		// Chunk by chunk, in order: deterministic.
		for i := range nnlayers.Chunks(o.u.B) {
			for j, g := range o.scr[i].gradAcc {
				l.bridge.Grad[j] += g
			}
		}
	}
	return nil
}
