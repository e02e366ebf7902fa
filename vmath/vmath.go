package vmath

//go:generate sh -c "cd ../internal/asmgen && go run ./vmath -out ../../vmath/kernels_amd64.s -stubs ../../vmath/kernels_amd64.go"

import (
	"fmt"
	"math"

	"pfmpi/gemm"
)

// The operations of the kernels.
const (
	opTanh = 0
	opELU  = 1
)

// Funcs are the kernels of one family and precision. A Funcs holds no
// mutable state and serves every goroutine.
type Funcs[T gemm.Float] struct {
	arch    gemm.Arch
	lanes   int
	kernels int // the assembly kernels (noKernels: math.Tanh, math.Expm1)
}

// New returns the kernels of family a for T, or an error if this CPU does
// not run them.
func New[T gemm.Float](a gemm.Arch) (*Funcs[T], error) {
	if !gemm.Available(a) {
		return nil, fmt.Errorf("vmath: this CPU does not run the %s kernels", a)
	}
	f := &Funcs[T]{arch: a}
	if a == gemm.Generic {
		return f, nil
	}
	asmFuncs(f)
	return f, nil
}

// MustNew is New for a family known to be available.
func MustNew[T gemm.Float](a gemm.Arch) *Funcs[T] {
	f, err := New[T](a)
	if err != nil {
		panic(err)
	}
	return f
}

// Arch is the family of the kernels.
func (f *Funcs[T]) Arch() gemm.Arch { return f.arch }

func checkBias[T gemm.Float](op string, dst, src, bias []T) {
	if len(dst) < len(src) || (bias != nil && len(bias) < len(src)) {
		panic(fmt.Sprintf("vmath: %s of %d elements into %d with a bias of %d", op, len(src), len(dst), len(bias)))
	}
}

// apply runs an activation kernel on whole vectors and on the tail through
// a padded vector.
func (f *Funcs[T]) apply(op int, dst, src, bias []T) {
	n := len(src)
	body := n - n%f.lanes
	if body > 0 {
		var b *T
		if bias != nil {
			b = &bias[0]
		}
		f.act(op, &dst[0], &src[0], b, body)
	}
	if body == n {
		return
	}
	var x, y, bb [16]T
	rest := n - body
	copy(x[:], src[body:])
	var b *T
	if bias != nil {
		copy(bb[:], bias[body:n])
		b = &bb[0]
	}
	f.act(op, &y[0], &x[0], b, f.lanes)
	copy(dst[body:n], y[:rest])
}

func (f *Funcs[T]) applyGrad(op int, g, y []T) {
	n := len(g)
	body := n - n%f.lanes
	if body > 0 {
		f.grad(op, &g[0], &y[0], body)
	}
	if body == n {
		return
	}
	var gg, yy [16]T
	copy(gg[:], g[body:])
	copy(yy[:], y[body:n])
	f.grad(op, &gg[0], &yy[0], f.lanes)
	copy(g[body:], gg[:n-body])
}

// Tanh sets dst[i] = tanh(src[i] + bias[i]) for i < len(src) (bias nil:
// tanh(src[i])); dst may be src.
func (f *Funcs[T]) Tanh(dst, src, bias []T) {
	checkBias("Tanh", dst, src, bias)
	if f.kernels == noKernels {
		for i, x := range src {
			if bias != nil {
				x += bias[i]
			}
			dst[i] = T(math.Tanh(float64(x)))
		}
		return
	}
	f.apply(opTanh, dst, src, bias)
}

// ELU sets dst[i] = elu(src[i] + bias[i]) (bias nil: elu(src[i])), elu x
// = x for x > 0 and eˣ − 1 otherwise; dst may be src.
func (f *Funcs[T]) ELU(dst, src, bias []T) {
	checkBias("ELU", dst, src, bias)
	if f.kernels == noKernels {
		for i, x := range src {
			if bias != nil {
				x += bias[i]
			}
			if x > 0 {
				dst[i] = x
			} else {
				dst[i] = T(math.Expm1(float64(x)))
			}
		}
		return
	}
	f.apply(opELU, dst, src, bias)
}

// TanhRows sets dst[r·ldd + i] = tanh(src[r·lds + i] + bias[i]) for
// r < rows and i < len(bias): [Funcs.Tanh] on a block of rows with a
// common bias, in one call for the whole block where the rows are whole
// vectors wide (a call per row costs more than the arithmetic of a row a
// few vectors wide). The rows of dst and src must not overlap unless
// they are the same.
func (f *Funcs[T]) TanhRows(dst []T, ldd int, src []T, lds int, bias []T, rows int) {
	f.rows(opTanh, dst, ldd, src, lds, bias, rows)
}

// ELURows is [Funcs.ELU] on a block of rows, as [Funcs.TanhRows].
func (f *Funcs[T]) ELURows(dst []T, ldd int, src []T, lds int, bias []T, rows int) {
	f.rows(opELU, dst, ldd, src, lds, bias, rows)
}

func (f *Funcs[T]) rows(op int, dst []T, ldd int, src []T, lds int, bias []T, rows int) {
	n := len(bias)
	if rows <= 0 || n == 0 {
		return
	}
	if ldd < n || lds < n || len(dst) < (rows-1)*ldd+n || len(src) < (rows-1)*lds+n {
		panic(fmt.Sprintf("vmath: %d rows of %d elements from %d (stride %d) into %d (stride %d)", rows, n, len(src), lds, len(dst), ldd))
	}
	one := f.Tanh
	if op == opELU {
		one = f.ELU
	}
	body := 0
	if f.kernels != noKernels {
		body = n - n%f.lanes
	}
	if body > 0 {
		f.actRows(op, &dst[0], &src[0], &bias[0], body, rows, ldd, lds)
	}
	if body == n {
		return
	}
	for r := range rows {
		one(dst[r*ldd+body:r*ldd+n], src[r*lds+body:r*lds+n], bias[body:])
	}
}

// TanhGradRows sets dst[r·ldd + i] = g[r·lds + i]·(1 − y[r·lds + i]²)
// for r < rows and i < n: [Funcs.TanhGrad] on a block of rows, fused with
// their copy into a strided matrix (one call for the block where the rows
// are whole vectors wide). g and y share the stride lds; dst must not
// overlap them.
func (f *Funcs[T]) TanhGradRows(dst []T, ldd int, g, y []T, lds, n, rows int) {
	f.gradRows(opTanh, dst, ldd, g, y, lds, n, rows)
}

// ELUGradRows is [Funcs.ELUGrad] on a block of rows, as
// [Funcs.TanhGradRows].
func (f *Funcs[T]) ELUGradRows(dst []T, ldd int, g, y []T, lds, n, rows int) {
	f.gradRows(opELU, dst, ldd, g, y, lds, n, rows)
}

func (f *Funcs[T]) gradRows(op int, dst []T, ldd int, g, y []T, lds, n, rows int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if ldd < n || lds < n || len(dst) < (rows-1)*ldd+n || len(g) < (rows-1)*lds+n || len(y) < (rows-1)*lds+n {
		panic(fmt.Sprintf("vmath: %d gradient rows of %d elements (%d, %d, stride %d) into %d (stride %d)", rows, n, len(g), len(y), lds, len(dst), ldd))
	}
	one := f.TanhGrad
	if op == opELU {
		one = f.ELUGrad
	}
	body := 0
	if f.kernels != noKernels {
		body = n - n%f.lanes
	}
	if body > 0 {
		f.gradRowsAsm(op, &dst[0], &g[0], &y[0], body, rows, ldd, lds)
	}
	if body == n {
		return
	}
	for r := range rows {
		d := dst[r*ldd+body : r*ldd+n]
		copy(d, g[r*lds+body:r*lds+n])
		one(d, y[r*lds+body:r*lds+n])
	}
}

// TanhGrad multiplies g[i] by 1 − y[i]², the derivative of tanh at the x
// with y = tanh x.
func (f *Funcs[T]) TanhGrad(g, y []T) {
	if len(y) < len(g) {
		panic("vmath: TanhGrad with fewer values than gradients")
	}
	if f.kernels == noKernels {
		for i, v := range y[:len(g)] {
			g[i] *= 1 - v*v
		}
		return
	}
	f.applyGrad(opTanh, g, y)
}

// ELUGrad multiplies g[i] by min(y[i], 0) + 1, the derivative of elu at
// the x with y = elu x.
func (f *Funcs[T]) ELUGrad(g, y []T) {
	if len(y) < len(g) {
		panic("vmath: ELUGrad with fewer values than gradients")
	}
	if f.kernels == noKernels {
		for i, v := range y[:len(g)] {
			g[i] *= min(v, 0) + 1
		}
		return
	}
	f.applyGrad(opELU, g, y)
}
