package coupling

import (
	"fmt"
	"math"
	"math/cmplx"

	"pfmpi/nnlayers"
	"pfmpi/su3"
)

// SU3TreeLayer is one level of a gauge-equivariant SU(3) flow that samples
// the 2D lattice top-down through a binary tree of rectangles.
//
// The torus cut open along x_0 = 0 and x_1 = 0 is the root rectangle; a
// rectangle of w × h plaquettes with w ≥ h splits at x_0 + ⌊w/2⌋ into a
// left and a right half, otherwise at x_1 + ⌊h/2⌋ into a lower and an
// upper half, down to single plaquettes ([TreeDepth] levels). For a node
// let T be its boundary loop and A the loop of its first child (left or
// lower), both counterclockwise from the node's lower-left corner; the
// second child's loop B, transported to that corner, satisfies T = B A
// (vertical cut) or T = A B (horizontal cut). One link v of the cut (the
// lowest link of a vertical cut, A = X v Y; the rightmost link of a
// horizontal cut, A = X v† Y) lies in A and B but not in T. Level k moves
// that link of every node at depth k:
//
//	A′ = S h(S† A),   S = T^α  (eigenphases of T summed to zero, α = 1/2),
//	v′ = X† A′ Y†,
//
// with h a [SpectralMap] whose parameters a context network computes from
// Re and Im of (1/3) Tr T at the corner (zero elsewhere). A framed h
// (SpectralMap.Framed(2)) also sees, per eigenvector w_i of S†A, the
// features ⟨w_i|(S + S†)/2|w_i⟩ and ⟨w_i|(S − S†)/2i|w_i⟩: the conditional
// below is not a class function of S†A, and these are what it depends on
// for single plaquettes. T does not
// contain v, so it is unchanged and the level is invertible; v′ is a
// product of covariant factors and h is conjugation equivariant, so the
// level is gauge equivariant; v ↦ A ↦ S†A are Haar-preserving, so
//
//	log J = Σ_nodes log J_h(S† A).
//
// Why: under the prior every loop is Haar and the children of a node are
// independent given T; under the target (2D pure gauge) the plaquettes are
// independent up to the torus constraint, so the conditional density of A
// given T is ∝ p_a(A) p_b(A† T), p_n the density of an n-plaquette loop
// (the n-fold convolution of the one-plaquette density). Centred at S =
// T^{1/2} (A = S R), it is ∝ p_a(SR) p_b(S†R), peaked at R = 1 and close
// to a class function of R, which h can represent. Walking down the tree,
// every split of every loop is one such conditional: exact maps at every
// node would make the flow exact up to the distribution of the root loop
// (the commutator of the torus holonomies), which differs from the
// target's by terms ∝ (Tr P/3)^V.
//
// Nodes of one level are disjoint rectangles, so their moves commute. The
// layer needs the lattice on one rank.
type SU3TreeLayer struct {
	geo    *nnlayers.Geometry
	net    nnlayers.Module
	params nnlayers.Params
	smap   SpectralMap
	nodes  []treeNode
	feat   su3TreeFeat
	tr     su3TreeOp
	name   string
}

// TreeLayerSpec configures a tree layer.
type TreeLayerSpec struct {
	Index int             // position in the flow (names the parameters)
	Level int             // depth in the tree: 0 cuts the whole lattice
	Net   nnlayers.Module // SU3Features channels → Map.Params()
	Map   SpectralMap
}

// pathStep is one link of a path: U_dir(site), or its adjoint.
type pathStep struct {
	site int32
	dir  int8
	adj  bool
}

// treeNode is one cut of a tree level.
type treeNode struct {
	corner int32      // the lower-left corner (features, parameters, log J)
	t      []pathStep // boundary loop T
	x, y   []pathStep // A = X v Y (v = U or U†)
	v      pathStep   // the moving link
	alpha  float64    // S = T^α, α = area(A)/area(T)
	plaq   [2]int32   // the plaquettes P_01 that contain it
}

// treeRect is a rectangle of plaquettes [x0, x0+w) × [y0, y0+h).
type treeRect struct{ x0, y0, w, h int }

// cut splits r into its first and second child; vertical says the cut runs
// along direction 1.
func (r treeRect) cut() (a, b treeRect, vertical bool) {
	if r.h > 1 {
		m := r.h / 2
		return treeRect{r.x0, r.y0, r.w, m}, treeRect{r.x0, r.y0 + m, r.w, r.h - m}, false
	}
	return treeRect{r.x0, r.y0, 1, r.h}, treeRect{r.x0 + 1, r.y0, r.w - 1, r.h}, true
}

// TreeDepth is the number of tree levels on a lattice of extents dims: the
// depth at which every rectangle is a single plaquette.
func TreeDepth(dims []int) int {
	var depth func(r treeRect) int
	depth = func(r treeRect) int {
		if r.w*r.h <= 1 {
			return 0
		}
		a, b, _ := r.cut()
		return 1 + max(depth(a), depth(b))
	}
	if len(dims) != 2 {
		return 0
	}
	return depth(treeRect{0, 0, dims[0], dims[1]})
}

// NewSU3TreeLayer returns tree level spec.Level on geo (2D, one rank).
func NewSU3TreeLayer(geo *nnlayers.Geometry, spec TreeLayerSpec) (*SU3TreeLayer, error) {
	ly := geo.Layout()
	dims := ly.Lattice().Dims()
	if len(dims) != 2 {
		return nil, fmt.Errorf("coupling: SU(3) tree layers need a 2D lattice, got %v", dims)
	}
	if n := TreeDepth(dims); spec.Level < 0 || spec.Level >= n {
		return nil, fmt.Errorf("coupling: tree level %d on %v: the tree has levels 0 … %d", spec.Level, dims, n-1)
	}
	if geo.Comm().Size() != 1 {
		return nil, fmt.Errorf("coupling: SU(3) tree layers need the lattice on one rank (a process grid of ones; parallelise over replicas), got %d ranks per lattice", geo.Comm().Size())
	}
	l := &SU3TreeLayer{geo: geo, net: spec.Net, params: spec.Net.Params(), smap: spec.Map,
		name: fmt.Sprintf("su3 tree layer %d (level %d)", spec.Index, spec.Level)}
	site := make(map[[2]int]int32, ly.Volume())
	x := make([]int, 2)
	for s := range ly.Volume() {
		ly.GlobalCoord(s, x)
		site[[2]int{x[0], x[1]}] = int32(s)
	}
	at := func(x0, x1 int) int32 {
		return site[[2]int{(x0%dims[0] + dims[0]) % dims[0], (x1%dims[1] + dims[1]) % dims[1]}]
	}
	// walk appends n steps in direction dir (sign ±1) from (x0, x1).
	walk := func(p []pathStep, x0, x1, dir, sign, n int) ([]pathStep, int, int) {
		for range n {
			if sign < 0 {
				if dir == 0 {
					x0--
				} else {
					x1--
				}
				p = append(p, pathStep{at(x0, x1), int8(dir), true})
				continue
			}
			p = append(p, pathStep{at(x0, x1), int8(dir), false})
			if dir == 0 {
				x0++
			} else {
				x1++
			}
		}
		return p, x0, x1
	}
	loop := func(r treeRect) []pathStep {
		p, a, b := walk(nil, r.x0, r.y0, 0, 1, r.w)
		p, a, b = walk(p, a, b, 1, 1, r.h)
		p, a, b = walk(p, a, b, 0, -1, r.w)
		p, _, _ = walk(p, a, b, 1, -1, r.h)
		return p
	}
	var visit func(r treeRect, depth int)
	visit = func(r treeRect, depth int) {
		if r.w*r.h <= 1 {
			return
		}
		a, b, vertical := r.cut()
		if depth < spec.Level {
			visit(a, depth+1)
			visit(b, depth+1)
			return
		}
		n := treeNode{corner: at(r.x0, r.y0), t: loop(r), alpha: float64(a.w*a.h) / float64(r.w*r.h)}
		la := loop(a)
		k := a.w // vertical: the first step up the cut
		if !vertical {
			k = a.w + a.h // horizontal: the first step back along the cut
		}
		n.x, n.v, n.y = la[:k], la[k], la[k+1:]
		var lx [2]int
		ly.GlobalCoord(int(n.v.site), lx[:])
		lx[1-n.v.dir]--
		n.plaq = [2]int32{n.v.site, at(lx[0], lx[1])}
		l.nodes = append(l.nodes, n)
	}
	visit(treeRect{0, 0, dims[0], dims[1]}, 0)
	l.feat.l, l.tr.l = l, l
	return l, nil
}

// Roles returns the role of every local plaquette in the layer: active for
// the two plaquettes that contain a moving link, frozen elsewhere.
func (l *SU3TreeLayer) Roles() []Role {
	roles := make([]Role, l.geo.Volume())
	for _, n := range l.nodes {
		roles[n.plaq[0]], roles[n.plaq[1]] = Active, Active
	}
	return roles
}

// Params returns the context network's parameters.
func (l *SU3TreeLayer) Params() nnlayers.Params { return l.params }

// Forward applies the layer to the links u (V × B × 36) and returns the
// new links and logJ plus the layer's log-Jacobian density (Haar).
func (l *SU3TreeLayer) Forward(t *nnlayers.Tape, u, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	out, ld, err := l.apply(t, u, false)
	if err != nil {
		return nil, nil, err
	}
	return out, nnlayers.Add(t, logJ, ld), nil
}

// Inverse maps links out back through the layer (t in NoGrad mode) and
// returns them with the forward log-Jacobian density.
func (l *SU3TreeLayer) Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("coupling: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	return l.apply(t, out, true)
}

func (l *SU3TreeLayer) apply(t *nnlayers.Tape, u *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
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
	t.Run(nnlayers.Chunks(u.B), &l.tr)
	l.tr.inverse = false
	t.RecordCustom(&l.tr)
	t.End(couplingKind, start, 0, false)
	return out, ld, l.tr.err
}

// pathProduct is the ordered product of the links of p in u, member b.
func pathProduct(u *nnlayers.Tensor, b int, p []pathStep) su3.Matrix {
	m := su3.Identity()
	for _, s := range p {
		if s.adj {
			m = m.MulAdj(link(u, int(s.site), b, int(s.dir)))
		} else {
			m = m.Mul(link(u, int(s.site), b, int(s.dir)))
		}
	}
	return m
}

// addStepGrad adds G_F, the gradient of the step's factor F (U or U†), to
// the gradient of its link.
func addStepGrad(u *nnlayers.Tensor, b int, s pathStep, g su3.Matrix) {
	if s.adj {
		g = g.Adj()
	}
	addGrad(u.Grad, u, int(s.site), b, int(s.dir), g)
}

// pathVJP adds to u.Grad the gradient of L through P = F_0 F_1 … F_{n−1}
// (the links of p) given G_P: G_{F_k} = L_k† G_P R_k†, with the prefix L_k
// = P (F_k R_k)† of unitary factors, so one backward sweep suffices.
func pathVJP(u *nnlayers.Tensor, b int, p []pathStep, gp su3.Matrix) {
	pm := pathProduct(u, b, p)
	pg := pm.AdjMul(gp) // P† G_P
	r := su3.Identity()
	for k := len(p) - 1; k >= 0; k-- {
		s := p[k]
		f := link(u, int(s.site), b, int(s.dir))
		if s.adj {
			f = f.Adj()
		}
		fr := f.Mul(r)
		addStepGrad(u, b, s, fr.Mul(pg).MulAdj(r))
		r = fr
	}
}

// su3TreeFeat computes Re and Im of (1/3) Tr T at the nodes' corners and
// their backward.
type su3TreeFeat struct {
	l    *SU3TreeLayer
	u, f *nnlayers.Tensor
	back bool
}

func (o *su3TreeFeat) Kind() string { return couplingKind }

func (o *su3TreeFeat) Run(_, chunk int) {
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	for _, n := range o.l.nodes {
		for b := lo; b < hi; b++ {
			fi := o.f.At(int(n.corner), b, 0)
			if !o.back {
				tr := pathProduct(o.u, b, n.t).Trace() / 3
				o.f.Data[fi], o.f.Data[fi+1] = real(tr), imag(tr)
				continue
			}
			if g := complex(o.f.Grad[fi], o.f.Grad[fi+1]) / 3; g != 0 {
				pathVJP(o.u, b, n.t, su3.Identity().Scale(g))
			}
		}
	}
}

func (o *su3TreeFeat) Backward(t *nnlayers.Tape) error {
	if o.u.Grad == nil {
		return nil
	}
	o.back = true
	t.Run(nnlayers.Chunks(o.u.B), o)
	o.back = false
	return nil
}

// su3TreeOp moves the nodes' links (forward, inverse, backward).
type su3TreeOp struct {
	l               *SU3TreeLayer
	u, par, out, ld *nnlayers.Tensor
	back, inverse   bool
	err             error
}

func (o *su3TreeOp) Kind() string { return couplingKind }

func (o *su3TreeOp) Run(_, chunk int) {
	np := o.l.smap.Params()
	lo, hi := nnlayers.ChunkRange(chunk, o.u.B)
	for i := range o.l.nodes {
		n := &o.l.nodes[i]
		for b := lo; b < hi; b++ {
			p := o.par.Data[o.par.At(int(n.corner), b, 0):][:np]
			switch {
			case o.inverse:
				if err := o.inverseNode(n, b, p); err != nil {
					o.err = err
					return
				}
			case !o.back:
				o.forwardNode(n, b, p)
			default:
				gp := o.par.Grad[o.par.At(int(n.corner), b, 0):][:np]
				o.backwardNode(n, b, p, gp)
			}
		}
	}
}

// stepLink reads the factor of step s (U or U†) from u.
func stepLink(u *nnlayers.Tensor, b int, s pathStep) su3.Matrix {
	m := link(u, int(s.site), b, int(s.dir))
	if s.adj {
		return m.Adj()
	}
	return m
}

// setStepLink stores the factor m of step s in t.
func setStepLink(t *nnlayers.Tensor, b int, s pathStep, m su3.Matrix) {
	if s.adj {
		m = m.Adj()
	}
	setLink(t, int(s.site), b, int(s.dir), m)
}

// centre returns S = T^α with the eigenphases of T taken to sum to zero
// (det S = 1), with T's phases σ and eigenvectors.
func centre(t su3.Matrix, alpha float64) (s su3.Matrix, sig [3]float64, ev su3.Matrix) {
	sig, ev = su3.Phases(t)
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

// centreVJP returns G_T given G_S for S = T^α at T = V diag(e^{iσ}) V†:
// G_T = V (D̄ ∘ (V† G_S V)) V†, D_ij = (s_i − s_j)/(λ_i − λ_j) the divided
// differences of λ ↦ λ^α (Daleckii–Krein), written as e^{i(α−1)(σ_i+σ_j)/2}
// α sinc(αΔ/2)/sinc(Δ/2), Δ = σ_i − σ_j, so that D_ii = α s_i/λ_i.
func centreVJP(alpha float64, sig [3]float64, ev, gs su3.Matrix) su3.Matrix {
	g := ev.AdjMul(gs).Mul(ev)
	for i := range 3 {
		for j := range 3 {
			d := sig[i] - sig[j]
			r := alpha * sinc(alpha*d/2) / sinc(d/2)
			dij := cmplx.Rect(r, (alpha-1)*(sig[i]+sig[j])/2)
			g[3*i+j] *= cmplx.Conj(dij)
		}
	}
	return ev.Mul(g).MulAdj(ev)
}

// frame returns Z = S† X and the other factors of a node: A = X v Y, R =
// Z v Y.
func (o *su3TreeOp) frame(n *treeNode, u *nnlayers.Tensor, b int) (z, x, y, s su3.Matrix, sig [3]float64, ev su3.Matrix) {
	s, sig, ev = centre(pathProduct(u, b, n.t), n.alpha)
	x, y = pathProduct(u, b, n.x), pathProduct(u, b, n.y)
	return s.AdjMul(x), x, y, s, sig, ev
}

// frameMatrices returns the Hermitian G_1 = (S + S†)/2 and G_2 = (S − S†)/2i
// whose diagonals in the eigenbasis of R are the features of a framed h.
func frameMatrices(s su3.Matrix) [2]su3.Matrix {
	return [2]su3.Matrix{s.Add(s.Adj()).Scale(0.5), s.Sub(s.Adj()).Scale(complex(0, -0.5))}
}

// forwardNode: R = Z v Y, v′ = Z† F Z v with F = h(R) R†, so Z v′ Y = h(R).
func (o *su3TreeOp) forwardNode(n *treeNode, b int, p []float64) {
	z, _, y, s, _, _ := o.frame(n, o.u, b)
	v := stepLink(o.u, b, n.v)
	g := frameMatrices(s)
	f, ld := o.l.smap.RotationFramed(p, z.Mul(v).Mul(y), g[:])
	setStepLink(o.out, b, n.v, z.AdjMul(f).Mul(z).Mul(v).Unitarize())
	o.ld.Data[o.ld.At(int(n.corner), b, 0)] = ld
}

// inverseNode: R′ = Z v′ Y from the new links (T, X, Y unchanged), R =
// h⁻¹(R′), v = Z† R Y†.
func (o *su3TreeOp) inverseNode(n *treeNode, b int, p []float64) error {
	z, _, y, s, _, _ := o.frame(n, o.u, b)
	g := frameMatrices(s)
	r, ld, err := o.l.smap.InverseFramed(p, z.Mul(stepLink(o.u, b, n.v)).Mul(y), g[:])
	if err != nil {
		return err
	}
	setStepLink(o.out, b, n.v, z.AdjMul(r).MulAdj(y).Unitarize())
	o.ld.Data[o.ld.At(int(n.corner), b, 0)] = ld
	return nil
}

// backwardNode back-propagates v′ = Z† F Z v, F = F(R), R = Z v Y, Z = S†X,
// S = T^α:
//
//	G_F = Z G_v′ v† Z†,  G_v = Z† F† Z G_v′ + Z† G_R Y†,
//	G_Z = F Z v G_v′† + F† Z G_v′ v† + G_R Y† v†,  G_Y = v† Z† G_R,
//	G_X = S G_Z,  G_S = X G_Z†,
//
// then G_T through the matrix power and the paths' links.
func (o *su3TreeOp) backwardNode(n *treeNode, b int, p, gp []float64) {
	u := o.u
	z, x, y, s, sig, ev := o.frame(n, u, b)
	v := stepLink(u, b, n.v)
	gvNew := gradOf(o.out, int(n.v.site), b, int(n.v.dir))
	if n.v.adj {
		gvNew = gvNew.Adj()
	}
	gf := z.Mul(gvNew).MulAdj(v).MulAdj(z)
	g := frameMatrices(s)
	gr, gg, f := o.l.smap.RotationVJPFramed(p, z.Mul(v).Mul(y), g[:], gf, o.ld.Grad[o.ld.At(int(n.corner), b, 0)], gp)
	if u.Grad == nil {
		return
	}
	zv := z.Mul(v)
	gv := z.AdjMul(f.AdjMul(z)).Mul(gvNew).Add(z.AdjMul(gr).MulAdj(y))
	gz := f.Mul(zv).MulAdj(gvNew).Add(f.AdjMul(z).Mul(gvNew).MulAdj(v)).Add(gr.MulAdj(y).MulAdj(v))
	gy := zv.AdjMul(gr)
	// G_1 = (S + S†)/2 and G_2 = (S − S†)/2i give G_S += G_{G_1} + i G_{G_2}.
	gs := x.Mul(gz.Adj()).Add(gg[0]).Add(gg[1].Scale(complex(0, 1)))
	// The output gradient of v was passed through to u.Grad: take it
	// back, it entered G_v′.
	addGrad(u.Grad, u, int(n.v.site), b, int(n.v.dir), gradOf(o.out, int(n.v.site), b, int(n.v.dir)).Scale(-1))
	addStepGrad(u, b, n.v, gv)
	pathVJP(u, b, n.x, s.Mul(gz))
	pathVJP(u, b, n.y, gy)
	pathVJP(u, b, n.t, centreVJP(n.alpha, sig, ev, gs))
}

func (o *su3TreeOp) Backward(t *nnlayers.Tape) error {
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
