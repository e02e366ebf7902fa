package gemm

//go:generate sh -c "cd ../internal/asmgen && go run ./gemm -out ../../gemm/kernels_amd64.s -stubs ../../gemm/kernels_amd64.go"

import (
	"fmt"
	"strings"
)

// Float is the element type of the matrices.
type Float interface{ float32 | float64 }

// Arch is a family of kernels.
type Arch int

const (
	Generic Arch = iota // portable Go
	AVX2                // AVX2 with FMA (amd64)
	AVX512              // AVX-512 F (amd64)
)

var archNames = [...]string{"generic", "avx2", "avx512"}

func (a Arch) String() string {
	if a < 0 || int(a) >= len(archNames) {
		return fmt.Sprintf("Arch(%d)", int(a))
	}
	return archNames[a]
}

// ParseArch returns the family named "generic", "avx2" or "avx512", or
// [Best] for "auto" and "".
func ParseArch(s string) (Arch, error) {
	switch s {
	case "", "auto":
		return Best(), nil
	}
	for a, n := range archNames {
		if n == s {
			return Arch(a), nil
		}
	}
	return 0, fmt.Errorf("gemm: unknown kernel family %q (%s or auto)", s, strings.Join(archNames[:], ", "))
}

// Available reports whether this CPU and build run the kernels of a.
func Available(a Arch) bool { return a == Generic || hasArch(a) }

// Best is the fastest family this CPU runs.
func Best() Arch {
	for _, a := range []Arch{AVX512, AVX2} {
		if Available(a) {
			return a
		}
	}
	return Generic
}

// Archs lists the families this CPU runs, fastest first.
func Archs() []Arch {
	var as []Arch
	for _, a := range []Arch{AVX512, AVX2, Generic} {
		if Available(a) {
			as = append(as, a)
		}
	}
	return as
}

// microFunc computes panels consecutive MR × NR tiles of C (see
// internal/asmgen) from consecutive MR-row panels of A (leading dimension
// lda) and a packed panel of B: C = T, or C += T when acc ≠ 0.
type microFunc[T Float] func(kc int, a *T, lda int, b, c *T, ldc int, acc int, panels int)

// variant is one micro-kernel: its tile and function.
type variant[T Float] struct {
	mr, nr int
	micro  microFunc[T]
}

// Kernel is the micro-kernels of one family and precision with their
// blocking. A family may have a wide and a narrow tile (AVX-512: 6 × 32
// and 12 × 16 for float64, 6 × 64 and 12 × 32 for float32); a product
// uses the one that wastes the fewest columns of its B (the wide one on a
// tie), so the choice depends on the width of B alone. A Kernel holds no
// mutable state: one Kernel serves every goroutine.
type Kernel[T Float] struct {
	arch       Arch
	vars       []variant[T] // widest first
	mr         int          // rows a packed A is padded to: a multiple of every MR
	kc, mc, nc int          // blocks along k, rows, columns
	name       string
}

// New returns the kernels of family a for element type T, or an error if
// this CPU does not run them.
func New[T Float](a Arch) (*Kernel[T], error) {
	if !Available(a) {
		return nil, fmt.Errorf("gemm: this CPU does not run the %s kernels", a)
	}
	k := &Kernel[T]{arch: a}
	if a == Generic {
		k.vars = []variant[T]{{4, 4, microGo[T]}}
	} else {
		k.vars = asmVariants[T](a)
	}
	k.mr = 1
	for _, v := range k.vars {
		k.mr = lcm(k.mr, v.mr)
	}
	// Blocks: a B panel of kc in L1/L2, an A block of mc × kc in L2, a B
	// block in L3.
	k.kc = 256
	k.mc = k.mr * max(1, 96/k.mr)
	k.nc = 512
	var tiles []string
	for _, v := range k.vars {
		tiles = append(tiles, fmt.Sprintf("%d×%d", v.mr, v.nr))
	}
	k.name = fmt.Sprintf("%s %s", a, strings.Join(tiles, "+"))
	return k, nil
}

func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// MustNew is New for a family known to be available ([Best], [Archs]).
func MustNew[T Float](a Arch) *Kernel[T] {
	k, err := New[T](a)
	if err != nil {
		panic(err)
	}
	return k
}

// Arch is the kernel's family.
func (k *Kernel[T]) Arch() Arch { return k.arch }

// Tile returns the micro-tile MR × NR a product with B n columns wide uses.
func (k *Kernel[T]) Tile(n int) (mr, nr int) {
	v := k.pick(n)
	return v.mr, v.nr
}

// pick returns the variant for a B of n columns: the least padding, the
// widest on a tie.
func (k *Kernel[T]) pick(n int) *variant[T] {
	best := &k.vars[0]
	for i := range k.vars[1:] {
		v := &k.vars[i+1]
		if (n+v.nr-1)/v.nr*v.nr < (n+best.nr-1)/best.nr*best.nr {
			best = v
		}
	}
	return best
}

// variantFor returns the variant with tile nr.
func (k *Kernel[T]) variantFor(nr int) *variant[T] {
	for i := range k.vars {
		if k.vars[i].nr == nr {
			return &k.vars[i]
		}
	}
	return nil
}

// KC is the depth of a block along k.
func (k *Kernel[T]) KC() int { return k.kc }

func (k *Kernel[T]) String() string { return k.name }

// Flops is the number of floating-point operations of an m × k by k × n
// product: 2mnk.
func Flops(m, n, k int) int64 { return 2 * int64(m) * int64(n) * int64(k) }

// ASource packs blocks of a left operand A (m × k).
type ASource[T Float] interface {
	// PackA writes rows [i, i+m) and columns [p, p+kc) of A into dst,
	// row-major with leading dimension kc.
	PackA(dst []T, i, m, p, kc int)
}

// BSource packs blocks of a right operand B (k × n).
type BSource[T Float] interface {
	// PackB writes rows [p, p+kc) and columns [j, j+n) of B into dst as
	// ⌈n/nr⌉ panels of kc × nr (package documentation), zero past column n.
	PackB(dst []T, nr, p, kc, j, n int)
}

// Epilogue finishes blocks of C once all of k has been summed into them
// (a bias and an activation, say), while they are still in cache.
type Epilogue[T Float] interface {
	// Finish is called once for every block, rows [i, i+m) and columns
	// [j, j+n) of the c given to Mul.
	Finish(c []T, ldc, i, m, j, n int)
}

// Dense is a row-major matrix, element (i, j) at Data[i·Stride + j]; with
// Trans it stands for the transpose of that matrix.
type Dense[T Float] struct {
	Data   []T
	Stride int
	Trans  bool
}

// PackA copies a block of the operand (as the left factor).
func (d Dense[T]) PackA(dst []T, i, m, p, kc int) {
	for r := range m {
		row := dst[r*kc : (r+1)*kc]
		if !d.Trans {
			off := (i+r)*d.Stride + p
			copy(row, d.Data[off:off+kc])
			continue
		}
		// Operand (i+r, p+q) is Data[(p+q)·Stride + i+r].
		off := p*d.Stride + i + r
		for q := range row {
			row[q] = d.Data[off+q*d.Stride]
		}
	}
}

// PackB packs a block of the operand (as the right factor).
func (d Dense[T]) PackB(dst []T, nr, p, kc, j, n int) {
	for s0 := 0; s0 < n; s0 += nr {
		panel := dst[(s0/nr)*kc*nr : (s0/nr+1)*kc*nr]
		cols := min(nr, n-s0)
		if !d.Trans {
			for q := range kc {
				off := (p+q)*d.Stride + j + s0
				copy(panel[q*nr:q*nr+cols], d.Data[off:off+cols])
			}
		} else {
			// Operand (p+q, j+s0+s) is Data[(j+s0+s)·Stride + p+q].
			for s := range cols {
				off := (j+s0+s)*d.Stride + p
				for q, v := range d.Data[off : off+kc] {
					panel[q*nr+s] = v
				}
			}
		}
		if cols < nr {
			for q := range kc {
				clear(panel[q*nr+cols : (q+1)*nr])
			}
		}
	}
}

// Packed is an operand packed once for the kernel that packed it
// ([Kernel.PackA], [Kernel.PackB]) and read by any number of products, from
// any number of goroutines at once.
type Packed[T Float] struct {
	left       bool // A (m × k) or B (k × n)
	rows, cols int
	kc, tile   int
	all        int // tiles across the packed operand this one is a view of
	first      int // first tile of the view
	data       []T
}

// Dims is the operand's shape.
func (p *Packed[T]) Dims() (rows, cols int) { return p.rows, p.cols }

// panels is the number of tiles across the operand (rows of A / MR,
// columns of B / NR).
func (p *Packed[T]) panels() int {
	if p.left {
		return (p.rows + p.tile - 1) / p.tile
	}
	return (p.cols + p.tile - 1) / p.tile
}

// block returns k-block [pc, pc+kc) from tile t on: for A, rows t·MR …
// (leading dimension kc, rows past m zero); for B, panels t … .
func (p *Packed[T]) block(pc, kc, t int) []T {
	off := pc*p.all*p.tile + (p.first+t)*kc*p.tile
	return p.data[off:]
}

// View sets v to rows [i, i+m) of a packed A (columns of a packed B), i a
// multiple of the kernel's MR (NR): an operand of the products of those
// rows (columns) that shares p's storage.
func (p *Packed[T]) View(v *Packed[T], i, m int) {
	ext := p.rows
	if !p.left {
		ext = p.cols
	}
	if i%p.tile != 0 || i < 0 || m < 0 || i+m > ext {
		panic(fmt.Sprintf("gemm: view of %d from %d of a packed operand of %d (tile %d)", m, i, ext, p.tile))
	}
	*v = *p
	v.first = p.first + i/p.tile
	if p.left {
		v.rows = m
	} else {
		v.cols = m
	}
}

// kkDim is the operand's extent along k.
func (p *Packed[T]) kkDim() int {
	if p.left {
		return p.cols
	}
	return p.rows
}

// PackA copies rows of a packed A; the request must follow the k blocks it
// was packed with (the driver reads a Packed in place and never calls it).
func (p *Packed[T]) PackA(dst []T, i, m, pc, kc int) {
	if !p.left || pc%p.kc != 0 || kc != min(p.kc, p.kkDim()-pc) {
		panic("gemm: a packed operand read with another blocking than it was packed with")
	}
	copy(dst[:m*kc], p.block(pc, kc, 0)[i*kc:(i+m)*kc])
}

// PackB copies panels of a packed B, like PackA.
func (p *Packed[T]) PackB(dst []T, nr, pc, kc, j, n int) {
	if p.left || nr != p.tile || j%nr != 0 || pc%p.kc != 0 || kc != min(p.kc, p.kkDim()-pc) {
		panic("gemm: a packed operand read with another blocking than it was packed with")
	}
	n = (n + nr - 1) / nr * kc * nr
	copy(dst[:n], p.block(pc, kc, j/nr)[:n])
}

// PackA packs all of A (m × k) into dst (its storage reused when large
// enough).
func (k *Kernel[T]) PackA(dst *Packed[T], a ASource[T], m, kk int) {
	k.PrepareA(dst, m, kk)
	k.PackARows(dst, a, 0, m)
}

// PrepareA sizes dst for all of an A of m × kk, to be filled by PackARows
// (several goroutines may fill disjoint rows at once).
func (k *Kernel[T]) PrepareA(dst *Packed[T], m, kk int) {
	mp := (m + k.mr - 1) / k.mr * k.mr
	*dst = Packed[T]{left: true, rows: m, cols: kk, kc: k.kc, tile: k.mr, all: mp / k.mr, data: grow(dst.data, mp*kk)}
}

// PackARows packs rows [i0, i1) of A into dst (sized by PrepareA); i0 must
// be a multiple of the kernel's row padding (RowTile), and the call that
// packs the last rows also zeroes the padding rows.
func (k *Kernel[T]) PackARows(dst *Packed[T], a ASource[T], i0, i1 int) {
	if i0%k.mr != 0 || i1 > dst.rows {
		panic(fmt.Sprintf("gemm: rows [%d, %d) of a packed A of %d rows (row tile %d)", i0, i1, dst.rows, k.mr))
	}
	m, kk := dst.rows, dst.cols
	mp := (m + k.mr - 1) / k.mr * k.mr
	for pc := 0; pc < kk; pc += k.kc {
		kc := min(k.kc, kk-pc)
		blk := dst.block(pc, kc, 0)
		a.PackA(blk[i0*kc:], i0, i1-i0, pc, kc)
		if i1 == m {
			clear(blk[m*kc : mp*kc])
		}
	}
}

// RowTile is the granularity of the rows of a packed A (a multiple of every
// micro-kernel's MR).
func (k *Kernel[T]) RowTile() int { return k.mr }

// PackB packs all of B (k × n) into dst (its storage reused when large
// enough).
func (k *Kernel[T]) PackB(dst *Packed[T], b BSource[T], kk, n int) {
	k.PrepareB(dst, kk, n)
	k.PackBCols(dst, b, 0, n)
}

// PrepareB sizes dst for all of a B of kk × n, to be filled by PackBCols
// (several goroutines may fill disjoint columns at once).
func (k *Kernel[T]) PrepareB(dst *Packed[T], kk, n int) {
	nr := k.pick(n).nr
	np := (n + nr - 1) / nr
	*dst = Packed[T]{rows: kk, cols: n, kc: k.kc, tile: nr, all: np, data: grow(dst.data, np*nr*kk)}
}

// PackBCols packs columns [j0, j1) of B into dst (sized by PrepareB); j0
// must be a multiple of dst's column tile (ColTile).
func (k *Kernel[T]) PackBCols(dst *Packed[T], b BSource[T], j0, j1 int) {
	if dst.left || j0%dst.tile != 0 || j0 < 0 || j1 > dst.cols {
		panic(fmt.Sprintf("gemm: columns [%d, %d) of a packed B of %d columns (tile %d)", j0, j1, dst.cols, dst.tile))
	}
	for pc := 0; pc < dst.rows; pc += k.kc {
		kc := min(k.kc, dst.rows-pc)
		b.PackB(dst.block(pc, kc, j0/dst.tile), dst.tile, pc, kc, j0, j1-j0)
	}
}

// ColTile is the granularity of the columns of a packed B (its panel
// width).
func (p *Packed[T]) ColTile() int { return p.tile }

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Workspace holds one goroutine's packing buffers; the zero value is ready
// and grows to the kernel's needs on first use.
type Workspace[T Float] struct {
	a, b, tile, edge []T
}

func (k *Kernel[T]) ensure(w *Workspace[T]) {
	w.a = grow(w.a, k.mc*k.kc)
	w.b = grow(w.b, k.kc*k.nc)
	t := 0
	for _, v := range k.vars {
		t = max(t, v.mr*v.nr)
	}
	w.tile = grow(w.tile, t)
	w.edge = grow(w.edge, k.mr*k.kc)
}

// direct reports whether a is a matrix the micro-kernel reads in place
// (row-major, not transposed): its data and leading dimension.
func direct[T Float](a ASource[T]) ([]T, int, bool) {
	switch d := a.(type) {
	case *Dense[T]:
		if !d.Trans {
			return d.Data, d.Stride, true
		}
	case Dense[T]:
		if !d.Trans {
			return d.Data, d.Stride, true
		}
	}
	return nil, 0, false
}

// Mul sets C = A·B (acc false) or C += A·B (acc true) for A m × kk and B
// kk × n, C row-major with leading dimension ldc; A and B may be sources
// or [Packed] operands of this kernel (a row-major [Dense] A is read in
// place). epi, if not nil, finishes every block of C. Mul runs on the
// calling goroutine with w's buffers.
func (k *Kernel[T]) Mul(w *Workspace[T], m, n, kk int, a ASource[T], b BSource[T], c []T, ldc int, acc bool, epi Epilogue[T]) {
	if m <= 0 || n <= 0 {
		return
	}
	if len(c) < (m-1)*ldc+n || ldc < n {
		panic(fmt.Sprintf("gemm: C of %d elements, leading dimension %d, too small for %d × %d", len(c), ldc, m, n))
	}
	if kk <= 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		if epi != nil {
			epi.Finish(c, ldc, 0, m, 0, n)
		}
		return
	}
	pa, _ := a.(*Packed[T])
	pb, _ := b.(*Packed[T])
	if pa != nil && (!pa.left || pa.rows != m || pa.cols != kk || pa.kc != k.kc || pa.tile != k.mr) {
		panic(fmt.Sprintf("gemm: packed A is %d × %d for tile %d, kc %d; the product needs %d × %d for %s", pa.rows, pa.cols, pa.tile, pa.kc, m, kk, k))
	}
	v := k.pick(n)
	if pb != nil {
		if v = k.variantFor(pb.tile); v == nil || pb.left || pb.rows != kk || pb.cols != n || pb.kc != k.kc {
			panic(fmt.Sprintf("gemm: packed B is %d × %d for tile %d, kc %d; the product needs %d × %d for %s", pb.rows, pb.cols, pb.tile, pb.kc, kk, n, k))
		}
	}
	nc0 := k.nc / v.nr * v.nr
	ad, lda, isDirect := direct(a)
	if isDirect && (lda < kk || len(ad) < (m-1)*lda+kk) {
		panic(fmt.Sprintf("gemm: A of %d elements, leading dimension %d, too small for %d × %d", len(ad), lda, m, kk))
	}
	k.ensure(w)
	for jc := 0; jc < n; jc += nc0 {
		nc := min(nc0, n-jc)
		for pc := 0; pc < kk; pc += k.kc {
			kc := min(k.kc, kk-pc)
			var bp []T
			if pb != nil {
				bp = pb.block(pc, kc, jc/v.nr)
			} else {
				bp = w.b
				b.PackB(bp, v.nr, pc, kc, jc, nc)
			}
			last := pc+kc == kk
			for ic := 0; ic < m; ic += k.mc {
				mc := min(k.mc, m-ic)
				var ap []T
				ld := kc
				switch {
				case isDirect:
					ap, ld = ad[ic*lda+pc:], lda
				case pa != nil:
					ap = pa.block(pc, kc, 0)[ic*kc:]
				default:
					ap = w.a
					a.PackA(ap, ic, mc, pc, kc)
					mp := (mc + k.mr - 1) / k.mr * k.mr
					clear(ap[mc*kc : mp*kc])
				}
				k.macro(w, v, ap, ld, isDirect, bp, mc, nc, kc, c[ic*ldc+jc:], ldc, acc || pc > 0)
				if last && epi != nil {
					epi.Finish(c, ldc, ic, mc, jc, nc)
				}
			}
		}
	}
}

// macro runs the micro-kernel over an mc × nc block of C from MR-row
// panels of A (leading dimension lda; rows past mc exist unless inPlace)
// and packed panels of B: B panels outside (one stays in L1), A panels
// inside.
func (k *Kernel[T]) macro(w *Workspace[T], v *variant[T], ap []T, lda int, inPlace bool, bp []T, mc, nc, kc int, c []T, ldc int, acc bool) {
	mr, nr := v.mr, v.nr
	flag := 0
	if acc {
		flag = 1
	}
	whole := mc / mr // panels whose rows are all in C
	avail := whole   // panels of A whose rows exist
	if whole*mr < mc && !inPlace {
		avail++
	}
	if avail > 0 {
		_ = ap[(avail*mr-1)*lda+kc-1]
	}
	_ = bp[((nc+nr-1)/nr)*kc*nr-1]
	tile := w.tile
	edge := w.edge
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		bpan := &bp[(jr/nr)*kc*nr]
		first := 0
		if cols == nr && whole > 0 {
			// Whole tiles straight into C, all panels in one call.
			v.micro(kc, &ap[0], lda, bpan, &c[jr], ldc, flag, whole)
			first = whole
		}
		for ir := first * mr; ir < mc; ir += mr {
			rows := min(mr, mc-ir)
			apan, ld := &ap[ir*lda], lda
			if ir >= avail*mr {
				// The last rows of an A read in place: copy them into a
				// zero-padded panel.
				for r := range mr {
					dst := edge[r*kc : (r+1)*kc]
					if r < rows {
						copy(dst, ap[(ir+r)*lda:(ir+r)*lda+kc])
					} else {
						clear(dst)
					}
				}
				apan, ld = &edge[0], kc
			}
			v.micro(kc, apan, ld, bpan, &tile[0], nr, 0, 1)
			for r := range rows {
				dst := c[(ir+r)*ldc+jr : (ir+r)*ldc+jr+cols]
				src := tile[r*nr : r*nr+cols]
				if acc {
					for s, v := range src {
						dst[s] += v
					}
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// Ref sets C = A·B (acc false) or C += A·B by the definition, summing in
// float64: the reference of the tests.
func Ref[T Float](m, n, kk int, a, b Dense[T], c []T, ldc int, acc bool) {
	at := func(d Dense[T], i, j int) float64 {
		if d.Trans {
			return float64(d.Data[j*d.Stride+i])
		}
		return float64(d.Data[i*d.Stride+j])
	}
	for i := range m {
		for j := range n {
			s := 0.0
			for q := range kk {
				s += at(a, i, q) * at(b, q, j)
			}
			if acc {
				s += float64(c[i*ldc+j])
			}
			c[i*ldc+j] = T(s)
		}
	}
}
