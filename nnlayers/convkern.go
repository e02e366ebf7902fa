package nnlayers

import (
	"math"

	"pfmpi/decomp"
	"pfmpi/gemm"
	"pfmpi/vmath"
)

// The convolutions as matrix products (see the package documentation).
// With rows r = (s, b) of the M = V·B grid points and K = taps·in, a bank's
// members side by side form N virtual output columns (member h at [off_h,
// off_h + n_h), columns [lo, hi) of its convolution's W and b):
//
//	forward   Y = f(X W + b),              X (M × K): row r = the neighbourhood of r
//	backward  Z = Ȳ ⊙ f′(Y)                (in place in each member's gradient)
//	          W̄ += Xᵀ Z,  b̄ += Σ_r Z_r     (F1; a lone convolution with N < K:
//	                                         W̄ᵀ += Zᵀ X, F2)
//	          X̄ = Z Wᵀ (M × K), returned to the sites it came from.
//
// X is never formed: the packing routines gather it from the padded input,
// once per block of rows for the whole bank (forward) and once for all
// weight gradients (Xᵀ). The forward product is one product of all N
// columns whose epilogue adds the bias, applies the activation and stores
// each column in its member's tensor. The weight gradient is tiled by
// columns within each convolution. For X̄ a lone convolution adds Z W_tᵀ to
// the padded input gradient at the tap-t neighbours, tap after tap, over
// runs of sites whose neighbours are consecutive (disjoint rows within a
// tap); a bank of several members computes X̄ into a column buffer and
// gathers it back site by site. Work is split into tasks by rows, runs,
// sites or column tiles, the same for any number of goroutines, so results
// do not depend on it; every element of a forward product is computed the
// same way whatever the batch size (package gemm).

// rowsPerTask is the number of grid rows of a forward or column-buffer task
// (a multiple of every kernel's MR) and the target size of a run.
const rowsPerTask = 96

// colsPerTask is the width of an output-column task of the weight
// gradient (a multiple of every kernel's NR).
const colsPerTask = 64

// sitesPerTask is the number of padded sites of a gather task.
const sitesPerTask = 8

// convTasks are the task objects of one precision, reused by every
// operation (no allocation per call).
type convTasks[C gemm.Float] struct {
	fwd    fwdTask[C]
	fwdG   fwdGroupTask[C]
	wgrad  wgradTask[C]
	xgrad  xgradTask[C]
	colT   colTask[C]
	gather gatherTask
	dz     dzTask
	conv   convertTask[C]
	// per goroutine: sources and epilogue
	gath  []gatherA[C]
	rows  []rowsA[C]
	dense []gemm.Dense[C]
	cols  []gatherB[C]
	zB    []zColsB[C]
	zA    []zRowsA[C]
	epi   []epilogue[C]
	wG    []rowsB[C]
	pbG   []gemm.Packed[C] // a group's packed weights
	viewA []gemm.Packed[C] // rows of the shared packed X
	// shared
	st  stencilOf
	wB  wcatB[C]
	wTB wcatTB[C]
	xT  gatherAT[C]
	dzT rowsAT[C]
}

func (ts *convTasks[C]) ensure(workers int) {
	if len(ts.gath) >= workers {
		return
	}
	ts.gath = make([]gatherA[C], workers)
	ts.rows = make([]rowsA[C], workers)
	ts.dense = make([]gemm.Dense[C], workers)
	ts.cols = make([]gatherB[C], workers)
	ts.zB = make([]zColsB[C], workers)
	ts.zA = make([]zRowsA[C], workers)
	ts.epi = make([]epilogue[C], workers)
	ts.wG = make([]rowsB[C], workers)
	ts.pbG = make([]gemm.Packed[C], workers)
	ts.viewA = make([]gemm.Packed[C], workers)
}

// isF64 reports whether C is float64.
func isF64[C gemm.Float]() bool {
	var z C
	_, ok := any(z).(float64)
	return ok
}

// asC returns s as a []C when C is float64 (nil otherwise).
func asC[C gemm.Float](s []float64) []C {
	c, _ := any(s).([]C)
	return c
}

// convert copies src into dst, rounding to C.
func convert[C gemm.Float](dst []C, src []float64) {
	if d, ok := any(dst).([]float64); ok {
		copy(d, src)
		return
	}
	d := any(dst).([]float32)
	for i, v := range src[:len(d)] {
		d[i] = float32(v)
	}
}

// widen copies src into dst as float64.
func widen[C gemm.Float](dst []float64, src []C) {
	if s, ok := any(src).([]float64); ok {
		copy(dst, s)
		return
	}
	s := any(src).([]float32)
	for i, v := range s[:len(dst)] {
		dst[i] = float64(v)
	}
}

// addTo adds src to dst.
func addTo[C gemm.Float](dst []float64, src []C) {
	if s, ok := any(src).([]float32); ok {
		for i, v := range s[:len(dst)] {
			dst[i] += float64(v)
		}
		return
	}
	s := any(src).([]float64)
	for i, v := range s[:len(dst)] {
		dst[i] += v
	}
}

func growC[C any](s []C, n int) []C {
	if cap(s) < n {
		return make([]C, n)
	}
	return s[:n]
}

// layout is a bank's virtual output columns: member h at [off[h], off[h+1]),
// and groups of consecutive members that are contiguous channels of one
// convolution (one W.Grad block each).
type layout struct {
	b      *Bank
	off    []int // len(members)+1
	groups []group
}

type group struct {
	conv       *Conv
	first, end int // members
	lo         int // the convolution's first channel
	c0, c1     int // virtual columns
}

func (b *Bank) layout() *layout {
	if b.lay != nil {
		return b.lay
	}
	l := &layout{b: b, off: make([]int, len(b.members)+1)}
	for h, m := range b.members {
		l.off[h+1] = l.off[h] + m.Hi - m.Lo
		if g := len(l.groups) - 1; g >= 0 && l.groups[g].conv == m.Conv && b.members[h-1].Hi == m.Lo {
			l.groups[g].end, l.groups[g].c1 = h+1, l.off[h+1]
			continue
		}
		l.groups = append(l.groups, group{conv: m.Conv, first: h, end: h + 1, lo: m.Lo, c0: l.off[h], c1: l.off[h+1]})
	}
	b.lay = l
	return l
}

// member returns the member of virtual column col.
func (l *layout) member(col int) int {
	lo, hi := 0, len(l.off)-1
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if l.off[mid] <= col {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// n is the number of virtual columns.
func (l *layout) n() int { return l.off[len(l.off)-1] }

// stencilOf is the geometry of a bank's input: taps, channels, batch.
type stencilOf struct {
	tp     *taps
	in, bs int
	pad    []float64 // padded input data, [index][batch][channel]
}

// neighbour returns the padded index of tap t of site s.
func (st *stencilOf) neighbour(t, s int) int {
	if st.tp.depth == 0 {
		return s
	}
	return int(st.tp.nbr[t][s])
}

// gatherA packs rows of X: row r = (s, b) holds, tap after tap, the input
// channels of the neighbours of s for member b.
type gatherA[C gemm.Float] struct {
	st *stencilOf
	r0 int // first row of the task
}

func (g *gatherA[C]) PackA(dst []C, i, m, p, kc int) {
	st := g.st
	for r := range m {
		row := g.r0 + i + r
		s, b := row/st.bs, row%st.bs
		out := dst[r*kc : (r+1)*kc]
		for q := 0; q < kc; {
			k := p + q
			t, c0 := k/st.in, k%st.in
			n := min(st.in-c0, kc-q)
			base := (st.neighbour(t, s)*st.bs+b)*st.in + c0
			convert(out[q:q+n], st.pad[base:base+n])
			q += n
		}
	}
}

// gatherB packs X as the right factor: rows [p, p+kc) of the grid,
// columns j0 + [j, j+n) of the taps × channels (for W̄ᵀ = Zᵀ X).
type gatherB[C gemm.Float] struct {
	st *stencilOf
	j0 int // first column of the task
}

func (g *gatherB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	st := g.st
	for q := range kc {
		row := p + q
		s, b := row/st.bs, row%st.bs
		for s0 := 0; s0 < n; s0 += nr {
			cols := min(nr, n-s0)
			panel := dst[(s0/nr)*kc*nr+q*nr : (s0/nr)*kc*nr+(q+1)*nr]
			for c := 0; c < cols; {
				k := g.j0 + j + s0 + c
				t, c0 := k/st.in, k%st.in
				m := min(st.in-c0, cols-c)
				base := (st.neighbour(t, s)*st.bs+b)*st.in + c0
				convert(panel[c:c+m], st.pad[base:base+m])
				c += m
			}
			clear(panel[cols:])
		}
	}
}

// gatherAT packs Xᵀ as the left factor (K × M): row k = (tap, channel),
// column r = grid row (for W̄ = Xᵀ Z).
type gatherAT[C gemm.Float] struct {
	st *stencilOf
}

func (g *gatherAT[C]) PackA(dst []C, i, m, p, kc int) {
	st := g.st
	for q := range kc {
		row := p + q
		s, b := row/st.bs, row%st.bs
		for r := 0; r < m; {
			k := i + r
			t, c0 := k/st.in, k%st.in
			n := min(st.in-c0, m-r)
			base := (st.neighbour(t, s)*st.bs+b)*st.in + c0
			for c, v := range st.pad[base : base+n] {
				dst[(r+c)*kc+q] = C(v)
			}
			r += n
		}
	}
}

// rowsA is a row-major float64 matrix as the left factor in precision C.
type rowsA[C gemm.Float] struct {
	data   []float64
	stride int
}

func (a *rowsA[C]) PackA(dst []C, i, m, p, kc int) {
	for r := range m {
		off := (i+r)*a.stride + p
		convert(dst[r*kc:(r+1)*kc], a.data[off:off+kc])
	}
}

// rowsAT is the transpose of a row-major float64 matrix (Zᵀ) as the left
// factor.
type rowsAT[C gemm.Float] struct {
	data   []float64
	stride int
}

func (a *rowsAT[C]) PackA(dst []C, i, m, p, kc int) {
	for q := range kc {
		off := (p+q)*a.stride + i
		for r, v := range a.data[off : off+m] {
			dst[r*kc+q] = C(v)
		}
	}
}

// zRowsA packs rows r0 + [i, i+m) of Z over the virtual columns [p, p+kc)
// (the members' gradients side by side) as the left factor.
type zRowsA[C gemm.Float] struct {
	lay *layout
	ys  []*Tensor
	r0  int
}

func (a *zRowsA[C]) PackA(dst []C, i, m, p, kc int) {
	for q := 0; q < kc; {
		h := a.lay.member(p + q)
		n := a.lay.off[h+1] - a.lay.off[h]
		c0 := p + q - a.lay.off[h]
		w := min(n-c0, kc-q)
		z := a.ys[h].Grad
		for r := range m {
			off := (a.r0+i+r)*n + c0
			convert(dst[r*kc+q:r*kc+q+w], z[off:off+w])
		}
		q += w
	}
}

// zColsB packs Z as the right factor: grid rows [p, p+kc), virtual columns
// j0 + [j, j+n) (within one group), and adds the column sums over the packed
// rows to the bias gradient (each element is packed once per product).
type zColsB[C gemm.Float] struct {
	lay   *layout
	ys    []*Tensor
	j0    int
	bgrad []float64 // bias gradient of column j0 …
}

func (d *zColsB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	for c := 0; c < n; {
		col := d.j0 + j + c
		h := d.lay.member(col)
		mw := d.lay.off[h+1] - d.lay.off[h]
		c0 := col - d.lay.off[h]
		w := min(mw-c0, n-c)
		z := d.ys[h].Grad
		g := d.bgrad[j+c : j+c+w]
		// Columns c … c+w of the block, panel by panel.
		for s0 := c; s0 < c+w; {
			pn := s0 / nr
			e := min((pn+1)*nr, c+w)
			panel := dst[pn*kc*nr : (pn+1)*kc*nr]
			lo := s0 - pn*nr
			for q := range kc {
				off := (p+q)*mw + c0 + s0 - c
				convert(panel[q*nr+lo:q*nr+lo+e-s0], z[off:off+e-s0])
			}
			s0 = e
		}
		for q := range kc {
			off := (p+q)*mw + c0
			for k, v := range z[off : off+w] {
				g[k] += v
			}
		}
		c += w
	}
	if n%nr != 0 {
		last := (n / nr) * kc * nr
		for q := range kc {
			clear(dst[last+q*nr+n%nr : last+(q+1)*nr])
		}
	}
}

// rowsB is a row-major float64 matrix (weights, K × N within W's rows of
// stride) as the right factor.
type rowsB[C gemm.Float] struct {
	data   []float64
	stride int
}

func (w *rowsB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	for s0 := 0; s0 < n; s0 += nr {
		cols := min(nr, n-s0)
		panel := dst[(s0/nr)*kc*nr : (s0/nr+1)*kc*nr]
		for q := range kc {
			off := (p+q)*w.stride + j + s0
			convert(panel[q*nr:q*nr+cols], w.data[off:off+cols])
			clear(panel[q*nr+cols : (q+1)*nr])
		}
	}
}

// wcatB packs the members' weights side by side (K × N virtual columns).
type wcatB[C gemm.Float] struct {
	lay *layout
}

func (w *wcatB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	l := w.lay
	for c := 0; c < n; {
		col := j + c
		h := l.member(col)
		m := l.b.members[h]
		cv := m.Conv
		c0 := col - l.off[h]
		wd := min(m.Hi-m.Lo-c0, n-c)
		for q := range kc {
			src := cv.W.Value[(p+q)*cv.out+m.Lo+c0 : (p+q)*cv.out+m.Lo+c0+wd]
			for k, v := range src {
				s := c + k
				dst[(s/nr)*kc*nr+q*nr+s%nr] = C(v)
			}
		}
		c += wd
	}
	if n%nr != 0 {
		last := (n / nr) * kc * nr
		for q := range kc {
			clear(dst[last+q*nr+n%nr : last+(q+1)*nr])
		}
	}
}

// wcatTB packs the transpose of the members' weights (virtual rows o,
// columns k0 + [j, j+n) of the taps × channels).
type wcatTB[C gemm.Float] struct {
	lay *layout
	k0  int
}

func (w *wcatTB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	l := w.lay
	for q := range kc {
		h := l.member(p + q)
		m := l.b.members[h]
		cv := m.Conv
		o := m.Lo + p + q - l.off[h]
		for s0 := 0; s0 < n; s0 += nr {
			cols := min(nr, n-s0)
			panel := dst[(s0/nr)*kc*nr+q*nr : (s0/nr)*kc*nr+(q+1)*nr]
			for c := range cols {
				panel[c] = C(cv.W.Value[(w.k0+j+s0+c)*cv.out+o])
			}
			clear(panel[cols:])
		}
	}
}

// epilogue adds the bias, applies the activation and stores the block in
// the members' outputs (in place when the block is the output itself).
type epilogue[C gemm.Float] struct {
	s       *scratch[C]
	lay     *layout
	ys      []*Tensor
	act     Activation
	r0      int  // first grid row of the product
	col0    int  // first virtual column of the product
	inPlace bool // C is the lone member's output
}

func (e *epilogue[C]) Finish(c []C, ldc, i, m, jj, n int) {
	s := e.s
	j := e.col0 + jj // virtual column
	for cc := 0; cc < n; {
		h := e.lay.member(j + cc)
		c0 := j + cc - e.lay.off[h]
		mw := e.lay.off[h+1] - e.lay.off[h]
		w := min(mw-c0, n-cc)
		bias := s.bias[j+cc : j+cc+w]
		for r := i; r < i+m; r++ {
			row := c[r*ldc+jj+cc : r*ldc+jj+cc+w]
			switch e.act {
			case Tanh:
				s.vm.Tanh(row, row, bias)
			case ELU:
				s.vm.ELU(row, row, bias)
			default:
				for k := range row {
					row[k] = C(e.act.value(float64(row[k] + bias[k])))
				}
			}
			if !e.inPlace {
				y := e.ys[h].Data[(e.r0+r)*mw+c0 : (e.r0+r)*mw+c0+w]
				widen(y, row)
			}
		}
		cc += w
	}
}

// fwdTask computes rows [item·rowsPerTask, …) of the bank's outputs.
type fwdTask[C gemm.Float] struct {
	s   *scratch[C]
	lay *layout
	st  stencilOf
	ys  []*Tensor
	act Activation
	m   int // grid rows
	k   int
}

func (ft *fwdTask[C]) run(w, item int) {
	s := ft.s
	r0 := item * rowsPerTask
	rows := min(rowsPerTask, ft.m-r0)
	n := ft.lay.n()
	var a gemm.ASource[C]
	if isF64[C]() && ft.st.tp.depth == 0 {
		d := &s.tasks.dense[w] // the input, read in place
		d.Data, d.Stride = asC[C](ft.st.pad[r0*ft.st.in:(r0+rows)*ft.st.in]), ft.st.in
		a = d
	} else {
		g := &s.tasks.gath[w]
		g.st, g.r0 = &ft.st, r0
		a = g
	}
	epi := &s.tasks.epi[w]
	*epi = epilogue[C]{s: s, lay: ft.lay, ys: ft.ys, act: ft.act, r0: r0}
	var c []C
	if isF64[C]() && len(ft.ys) == 1 {
		c = asC[C](ft.ys[0].Data[r0*n : (r0+rows)*n])
		epi.inPlace = true
	} else {
		s.blk[w] = growC(s.blk[w], rowsPerTask*n)
		c = s.blk[w][:rows*n]
	}
	s.mm.Mul(&s.ws[w], rows, n, ft.k, a, &s.pb, c, n, false, epi)
	*epi = epilogue[C]{}
}

// fwdGroupTask computes the outputs of one group of a bank (a
// convolution's slices) for every row: its weights packed once by the task,
// X the shared packed neighbourhoods, rows in chunks whose output block stays
// in cache for the epilogue.
type fwdGroupTask[C gemm.Float] struct {
	s   *scratch[C]
	lay *layout
	ys  []*Tensor
	act Activation
	m   int // grid rows
	k   int
}

func (ft *fwdGroupTask[C]) run(w, g int) {
	s := ft.s
	ts := &s.tasks
	gr := ft.lay.groups[g]
	n := gr.c1 - gr.c0
	cv := gr.conv
	src := &ts.wG[w]
	*src = rowsB[C]{data: cv.W.Value[gr.lo:], stride: cv.out}
	s.mm.PackB(&ts.pbG[w], src, ft.k, n)
	*src = rowsB[C]{}
	s.blk[w] = growC(s.blk[w], rowsPerTask*n)
	epi := &ts.epi[w]
	*epi = epilogue[C]{s: s, lay: ft.lay, ys: ft.ys, act: ft.act, col0: gr.c0}
	for r0 := 0; r0 < ft.m; r0 += rowsPerTask {
		rows := min(rowsPerTask, ft.m-r0)
		s.pa.View(&ts.viewA[w], r0, rows)
		epi.r0 = r0
		s.mm.Mul(&s.ws[w], rows, n, ft.k, &ts.viewA[w], &ts.pbG[w], s.blk[w][:rows*n], n, false, epi)
	}
	*epi = epilogue[C]{}
}

func bankForward[C gemm.Float](t *Tape, s *scratch[C], b *Bank, pad *Tensor, ys []*Tensor) {
	lay := b.layout()
	c0 := b.members[0].Conv
	k, n := c0.tp.n*c0.in, lay.n()
	ts := &s.tasks
	ts.ensure(t.workers.n)
	s.bias = growC(s.bias, n)
	for h, m := range b.members {
		convert(s.bias[lay.off[h]:lay.off[h+1]], m.Conv.B.Value[m.Lo:m.Hi])
	}
	y0 := ys[0]
	st := stencilOf{tp: c0.tp, in: c0.in, bs: y0.B, pad: pad.Data}
	if len(lay.groups) > 1 {
		// Several convolutions: X gathered once, a task per convolution.
		ts.st = st
		g := &ts.gath[0]
		g.st, g.r0 = &ts.st, 0
		s.mm.PackA(&s.pa, g, y0.V*y0.B, k)
		*g = gatherA[C]{}
		ts.st = stencilOf{}
		ft := &ts.fwdG
		*ft = fwdGroupTask[C]{s: s, lay: lay, ys: ys, act: c0.act, m: y0.V * y0.B, k: k}
		t.workers.run(len(lay.groups), ft)
		*ft = fwdGroupTask[C]{}
		return
	}
	ts.wB.lay = lay
	s.mm.PackB(&s.pb, &ts.wB, k, n)
	ts.wB.lay = nil
	ft := &ts.fwd
	*ft = fwdTask[C]{s: s, lay: lay, st: st, ys: ys, act: c0.act, m: y0.V * y0.B, k: k}
	t.workers.run((ft.m+rowsPerTask-1)/rowsPerTask, ft)
	*ft = fwdTask[C]{}
}

// dzTask turns Ȳ into Z = Ȳ ⊙ f′(Y) in place, block by block.
type dzTask struct {
	y   *Tensor
	act Activation
	vm  *vmath.Funcs[float64]
}

func (d *dzTask) run(_, item int) {
	lo, hi := blockRange(item, d.y.Len())
	g, y := d.y.Grad[lo:hi], d.y.Data[lo:hi]
	switch d.act {
	case Tanh:
		d.vm.TanhGrad(g, y)
	case ELU:
		d.vm.ELUGrad(g, y)
	default:
		for i, v := range y {
			g[i] *= d.act.derivFromOutput(v)
		}
	}
}

// wgradTask computes the weight gradient of one column block: F1 (W̄ =
// Xᵀ Z, virtual columns within one group) or F2 (W̄ᵀ = Zᵀ X, columns of the
// taps × channels).
type wgradTask[C gemm.Float] struct {
	s     *scratch[C]
	lay   *layout
	st    stencilOf
	ys    []*Tensor // Z in the gradients
	m     int       // grid rows
	k     int
	f2    bool
	tiles []colTile
}

// colTile is a block of virtual columns [j0, j1) of group g (F1) or of the
// taps × channels (F2).
type colTile struct{ g, j0, j1 int }

func (wt *wgradTask[C]) run(w, item int) {
	s := wt.s
	tile := wt.tiles[item]
	width := tile.j1 - tile.j0
	gr := wt.lay.groups[tile.g]
	cv := gr.conv
	if wt.f2 {
		// W̄ᵀ(:, j0:j1) = Zᵀ X(:, j0:j1), then transposed into W̄.
		n := cv.out
		g := &s.tasks.cols[w]
		g.st, g.j0 = &wt.st, tile.j0
		s.blk[w] = growC(s.blk[w], n*colsPerTask)
		out := s.blk[w][:n*width]
		s.mm.Mul(&s.ws[w], n, width, wt.m, &s.pa, g, out, width, false, nil)
		for o := range n {
			for j := range width {
				cv.W.Grad[(tile.j0+j)*n+o] += float64(out[o*width+j])
			}
		}
		return
	}
	// Virtual columns j0 … are the convolution's columns col ….
	col := gr.lo + tile.j0 - gr.c0
	d := &s.tasks.zB[w]
	*d = zColsB[C]{lay: wt.lay, ys: wt.ys, j0: tile.j0, bgrad: cv.B.Grad[col:]}
	if isF64[C]() {
		s.mm.Mul(&s.ws[w], wt.k, width, wt.m, &s.pa, d, asC[C](cv.W.Grad[col:]), cv.out, true, nil)
	} else {
		s.blk[w] = growC(s.blk[w], wt.k*colsPerTask)
		out := s.blk[w][:wt.k*width]
		s.mm.Mul(&s.ws[w], wt.k, width, wt.m, &s.pa, d, out, width, false, nil)
		for r := range wt.k {
			addTo(cv.W.Grad[r*cv.out+col:r*cv.out+col+width], out[r*width:(r+1)*width])
		}
	}
	*d = zColsB[C]{}
}

// xgradTask (a lone convolution) adds one tap's share of X̄ to the padded
// input gradient: for the sites of a run, Z(s) W_tᵀ into dpad(nbr_t(s)).
// Within a tap the destinations of different sites differ, so the runs of
// a tap are independent tasks; the taps follow one another.
type xgradTask[C gemm.Float] struct {
	s    *scratch[C]
	z    []C       // Z in the precision of the products
	dpad []float64 // padded input gradient (or the input's, 1×1)
	bs   int
	in   int
	n    int
	runs []run
}

func (xt *xgradTask[C]) run(w, item int) {
	s := xt.s
	r := xt.runs[item]
	rows := r.n * xt.bs
	z := xt.z[r.src*xt.bs*xt.n : (r.src*xt.bs+rows)*xt.n]
	dst := xt.dpad[r.dst*xt.bs*xt.in : (r.dst*xt.bs+rows)*xt.in]
	d := &s.tasks.dense[w] // Z, read in place
	d.Data, d.Stride = z, xt.n
	var a gemm.ASource[C] = d
	if isF64[C]() {
		s.mm.Mul(&s.ws[w], rows, xt.in, xt.n, a, &s.pb, asC[C](dst), xt.in, true, nil)
		return
	}
	s.blk[w] = growC(s.blk[w], rows*xt.in)
	out := s.blk[w][:rows*xt.in]
	s.mm.Mul(&s.ws[w], rows, xt.in, xt.n, a, &s.pb, out, xt.in, false, nil)
	addTo(dst, out)
}

// convertTask rounds a float64 slice into C, block by block.
type convertTask[C gemm.Float] struct {
	dst []C
	src []float64
}

func (ct *convertTask[C]) run(_, item int) {
	lo, hi := blockRange(item, len(ct.dst))
	convert(ct.dst[lo:hi], ct.src[lo:hi])
}

// colTask (a bank of several members) computes rows of the column buffer
// X̄ = Z Wᵀ (M × K), Z gathered from the members' gradients.
type colTask[C gemm.Float] struct {
	s   *scratch[C]
	lay *layout
	ys  []*Tensor
	m   int
	k   int
}

func (ct *colTask[C]) run(w, item int) {
	s := ct.s
	r0 := item * rowsPerTask
	rows := min(rowsPerTask, ct.m-r0)
	a := &s.tasks.zA[w]
	*a = zRowsA[C]{lay: ct.lay, ys: ct.ys, r0: r0}
	s.mm.Mul(&s.ws[w], rows, ct.k, ct.lay.n(), a, &s.pb, s.col[r0*ct.k:(r0+rows)*ct.k], ct.k, false, nil)
	*a = zRowsA[C]{}
}

// gatherTask returns the column buffer to the padded sites the columns came
// from: dpad(p, b, c) = Σ_t X̄((inv_t(p), b), (t, c)), in tap order.
type gatherTask struct {
	tp     *taps
	col    any // []C of the scratch
	in, bs int
	k      int
	dpad   []float64
	sites  int
}

func (gt *gatherTask) run(_, item int) {
	switch col := gt.col.(type) {
	case []float64:
		gatherRun(gt, col, item)
	case []float32:
		gatherRun(gt, col, item)
	}
}

func gatherRun[C gemm.Float](gt *gatherTask, col []C, item int) {
	p0 := item * sitesPerTask
	p1 := min(p0+sitesPerTask, gt.sites)
	per := gt.bs * gt.in
	for p := p0; p < p1; p++ {
		dst := gt.dpad[p*per : (p+1)*per]
		clear(dst)
		for t := range gt.tp.n {
			s := gt.tp.inv[t][p]
			if s < 0 {
				continue
			}
			for b := range gt.bs {
				src := col[(int(s)*gt.bs+b)*gt.k+t*gt.in:][:gt.in]
				addTo(dst[b*gt.in:(b+1)*gt.in], src)
			}
		}
	}
}

func bankBackward[C gemm.Float](t *Tape, s *scratch[C], b *Bank, x, pad *Tensor, ys []*Tensor) {
	lay := b.layout()
	c0 := b.members[0].Conv
	ts := &s.tasks
	ts.ensure(t.workers.n)
	y0 := ys[0]
	m, k, n := y0.V*y0.B, c0.tp.n*c0.in, lay.n()
	// Z = Ȳ ⊙ f′(Y), in place.
	if act := c0.act; act != Identity {
		d := &ts.dz
		for _, y := range ys {
			*d = dzTask{y: y, act: act, vm: scratchOf[float64](t).vm}
			t.workers.run(blocks(y.Len()), d)
		}
		*d = dzTask{}
	}
	st := stencilOf{tp: c0.tp, in: c0.in, bs: y0.B, pad: pad.Data}
	lone := len(b.members) == 1 && b.members[0] == c0.AllOutputs()
	// Weight and bias gradients.
	wt := &ts.wgrad
	*wt = wgradTask[C]{s: s, lay: lay, st: st, ys: ys, m: m, k: k, tiles: wt.tiles[:0]}
	wt.f2 = lone && n < k
	if wt.f2 {
		ts.dzT.data, ts.dzT.stride = y0.Grad, n
		s.mm.PackA(&s.pa, &ts.dzT, n, m)
		ts.dzT = rowsAT[C]{}
		for j := 0; j < k; j += colsPerTask {
			wt.tiles = append(wt.tiles, colTile{0, j, min(j+colsPerTask, k)})
		}
		// The bias gradient: column sums of Z.
		g := c0.B.Grad
		for r := range m {
			for o, v := range y0.Grad[r*n : (r+1)*n] {
				g[o] += v
			}
		}
	} else {
		ts.xT.st = &wt.st
		s.mm.PackA(&s.pa, &ts.xT, k, m)
		ts.xT.st = nil
		for g, gr := range lay.groups {
			for j := gr.c0; j < gr.c1; j += colsPerTask {
				wt.tiles = append(wt.tiles, colTile{g, j, min(j+colsPerTask, gr.c1)})
			}
		}
	}
	t.workers.run(len(wt.tiles), wt)
	tiles := wt.tiles
	*wt = wgradTask[C]{tiles: tiles[:0]}
	if x.Grad == nil {
		return
	}
	depth := c0.tp.depth
	if !lone {
		// X̄ into the column buffer, then back to the padded sites.
		ts.wTB = wcatTB[C]{lay: lay}
		s.mm.PackB(&s.pb, &ts.wTB, n, k)
		ts.wTB = wcatTB[C]{}
		s.col = growC(s.col, m*k)
		ct := &ts.colT
		*ct = colTask[C]{s: s, lay: lay, ys: ys, m: m, k: k}
		t.workers.run((m+rowsPerTask-1)/rowsPerTask, ct)
		*ct = colTask[C]{}
		if depth == 0 { // 1×1: the columns are the input gradient
			addTo(x.Grad[:m*k], s.col[:m*k])
			return
		}
		gt := &ts.gather
		*gt = gatherTask{tp: c0.tp.inverse(), col: s.col, in: c0.in, bs: y0.B, k: k, dpad: pad.Grad, sites: pad.V}
		t.workers.run((pad.V+sitesPerTask-1)/sitesPerTask, gt)
		*gt = gatherTask{}
	} else {
		// X̄ = Σ_t Z W_tᵀ, tap by tap, into the padded input gradient.
		dpad := pad.Grad
		if depth == 0 {
			dpad = x.Grad
		}
		// Z in the precision of the products, read in place by every tap.
		z := asC[C](y0.Grad)
		if z == nil {
			s.z = growC(s.z, m*n)
			z = s.z
			ct := &ts.conv
			*ct = convertTask[C]{dst: z, src: y0.Grad}
			t.workers.run(blocks(len(z)), ct)
			*ct = convertTask[C]{}
		}
		xt := &ts.xgrad
		for t0 := range c0.tp.n {
			ts.wTB = wcatTB[C]{lay: lay, k0: t0 * c0.in}
			s.mm.PackB(&s.pb, &ts.wTB, n, c0.in)
			*xt = xgradTask[C]{s: s, z: z, dpad: dpad, bs: y0.B, in: c0.in, n: n, runs: c0.tp.runsFor(t0, y0.B)}
			t.workers.run(len(xt.runs), xt)
		}
		ts.wTB = wcatTB[C]{}
		*xt = xgradTask[C]{}
		if depth == 0 {
			return
		}
	}
	// The halo part to its owners.
	c0.geo.halo(depth, y0.B*c0.in).Adjoint(pad.Grad, decomp.All)
	t.elementwise(elementwise{kind: kindAccumulate, y: x, z: pad})
}

// derivFromOutput is f′(x) from y = f(x).
func (a Activation) derivFromOutput(y float64) float64 {
	switch a {
	case ELU:
		return min(y, 0) + 1
	case Tanh:
		return 1 - y*y
	case LeakyReLU:
		if y > 0 {
			return 1
		}
		return LeakySlope
	case Softplus:
		return -math.Expm1(-y)
	}
	return 1
}
