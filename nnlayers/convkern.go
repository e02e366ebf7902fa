package nnlayers

import (
	"math"

	"pfmpi/decomp"
	"pfmpi/gemm"
	"pfmpi/vmath"
)

// The convolutions as matrix products (see the package documentation).
// With rows r = (s, b) of the M = V·B grid points, K = taps·in and N
// outputs,
//
//	forward   Y = f(X W + b),              X (M × K): row r = the neighbourhood of r
//	backward  Z = Ȳ ⊙ f′(Y)
//	          W̄ += Xᵀ Z,  b̄ += Σ_r Z_r     (F1; with N < K: W̄ᵀ += Zᵀ X, F2)
//	          X̄ = Σ_t Z W_tᵀ into the input gradient at the tap-t
//	          neighbours, tap after tap; the halo part to its owners by the
//	          adjoint exchange.
//
// X is never formed: the packing routines gather it from the padded input.
// Convolutions of one input on one pass of a tape (the heads of the
// pseudofermion flows) share the packed X and Xᵀ: the tape keeps the last
// of each. A bank's output slices live in tensors of their own: the forward
// epilogue stores each column in its slice, and the backward pass first
// gathers Z = Ȳ ⊙ f′(Y) from them into one row-major matrix.
//
// Work is split into tasks by rows (forward), runs of sites whose tap
// neighbours are consecutive (X̄: disjoint rows within a tap) or output
// columns (W̄, b̄), the same for any number of goroutines, so results do not
// depend on it; every element of a forward product is computed the same way
// whatever the batch size (package gemm).

// rowsPerTask is the number of grid rows of a forward task (a multiple of
// every kernel's MR) and the target size of a run.
const rowsPerTask = 96

// colsPerTask is the width of an output-column task of the weight
// gradient (a multiple of every kernel's NR).
const colsPerTask = 64

// convTasks are the task objects of one precision, reused by every
// operation (no allocation per call).
type convTasks[C gemm.Float] struct {
	fwd      fwdTask[C]
	wgrad    wgradTask[C]
	xgrad    xgradTask[C]
	xprod    xprodTask[C]
	xscatter xscatterTask[C]
	dz       dzTask
	zbuf     zbufTask[C]
	pack     packTask[C]
	// per goroutine: sources and epilogue
	rows  []rowsA[C]
	gath  []gatherA[C]
	dense []gemm.Dense[C]
	cols  []gatherB[C]
	zB    []zColsB[C]
	epi   []epilogue[C]
	views []gemm.Packed[C]
	// shared
	st  stencilOf
	g   gatherA[C]
	wB  rowsB[C]
	wTB rowsTB[C]
	xT  gatherAT[C]
	dzT rowsAT[C]
}

func (ts *convTasks[C]) ensure(workers int) {
	if len(ts.rows) >= workers {
		return
	}
	ts.rows = make([]rowsA[C], workers)
	ts.gath = make([]gatherA[C], workers)
	ts.dense = make([]gemm.Dense[C], workers)
	ts.cols = make([]gatherB[C], workers)
	ts.zB = make([]zColsB[C], workers)
	ts.epi = make([]epilogue[C], workers)
	ts.views = make([]gemm.Packed[C], workers)
}

// packedInput is a packed X (or Xᵀ) kept for the next convolution of the
// same input on the same pass.
type packedInput[C gemm.Float] struct {
	x      *Tensor
	tp     *taps
	in     int
	pass   uint64
	packed gemm.Packed[C]
}

func (p *packedInput[C]) valid(t *Tape, x *Tensor, tp *taps, in int) bool {
	return p.x == x && p.tp == tp && p.in == in && p.pass == t.pass
}

func (p *packedInput[C]) set(t *Tape, x *Tensor, tp *taps, in int) {
	p.x, p.tp, p.in, p.pass = x, tp, in, t.pass
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

// convert copies src into dst, rounding to C. Rows of 8 float64 and more
// go through copy: the gathers copy rows of 16–32 channels, and a scalar
// loop over them cost 3 % of the reference model's step.
func convert[C gemm.Float](dst []C, src []float64) {
	if d, ok := any(dst).([]float64); ok {
		if len(d) < 8 {
			src = src[:len(d)]
			for i, v := range src {
				d[i] = v
			}
			return
		}
		copy(d, src)
		return
	}
	vmath.Narrow(any(dst).([]float32), src)
}

// widen copies src into dst as float64.
func widen[C gemm.Float](dst []float64, src []C) {
	if s, ok := any(src).([]float64); ok {
		if len(s) < 8 { // as in convert
			s = s[:len(dst)]
			for i, v := range s {
				dst[i] = v
			}
			return
		}
		copy(dst, s)
		return
	}
	vmath.Widen(dst, any(src).([]float32))
}

// addTo adds src to dst.
func addTo[C gemm.Float](dst []float64, src []C) {
	if s, ok := any(src).([]float32); ok {
		vmath.AddWiden(dst, s)
		return
	}
	vmath.Add(dst, any(src).([]float64))
}

func growC[C any](s []C, n int) []C {
	if cap(s) < n {
		return make([]C, n)
	}
	return s[:n]
}

// layout is a bank's slices: member h at columns [off[h], off[h+1]).
type layout struct {
	b   *Bank
	off []int // len(members)+1
}

func (b *Bank) layout() *layout {
	if b.lay != nil {
		return b.lay
	}
	l := &layout{b: b, off: make([]int, len(b.members)+1)}
	for h, m := range b.members {
		l.off[h+1] = l.off[h] + m.Hi - m.Lo
	}
	b.lay = l
	return l
}

// member returns the member of column col.
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

// stencilOf is the geometry of a convolution's input: taps, channels,
// batch.
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
	r0 int // first row of the product
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
	data   []C
	stride int
}

func (a *rowsAT[C]) PackA(dst []C, i, m, p, kc int) {
	for q := range kc {
		off := (p+q)*a.stride + i
		for r, v := range a.data[off : off+m] {
			dst[r*kc+q] = v
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

// rowsTB is the transpose of rows [k0, k0+K′) of W (a tap's block,
// transposed: N × in) as the right factor.
type rowsTB[C gemm.Float] struct {
	data   []float64
	stride int
	k0     int
}

func (w *rowsTB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	for q := range kc {
		o := p + q
		for s0 := 0; s0 < n; s0 += nr {
			cols := min(nr, n-s0)
			panel := dst[(s0/nr)*kc*nr+q*nr : (s0/nr)*kc*nr+(q+1)*nr]
			for c := range cols {
				panel[c] = C(w.data[(w.k0+j+s0+c)*w.stride+o])
			}
			clear(panel[cols:])
		}
	}
}

// zColsB packs columns [j0+j, j0+j+n) of Z (row-major, stride) as the right
// factor and adds their column sums over the packed rows to the bias
// gradient (each element is packed once per product).
type zColsB[C gemm.Float] struct {
	data   []C
	stride int
	j0     int
	bgrad  []float64 // bias gradient of column j0 …
}

func (d *zColsB[C]) PackB(dst []C, nr, p, kc, j, n int) {
	for s0 := 0; s0 < n; s0 += nr {
		cols := min(nr, n-s0)
		panel := dst[(s0/nr)*kc*nr : (s0/nr+1)*kc*nr]
		for q := range kc {
			off := (p+q)*d.stride + d.j0 + j + s0
			copy(panel[q*nr:q*nr+cols], d.data[off:off+cols])
			clear(panel[q*nr+cols : (q+1)*nr])
		}
	}
	g := d.bgrad[j : j+n]
	for q := range kc {
		off := (p+q)*d.stride + d.j0 + j
		addTo(g, d.data[off:off+n])
	}
}

// epilogue adds the bias, applies the activation and stores the block in
// the slices' tensors (in place when the block is the output itself).
type epilogue[C gemm.Float] struct {
	s       *scratch[C]
	lay     *layout
	ys      []*Tensor
	act     Activation
	r0      int  // first grid row of the product
	inPlace bool // C is the lone output
}

// segment locates output column col of the product: slice h, its column
// c0 in the slice of width mw, and the w ≤ left columns from col on that
// stay in the slice.
func (e *epilogue[C]) segment(col, left int) (h, c0, mw, w int) {
	h = e.lay.member(col)
	c0 = col - e.lay.off[h]
	mw = e.lay.off[h+1] - e.lay.off[h]
	return h, c0, mw, min(mw-c0, left)
}

func (e *epilogue[C]) Finish(c []C, ldc, i, m, j, n int) {
	s := e.s
	if !e.inPlace && isF64[C]() && (e.act == Tanh || e.act == ELU) {
		// Bias and activation straight into the slices' tensors.
		for cc := 0; cc < n; {
			h, c0, mw, w := e.segment(j+cc, n-cc)
			y := asC[C](e.ys[h].Data)
			bias := s.bias[j+cc : j+cc+w]
			dst := y[(e.r0+i)*mw+c0:]
			src := c[i*ldc+j+cc:]
			if e.act == Tanh {
				s.vm.TanhRows(dst, mw, src, ldc, bias, m)
			} else {
				s.vm.ELURows(dst, mw, src, ldc, bias, m)
			}
			cc += w
		}
		return
	}
	bias := s.bias[j : j+n]
	block := c[i*ldc+j:]
	switch e.act {
	case Tanh:
		s.vm.TanhRows(block, ldc, block, ldc, bias, m)
	case ELU:
		s.vm.ELURows(block, ldc, block, ldc, bias, m)
	}
	for r := i; r < i+m && e.act != Tanh && e.act != ELU; r++ {
		row := c[r*ldc+j : r*ldc+j+n]
		switch e.act {
		case Identity:
			bias = bias[:len(row)]
			for k := range row {
				row[k] += bias[k]
			}
		case LeakyReLU:
			bias = bias[:len(row)]
			for k := range row {
				v := row[k] + bias[k]
				row[k] = max(v, LeakySlope*v)
			}
		default:
			for k := range row {
				row[k] = C(e.act.value(float64(row[k] + bias[k])))
			}
		}
	}
	if e.inPlace {
		return
	}
	// Into the slices' tensors, segment by segment.
	for cc := 0; cc < n; {
		h, c0, mw, w := e.segment(j+cc, n-cc)
		y := e.ys[h].Data
		for r := i; r < i+m; r++ {
			widen(y[(e.r0+r)*mw+c0:(e.r0+r)*mw+c0+w], c[r*ldc+j+cc:r*ldc+j+cc+w])
		}
		cc += w
	}
}

// fwdTask computes rows [item·rowsPerTask, …) of the output.
type fwdTask[C gemm.Float] struct {
	s      *scratch[C]
	lay    *layout
	st     *stencilOf
	ys     []*Tensor
	act    Activation
	m      int // grid rows
	k      int
	n      int
	shared bool // X is the shared packed input (else gathered per task)
}

func (ft *fwdTask[C]) run(w, item int) {
	s := ft.s
	ts := &s.tasks
	r0 := item * rowsPerTask
	rows := min(rowsPerTask, ft.m-r0)
	var a gemm.ASource[C]
	if isF64[C]() && ft.st.tp.depth == 0 {
		d := &ts.dense[w] // the input, read in place
		d.Data, d.Stride = asC[C](ft.st.pad[r0*ft.st.in:(r0+rows)*ft.st.in]), ft.st.in
		a = d
	} else if ft.shared {
		s.xc.packed.View(&ts.views[w], r0, rows)
		a = &ts.views[w]
	} else {
		g := &ts.gath[w]
		g.st, g.r0 = ft.st, r0
		a = g
	}
	epi := &ts.epi[w]
	*epi = epilogue[C]{s: s, lay: ft.lay, ys: ft.ys, act: ft.act, r0: r0}
	var c []C
	if isF64[C]() && len(ft.ys) == 1 {
		c = asC[C](ft.ys[0].Data[r0*ft.n : (r0+rows)*ft.n])
		epi.inPlace = true
	} else {
		s.blk[w] = growC(s.blk[w], rowsPerTask*ft.n)
		c = s.blk[w][:rows*ft.n]
	}
	s.mm.Mul(&s.ws[w], rows, ft.n, ft.k, a, &s.pb, c, ft.n, false, epi)
	*epi = epilogue[C]{}
}

func bankForward[C gemm.Float](t *Tape, s *scratch[C], b *Bank, x, pad *Tensor, ys []*Tensor) {
	lay := b.layout()
	cv := b.members[0].Conv
	k, n, m := cv.tp.n*cv.in, cv.out, x.V*x.B
	ts := &s.tasks
	ts.ensure(t.workers.n)
	ts.st = stencilOf{tp: cv.tp, in: cv.in, bs: x.B, pad: pad.Data}
	// The heads (banks of slices) of one input share its packed X; a lone
	// convolution gathers its rows task by task, in cache.
	shared := len(ys) > 1 && !(isF64[C]() && cv.tp.depth == 0)
	if shared && !s.xc.valid(t, x, cv.tp, cv.in) {
		// X, gathered once for every convolution of x on this pass.
		ts.g.st = &ts.st
		packA(t, s, &s.xc.packed, &ts.g, m, k)
		ts.g.st = nil
		s.xc.set(t, x, cv.tp, cv.in)
	}
	ts.wB = rowsB[C]{data: cv.W.Value, stride: n}
	packB(t, s, &s.pb, &ts.wB, k, n)
	ts.wB = rowsB[C]{}
	s.bias = growC(s.bias, n)
	convert(s.bias, cv.B.Value)
	ft := &ts.fwd
	*ft = fwdTask[C]{s: s, lay: lay, st: &ts.st, ys: ys, act: cv.act, m: m, k: k, n: n, shared: shared}
	t.workers.run((m+rowsPerTask-1)/rowsPerTask, ft)
	*ft = fwdTask[C]{}
	ts.st = stencilOf{}
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
	applyDeriv(d.act, d.vm, g, y)
}

func applyDeriv(act Activation, vm *vmath.Funcs[float64], g, y []float64) {
	switch act {
	case Tanh:
		vm.TanhGrad(g, y)
	case ELU:
		vm.ELUGrad(g, y)
	case Identity:
	case LeakyReLU:
		y = y[:len(g)]
		for i, v := range y {
			if v <= 0 {
				g[i] *= LeakySlope
			}
		}
	default:
		for i, v := range y {
			g[i] *= act.derivFromOutput(v)
		}
	}
}

// zbufTask gathers Z = Ȳ ⊙ f′(Y) of a convolution's output (or of a
// bank's slices) into one row-major matrix in the precision of the
// products, rows in blocks.
type zbufTask[C gemm.Float] struct {
	lay  *layout
	ys   []*Tensor
	act  Activation
	vm   *vmath.Funcs[float64]
	z    []C // M × N
	tmp  [][]float64
	n, m int
}

func (zt *zbufTask[C]) run(w, item int) {
	r0 := item * rowsPerTask
	r1 := min(r0+rowsPerTask, zt.m)
	tmp := zt.tmp[w]
	for h, y := range zt.ys {
		mw := zt.lay.off[h+1] - zt.lay.off[h]
		c0 := zt.lay.off[h]
		if z, ok := any(zt.z).([]float64); ok && (zt.act == Tanh || zt.act == ELU) {
			// The copy fused with the derivative, the block's rows at once.
			dst, g, yv := z[r0*zt.n+c0:], y.Grad[r0*mw:], y.Data[r0*mw:]
			if zt.act == Tanh {
				zt.vm.TanhGradRows(dst, zt.n, g, yv, mw, mw, r1-r0)
			} else {
				zt.vm.ELUGradRows(dst, zt.n, g, yv, mw, mw, r1-r0)
			}
			continue
		}
		for r := r0; r < r1; r++ {
			if z, ok := any(zt.z).([]float64); ok {
				dst := z[r*zt.n+c0 : r*zt.n+c0+mw]
				copy(dst, y.Grad[r*mw:(r+1)*mw])
				applyDeriv(zt.act, zt.vm, dst, y.Data[r*mw:(r+1)*mw])
				continue
			}
			t := tmp[:mw]
			copy(t, y.Grad[r*mw:(r+1)*mw])
			applyDeriv(zt.act, zt.vm, t, y.Data[r*mw:(r+1)*mw])
			convert(zt.z[r*zt.n+c0:r*zt.n+c0+mw], t)
		}
	}
}

// wgradTask computes the weight gradient of one column block: F1 (W̄ =
// Xᵀ Z, output columns) or F2 (W̄ᵀ = Zᵀ X, columns of the taps × channels).
type wgradTask[C gemm.Float] struct {
	s     *scratch[C]
	cv    *Conv
	st    *stencilOf
	z     []C // Z, M × N
	m     int // grid rows
	k     int
	f2    bool
	tiles int // tasks (F2: the column blocks and the bias)
}

func (wt *wgradTask[C]) run(w, item int) {
	s := wt.s
	cv := wt.cv
	n := cv.out
	if wt.f2 && item == 0 {
		// The bias gradient: column sums of Z (first, the longest task).
		g := cv.B.Grad
		for r := range wt.m {
			for o, v := range wt.z[r*n : (r+1)*n] {
				g[o] += float64(v)
			}
		}
		return
	}
	if wt.f2 {
		// W̄ᵀ(:, j0:j1) = Zᵀ X(:, j0:j1), then transposed into W̄.
		j0 := (item - 1) * colsPerTask
		width := min(colsPerTask, wt.k-j0)
		g := &s.tasks.cols[w]
		g.st, g.j0 = wt.st, j0
		s.blk[w] = growC(s.blk[w], n*colsPerTask)
		out := s.blk[w][:n*width]
		s.mm.Mul(&s.ws[w], n, width, wt.m, &s.pa, g, out, width, false, nil)
		for o := range n {
			for j := range width {
				cv.W.Grad[(j0+j)*n+o] += float64(out[o*width+j])
			}
		}
		*g = gatherB[C]{}
		return
	}
	j0 := item * colsPerTask
	width := min(colsPerTask, n-j0)
	d := &s.tasks.zB[w]
	*d = zColsB[C]{data: wt.z, stride: n, j0: j0, bgrad: cv.B.Grad[j0:]}
	if isF64[C]() {
		s.mm.Mul(&s.ws[w], wt.k, width, wt.m, &s.xtc.packed, d, asC[C](cv.W.Grad[j0:]), n, true, nil)
	} else {
		s.blk[w] = growC(s.blk[w], wt.k*colsPerTask)
		out := s.blk[w][:wt.k*width]
		s.mm.Mul(&s.ws[w], wt.k, width, wt.m, &s.xtc.packed, d, out, width, false, nil)
		for r := range wt.k {
			addTo(cv.W.Grad[r*n+j0:r*n+j0+width], out[r*width:(r+1)*width])
		}
	}
	*d = zColsB[C]{}
}

// xgradTask adds one tap's share of X̄ to the padded input gradient: for
// the sites of a run, Z(s) W_tᵀ into dpad(nbr_t(s)). Within a tap the
// destinations of different sites differ, so the runs of a tap are
// independent tasks; the taps follow one another.
type xgradTask[C gemm.Float] struct {
	s    *scratch[C]
	z    []C
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

// xprodTask computes rows of P = Z Wᵀ, the input gradient of every tap
// before it is added at the tap's neighbours.
type xprodTask[C gemm.Float] struct {
	s       *scratch[C]
	z, p    []C // Z (M × N), P (M × K)
	m, n, k int
}

func (xp *xprodTask[C]) run(w, item int) {
	s := xp.s
	r0 := item * rowsPerTask
	rows := min(rowsPerTask, xp.m-r0)
	d := &s.tasks.dense[w] // Z, read in place
	d.Data, d.Stride = xp.z[r0*xp.n:(r0+rows)*xp.n], xp.n
	s.mm.Mul(&s.ws[w], rows, xp.k, xp.n, d, &s.pb, xp.p[r0*xp.k:(r0+rows)*xp.k], xp.k, false, nil)
}

// xscatterTask adds the columns of tap t0 in P to the padded input
// gradient at the tap's neighbours, run by run (disjoint destinations).
type xscatterTask[C gemm.Float] struct {
	p      []C
	dpad   []float64
	bs, in int
	k, t0  int
	runs   []run
}

func (xs *xscatterTask[C]) run(_, item int) {
	r := xs.runs[item]
	off := xs.t0 * xs.in
	for i := range r.n * xs.bs {
		src := (r.src*xs.bs + i) * xs.k
		dst := (r.dst*xs.bs + i) * xs.in
		addTo(xs.dpad[dst:dst+xs.in], xs.p[src+off:src+off+xs.in])
	}
}

func bankBackward[C gemm.Float](t *Tape, s *scratch[C], b *Bank, x, pad *Tensor, ys []*Tensor) {
	lay := b.layout()
	cv := b.members[0].Conv
	ts := &s.tasks
	ts.ensure(t.workers.n)
	m, k, n := x.V*x.B, cv.tp.n*cv.in, cv.out
	vm := scratchOf[float64](t).vm
	// Z = Ȳ ⊙ f′(Y) in the precision of the products: in place for a lone
	// float64 output, else gathered into one matrix.
	var z []C
	if isF64[C]() && len(ys) == 1 {
		if cv.act != Identity {
			d := &ts.dz
			*d = dzTask{y: ys[0], act: cv.act, vm: vm}
			t.workers.run(blocks(ys[0].Len()), d)
			*d = dzTask{}
		}
		z = asC[C](ys[0].Grad)
	} else {
		s.z = growC(s.z, m*n)
		z = s.z
		for len(s.ztmp) < t.workers.n {
			s.ztmp = append(s.ztmp, nil)
		}
		for i := range s.ztmp {
			s.ztmp[i] = growC(s.ztmp[i], n)
		}
		zt := &ts.zbuf
		*zt = zbufTask[C]{lay: lay, ys: ys, act: cv.act, vm: vm, z: z, tmp: s.ztmp, n: n, m: m}
		t.workers.run((m+rowsPerTask-1)/rowsPerTask, zt)
		*zt = zbufTask[C]{}
	}
	ts.st = stencilOf{tp: cv.tp, in: cv.in, bs: x.B, pad: pad.Data}
	// Weight and bias gradients.
	wt := &ts.wgrad
	*wt = wgradTask[C]{s: s, cv: cv, st: &ts.st, z: z, m: m, k: k, f2: n < k}
	if wt.f2 {
		ts.dzT.data, ts.dzT.stride = z, n
		packA(t, s, &s.pa, &ts.dzT, n, m)
		ts.dzT = rowsAT[C]{}
		wt.tiles = (k+colsPerTask-1)/colsPerTask + 1 // and the bias
	} else {
		if !s.xtc.valid(t, x, cv.tp, cv.in) {
			// Xᵀ, gathered once for every convolution of x on this pass.
			ts.xT.st = &ts.st
			packA(t, s, &s.xtc.packed, &ts.xT, k, m)
			ts.xT.st = nil
			s.xtc.set(t, x, cv.tp, cv.in)
		}
		wt.tiles = (n + colsPerTask - 1) / colsPerTask
	}
	t.workers.run(wt.tiles, wt)
	*wt = wgradTask[C]{}
	ts.st = stencilOf{}
	if x.Grad == nil {
		return
	}
	// X̄ = Σ_t Z W_tᵀ, tap by tap, into the padded input gradient.
	depth := cv.tp.depth
	dpad := pad.Grad
	if depth == 0 {
		dpad = x.Grad
	}
	// Tap by tap, the product Z W_tᵀ reads Z (M × N) once per tap; in one
	// product P = Z Wᵀ (M × taps·in, K = taps·in) it reads Z once but
	// writes and rereads P. The second moves less memory when
	// taps·N > N + 2K: the heads (N = 248 ≫ in = 16), not the hidden
	// layers of the context nets (N = in).
	if taps := cv.tp.n; taps*n <= n+2*k {
		xt := &ts.xgrad
		for t0 := range taps {
			ts.wTB = rowsTB[C]{data: cv.W.Value, stride: n, k0: t0 * cv.in}
			packB(t, s, &s.pb, &ts.wTB, n, cv.in)
			*xt = xgradTask[C]{s: s, z: z, dpad: dpad, bs: x.B, in: cv.in, n: n, runs: cv.tp.runsFor(t0, x.B)}
			t.workers.run(len(xt.runs), xt)
		}
		ts.wTB = rowsTB[C]{}
		*xt = xgradTask[C]{}
	} else {
		ts.wTB = rowsTB[C]{data: cv.W.Value, stride: n}
		packB(t, s, &s.pb, &ts.wTB, n, k)
		ts.wTB = rowsTB[C]{}
		s.p = growC(s.p, m*k)
		xp := &ts.xprod
		*xp = xprodTask[C]{s: s, z: z, p: s.p, m: m, n: n, k: k}
		t.workers.run((m+rowsPerTask-1)/rowsPerTask, xp)
		*xp = xprodTask[C]{}
		xs := &ts.xscatter
		for t0 := range cv.tp.n {
			*xs = xscatterTask[C]{p: s.p, dpad: dpad, bs: x.B, in: cv.in, k: k, t0: t0, runs: cv.tp.runsFor(t0, x.B)}
			t.workers.run(len(xs.runs), xs)
		}
		*xs = xscatterTask[C]{}
	}
	if depth == 0 {
		return
	}
	// The halo part to its owners.
	cv.geo.halo(depth, x.B*cv.in).Adjoint(pad.Grad, decomp.All)
	t.elementwise(elementwise{kind: kindAccumulate, y: x, z: pad})
}

// packTask packs rows of a left (a) or columns of a right (b) operand
// into a shared packed operand, a slice per item; the packed operand does
// not depend on the split.
type packTask[C gemm.Float] struct {
	mm        *gemm.Kernel[C]
	dst       *gemm.Packed[C]
	a         gemm.ASource[C]
	b         gemm.BSource[C]
	ext, step int
}

func (pt *packTask[C]) run(_, item int) {
	lo := item * pt.step
	hi := min(lo+pt.step, pt.ext)
	if pt.a != nil {
		pt.mm.PackARows(pt.dst, pt.a, lo, hi)
	} else {
		pt.mm.PackBCols(pt.dst, pt.b, lo, hi)
	}
}

// packA packs all of A (m × k) into dst with the tape's goroutines.
func packA[C gemm.Float](t *Tape, s *scratch[C], dst *gemm.Packed[C], a gemm.ASource[C], m, k int) {
	s.mm.PrepareA(dst, m, k)
	packParallel(t, s, packTask[C]{mm: s.mm, dst: dst, a: a, ext: m}, s.mm.RowTile(), k)
}

// packB packs all of B (k × n) into dst with the tape's goroutines.
func packB[C gemm.Float](t *Tape, s *scratch[C], dst *gemm.Packed[C], b gemm.BSource[C], k, n int) {
	s.mm.PrepareB(dst, k, n)
	packParallel(t, s, packTask[C]{mm: s.mm, dst: dst, b: b, ext: n}, dst.ColTile(), k)
}

// packParallel runs pt in slices of whole tiles, about four per goroutine,
// serially when the operand is small.
func packParallel[C gemm.Float](t *Tape, s *scratch[C], pt packTask[C], tile, k int) {
	n := t.workers.n
	if n == 1 || pt.ext*k < 1<<14 {
		pt.step = max(pt.ext, 1)
		pt.run(0, 0)
		return
	}
	per := (pt.ext + 4*n - 1) / (4 * n)
	pt.step = max(tile, (per+tile-1)/tile*tile)
	s.tasks.pack = pt
	t.workers.run((pt.ext+pt.step-1)/pt.step, &s.tasks.pack)
	s.tasks.pack = packTask[C]{}
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
