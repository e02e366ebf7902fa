// Command vmath generates the amd64 kernels of package pfmpi/vmath:
//
//	cd internal/asmgen && go run ./vmath -out ../../vmath/kernels_amd64.s -stubs ../../vmath/kernels_amd64.go
//
// (go generate in package vmath runs it). The activations rest on one
// vectorised expm1 (see the vmath package documentation for the
// equations):
//
//	x = n·ln2 + r,  |r| ≤ ln2/2,   n = round(x/ln2)   (Cody–Waite: ln2 = hi + lo)
//	e^x − 1 = (2ⁿ − 1) + 2ⁿ · r·q(r),   q(r) = Σ_{j=0}^{J} r^j/(j+1)!
//
// with J = 12 for float64 (truncation below 1.2·10⁻¹⁷ relative) and J = 6
// for float32 (below 1.5·10⁻⁸), 2ⁿ assembled from its exponent bits, and
//
//	tanh x = sign(x) · m/(m + 2),  m = e^{2|x|} − 1  (|2x| clamped at 44),
//	elu x  = max(x, 0) + e^{min(x, 0)} − 1           (clamped at −50),
//	tanh′ = 1 − y²,  elu′ = min(y, 0) + 1           (from y = f(x)).
package main

import (
	"fmt"
	"math"
	"math/big"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"pfmpi/internal/asmgen/avogen"
)

// isa is one instruction set and precision.
type isa struct {
	f32, zmm bool
	suffix   string
}

func (s isa) elem() int {
	if s.f32 {
		return 4
	}
	return 8
}

func (s isa) lanes() int {
	w := 32
	if s.zmm {
		w = 64
	}
	return w / s.elem()
}

func (s isa) vreg() reg.VecVirtual {
	if s.zmm {
		return ZMM()
	}
	return YMM()
}

func main() {
	for _, s := range []isa{
		{f32: false, zmm: true, suffix: "F64AVX512"},
		{f32: false, zmm: false, suffix: "F64AVX2"},
		{f32: true, zmm: true, suffix: "F32AVX512"},
		{f32: true, zmm: false, suffix: "F32AVX2"},
	} {
		c := constants(s)
		activation(s, c, "tanh")
		activation(s, c, "elu")
		activationRows(s, c, "tanh")
		activationRows(s, c, "elu")
		gradient(s, c, "tanhGrad")
		gradient(s, c, "eluGrad")
		gradientRows(s, c, "tanhGrad")
		gradientRows(s, c, "eluGrad")
	}
	conversion("narrowAVX2", "func(dst *float32, src *float64, n int)",
		"narrowAVX2 sets dst[i] = float32(src[i]) (rounded to nearest even) for i < n, n a multiple of 4.")
	conversion("widenAVX2", "func(dst *float64, src *float32, n int)",
		"widenAVX2 sets dst[i] = float64(src[i]) for i < n, n a multiple of 4.")
	conversion("addWidenAVX2", "func(dst *float64, src *float32, n int)",
		"addWidenAVX2 adds float64(src[i]) to dst[i] for i < n, n a multiple of 4.")
	conversion("addAVX2", "func(dst *float64, src *float64, n int)",
		"addAVX2 adds src[i] to dst[i] for i < n, n a multiple of 4.")
	generate("vmath")
}

// consts holds the addresses of the constants of one precision, each
// replicated over 64 bytes so that 256- and 512-bit loads read it.
type consts struct {
	m map[string]Mem
}

var tables = map[bool]*consts{}

// ln2 is ln 2 to 40 digits.
const ln2 = "0.6931471805599453094172321214581765680755"

func constants(s isa) *consts {
	if c, ok := tables[s.f32]; ok {
		return c
	}
	c := &consts{m: map[string]Mem{}}
	prec := "F64"
	if s.f32 {
		prec = "F32"
	}
	add := func(name string, v float64) {
		g := GLOBL(fmt.Sprintf("vm%s%s", prec, name), RODATA|NOPTR)
		for i := 0; i < 64/s.elem(); i++ {
			if s.f32 {
				DATA(4*i, U32(math.Float32bits(float32(v))))
			} else {
				DATA(8*i, U64(math.Float64bits(v)))
			}
		}
		c.m[name] = g
	}
	addBits := func(name string, bits uint64) {
		g := GLOBL(fmt.Sprintf("vm%s%s", prec, name), RODATA|NOPTR)
		for i := 0; i < 64/s.elem(); i++ {
			if s.f32 {
				DATA(4*i, U32(uint32(bits)))
			} else {
				DATA(8*i, U64(bits))
			}
		}
		c.m[name] = g
	}
	// Cody–Waite split of ln 2: hi with few enough bits that n·hi is exact.
	l, _, _ := big.ParseFloat(ln2, 10, 200, big.ToNearestEven)
	hiBits := 32
	if s.f32 {
		hiBits = 12
	}
	scaled := new(big.Float).SetMantExp(l, hiBits)
	hiInt, _ := scaled.Int(nil)
	hi := new(big.Float).SetMantExp(new(big.Float).SetInt(hiInt), -hiBits)
	lo := new(big.Float).Sub(l, hi)
	hiF, _ := hi.Float64()
	loF, _ := lo.Float64()
	lnF, _ := l.Float64()
	add("Log2e", 1/lnF)
	add("Ln2hi", hiF)
	add("Ln2lo", loF)
	if s.f32 {
		add("Magic", 0x1.8p23)
		addBits("Bias", 127<<23)
	} else {
		add("Magic", 0x1.8p52)
		addBits("Bias", 1023<<52)
	}
	// q(r) coefficients 1/(j+1)!, j = 0 … J.
	J := 12
	if s.f32 {
		J = 6
	}
	for j := 0; j <= J; j++ {
		f := new(big.Float).SetPrec(200).SetInt64(1)
		for i := 2; i <= j+1; i++ {
			f.Quo(f, new(big.Float).SetInt64(int64(i)))
		}
		v, _ := f.Float64()
		add(fmt.Sprintf("Q%d", j), v)
	}
	c.m["J"] = Mem{Disp: J} // the degree, not an address
	add("One", 1)
	add("Two", 2)
	add("TanhClamp", 44)
	add("EluClamp", -50)
	add("Zero", 0)
	if s.f32 {
		addBits("Abs", 0x7fffffff)
	} else {
		addBits("Abs", 0x7fffffffffffffff)
	}
	tables[s.f32] = c
	return c
}

// op emits one packed instruction of the precision.
func (s isa) add(a, b, dst Op) {
	if s.f32 {
		VADDPS(a, b, dst)
	} else {
		VADDPD(a, b, dst)
	}
}
func (s isa) sub(a, b, dst Op) { // dst = b − a
	if s.f32 {
		VSUBPS(a, b, dst)
	} else {
		VSUBPD(a, b, dst)
	}
}
func (s isa) mul(a, b, dst Op) {
	if s.f32 {
		VMULPS(a, b, dst)
	} else {
		VMULPD(a, b, dst)
	}
}
func (s isa) div(a, b, dst Op) { // dst = b / a
	if s.f32 {
		VDIVPS(a, b, dst)
	} else {
		VDIVPD(a, b, dst)
	}
}
func (s isa) min(a, b, dst Op) { // dst = min(b, a); a NaN in a is returned
	if s.f32 {
		VMINPS(a, b, dst)
	} else {
		VMINPD(a, b, dst)
	}
}
func (s isa) max(a, b, dst Op) {
	if s.f32 {
		VMAXPS(a, b, dst)
	} else {
		VMAXPD(a, b, dst)
	}
}
func (s isa) and(a, b, dst Op) {
	switch {
	case s.zmm:
		VPANDQ(a, b, dst)
	default:
		VPAND(a, b, dst)
	}
}
func (s isa) andn(a, b, dst Op) { // dst = ¬b ∧ a
	switch {
	case s.zmm:
		VPANDNQ(a, b, dst)
	default:
		VPANDN(a, b, dst)
	}
}
func (s isa) or(a, b, dst Op) {
	switch {
	case s.zmm:
		VPORQ(a, b, dst)
	default:
		VPOR(a, b, dst)
	}
}

// fma213: dst = b·dst + a.
func (s isa) fma213(a, b, dst Op) {
	if s.f32 {
		VFMADD213PS(a, b, dst)
	} else {
		VFMADD213PD(a, b, dst)
	}
}

// fma231: dst = b·a + dst.
func (s isa) fma231(a, b, dst Op) {
	if s.f32 {
		VFMADD231PS(a, b, dst)
	} else {
		VFMADD231PD(a, b, dst)
	}
}

// fnma231: dst = −b·a + dst.
func (s isa) fnma231(a, b, dst Op) {
	if s.f32 {
		VFNMADD231PS(a, b, dst)
	} else {
		VFNMADD231PD(a, b, dst)
	}
}

func (s isa) load(m Mem, dst reg.VecVirtual) {
	if s.f32 {
		VMOVUPS(m, dst)
	} else {
		VMOVUPD(m, dst)
	}
}

func (s isa) store(src reg.VecVirtual, m Mem) {
	if s.f32 {
		VMOVUPS(src, m)
	} else {
		VMOVUPD(src, m)
	}
}

// expm1 returns e^x − 1 for the vectors xs (which it leaves unchanged),
// emitting each step for every vector in turn so that their dependency
// chains interleave.
func expm1(s isa, c *consts, xs []reg.VecVirtual) []reg.VecVirtual {
	k := c.m
	u := len(xs)
	vs := func() []reg.VecVirtual {
		v := make([]reg.VecVirtual, u)
		for i := range v {
			v[i] = s.vreg()
		}
		return v
	}
	t, nf, r, q, p, em := vs(), vs(), vs(), vs(), vs(), vs()
	for i := range xs {
		s.load(k["Magic"], t[i])
	}
	for i, x := range xs {
		s.fma231(k["Log2e"], x, t[i]) // t = x·log2e + magic: n in the low bits
	}
	for i := range xs {
		s.sub(k["Magic"], t[i], nf[i]) // nf = t − magic = n
	}
	hi, lo := s.vreg(), s.vreg()
	s.load(k["Ln2hi"], hi)
	s.load(k["Ln2lo"], lo)
	for i, x := range xs {
		if s.f32 {
			VMOVUPS(x, r[i])
		} else {
			VMOVUPD(x, r[i])
		}
	}
	for i := range xs {
		s.fnma231(hi, nf[i], r[i]) // r = x − n·hi
	}
	for i := range xs {
		s.fnma231(lo, nf[i], r[i]) // − n·lo
	}
	// q(r) by Horner.
	J := k["J"].Disp
	for i := range xs {
		s.load(k[fmt.Sprintf("Q%d", J)], q[i])
	}
	for j := J - 1; j >= 0; j-- {
		for i := range xs {
			s.fma213(k[fmt.Sprintf("Q%d", j)], r[i], q[i]) // q = r·q + Q_j
		}
	}
	for i := range xs {
		s.mul(r[i], q[i], q[i]) // q = r·q(r)
	}
	// 2ⁿ from the bits of t.
	for i := range xs {
		if s.f32 {
			VPSLLD(U8(23), t[i], p[i])
			VPADDD(k["Bias"], p[i], p[i])
		} else {
			VPSLLQ(U8(52), t[i], p[i])
			VPADDQ(k["Bias"], p[i], p[i])
		}
	}
	for i := range xs {
		s.sub(k["One"], p[i], em[i]) // 2ⁿ − 1
	}
	for i := range xs {
		s.fma231(q[i], p[i], em[i]) // + 2ⁿ·r·q
	}
	return em
}

// unroll is the number of vectors an activation kernel handles per
// iteration of its main loop.
func (s isa) unroll() int {
	if s.zmm {
		return 4
	}
	return 2
}

// activation emits name+suffix(dst, src, bias *T, n int): dst[i] =
// f(src[i] + bias[i]) (bias nil: f(src[i])) for n a multiple of the lanes.
func activation(s isa, c *consts, name string) {
	typ := "float64"
	if s.f32 {
		typ = "float32"
	}
	fn := name + s.suffix
	TEXT(fn, NOSPLIT, fmt.Sprintf("func(dst, src, bias *%s, n int)", typ))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[i] = %s(src[i] + bias[i]) (bias nil: %s(src[i])) for i < n, n a multiple of %d.", fn, name, name, s.lanes()))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	bias := Load(Param("bias"), GP64())
	n := Load(Param("n"), GP64())
	TESTQ(bias, bias) // nil: the loops without bias
	JZ(LabelRef(fmt.Sprintf("%s_bias%v_x%d", fn, false, s.unroll())))
	for _, withBias := range []bool{true, false} {
		activationLoops(s, c, name, fn, dst, src, bias, n, withBias, fn+"_done")
	}
	Label(fn + "_done")
	VZEROUPPER()
	RET()
}

// activationRows emits name+"Rows"+suffix(dst, src, bias *T, n, rows,
// ldd, lds int): for r < rows, dst[r·ldd + i] = f(src[r·lds + i] + bias[i])
// for i < n, n a multiple of the lanes: the bias and activation of a block
// of rows in one call (a call per row costs more than the row's
// arithmetic when rows are a few vectors wide).
func activationRows(s isa, c *consts, name string) {
	typ := "float64"
	if s.f32 {
		typ = "float32"
	}
	fn := name + "Rows" + s.suffix
	TEXT(fn, NOSPLIT, fmt.Sprintf("func(dst, src, bias *%s, n, rows, ldd, lds int)", typ))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[r·ldd + i] = %s(src[r·lds + i] + bias[i]) for r < rows and i < n, n a multiple of %d.", fn, name, s.lanes()))
	dst0 := Load(Param("dst"), GP64())
	src0 := Load(Param("src"), GP64())
	bias0 := Load(Param("bias"), GP64())
	rows := Load(Param("rows"), GP64())
	ldd := Load(Param("ldd"), GP64())
	lds := Load(Param("lds"), GP64())
	SHLQ(U8(shift(s.elem())), ldd)
	SHLQ(U8(shift(s.elem())), lds)
	dst, src, bias, n := GP64(), GP64(), GP64(), GP64()
	Label(fn + "_row")
	TESTQ(rows, rows)
	JZ(LabelRef(fn + "_done"))
	MOVQ(dst0, dst)
	MOVQ(src0, src)
	MOVQ(bias0, bias)
	Load(Param("n"), n)
	activationLoops(s, c, name, fn, dst, src, bias, n, true, fn+"_next")
	Label(fn + "_next")
	ADDQ(ldd, dst0)
	ADDQ(lds, src0)
	DECQ(rows)
	JMP(LabelRef(fn + "_row"))
	Label(fn + "_done")
	VZEROUPPER()
	RET()
}

// shift is log2 of an element size.
func shift(elem int) int {
	if elem == 4 {
		return 2
	}
	return 3
}

// activationLoops emits the loops of an activation kernel over n elements
// from src (plus bias when withBias) into dst, advancing the pointers and
// counting n down, and jumps to done at the end. The loops without bias
// are labelled fn_biasfalse_xU.
func activationLoops(s isa, c *consts, name, fn string, dst, src, bias, n reg.Register, withBias bool, done string) {
	vb := s.lanes() * s.elem() // bytes per vector
	for _, u := range []int{s.unroll(), 1} {
		loop := fmt.Sprintf("%s_bias%v_x%d", fn, withBias, u)
		next := fmt.Sprintf("%s_bias%v_x%d", fn, withBias, 1)
		if u == 1 {
			next = done
		}
		Label(loop)
		CMPQ(n, U32(u*s.lanes()))
		JL(LabelRef(next))
		xs := make([]reg.VecVirtual, u)
		for i := range xs {
			xs[i] = s.vreg()
			s.load(Mem{Base: src, Disp: i * vb}, xs[i])
			if withBias {
				s.add(Mem{Base: bias, Disp: i * vb}, xs[i], xs[i])
			}
		}
		var ys []reg.VecVirtual
		switch name {
		case "tanh":
			as := make([]reg.VecVirtual, u)
			clamp := s.vreg()
			s.load(c.m["TanhClamp"], clamp)
			for i, x := range xs {
				as[i] = s.vreg()
				s.and(c.m["Abs"], x, as[i]) // |x|
				s.add(as[i], as[i], as[i])  // 2|x|
				s.min(as[i], clamp, as[i])  // min(44, 2|x|), NaN kept
			}
			ms := expm1(s, c, as)
			for _, m := range ms {
				den := s.vreg()
				s.add(c.m["Two"], m, den)
				s.div(den, m, m) // m/(m+2)
			}
			abs := s.vreg()
			s.load(c.m["Abs"], abs)
			for i, m := range ms {
				sign := s.vreg()
				s.andn(xs[i], abs, sign) // the sign bit of x
				s.or(sign, m, m)
			}
			ys = ms
		case "elu":
			zero, clamp := s.vreg(), s.vreg()
			s.load(c.m["Zero"], zero)
			s.load(c.m["EluClamp"], clamp)
			zs := make([]reg.VecVirtual, u)
			for i, x := range xs {
				zs[i] = s.vreg()
				s.min(x, zero, zs[i])      // min(0, x), NaN kept
				s.max(zs[i], clamp, zs[i]) // max(−50, ·)
			}
			ms := expm1(s, c, zs)
			for i, m := range ms {
				p := s.vreg()
				s.max(xs[i], zero, p)
				s.add(p, m, m)
			}
			ys = ms
		}
		for i, y := range ys {
			s.store(y, Mem{Base: dst, Disp: i * vb})
		}
		ADDQ(U32(u*vb), src)
		ADDQ(U32(u*vb), dst)
		if withBias {
			ADDQ(U32(u*vb), bias)
		}
		SUBQ(U32(u*s.lanes()), n)
		JMP(LabelRef(loop))
	}
}

// gradient emits name+suffix(grad, y *T, n int): grad[i] ·= f′ given y =
// f(x).
func gradient(s isa, c *consts, name string) {
	typ := "float64"
	if s.f32 {
		typ = "float32"
	}
	fn := name + s.suffix
	TEXT(fn, NOSPLIT, fmt.Sprintf("func(grad, y *%s, n int)", typ))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s multiplies grad[i] by the derivative of the activation at y[i] = f(x) for i < n, n a multiple of %d.", fn, s.lanes()))
	g := Load(Param("grad"), GP64())
	y := Load(Param("y"), GP64())
	n := Load(Param("n"), GP64())
	TESTQ(n, n)
	JZ(LabelRef(fn + "_done"))
	Label(fn + "_loop")
	gv, yv := s.vreg(), s.vreg()
	s.load(Mem{Base: g}, gv)
	s.load(Mem{Base: y}, yv)
	derivative(s, c, name, gv, yv)
	s.store(gv, Mem{Base: g})
	ADDQ(U8(s.lanes()*s.elem()), g)
	ADDQ(U8(s.lanes()*s.elem()), y)
	SUBQ(U8(s.lanes()), n)
	JNZ(LabelRef(fn + "_loop"))
	Label(fn + "_done")
	VZEROUPPER()
	RET()
}

// derivative emits gv ·= f′ given yv = f(x) for the derivative kernel
// name (yv is overwritten).
func derivative(s isa, c *consts, name string, gv, yv reg.VecVirtual) {
	switch name {
	case "tanhGrad": // g − (g·y)·y
		t := s.vreg()
		s.mul(yv, gv, t)
		s.fnma231(yv, t, gv)
	case "eluGrad": // g·(min(y, 0) + 1)
		zero := s.vreg()
		s.load(c.m["Zero"], zero)
		s.min(yv, zero, yv)
		s.add(c.m["One"], yv, yv)
		s.mul(yv, gv, gv)
	}
}

// gradientRows emits name+"Rows"+suffix(dst, grad, y *T, n, rows, ldd,
// lds int): dst[r·ldd + i] = grad[r·lds + i]·f′ given y[r·lds + i] = f(x),
// for r < rows and i < n, n a multiple of the lanes: the copy of a block of
// gradient rows into a strided matrix fused with the derivative.
func gradientRows(s isa, c *consts, name string) {
	typ := "float64"
	if s.f32 {
		typ = "float32"
	}
	fn := name + "Rows" + s.suffix
	TEXT(fn, NOSPLIT, fmt.Sprintf("func(dst, grad, y *%s, n, rows, ldd, lds int)", typ))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[r·ldd + i] = grad[r·lds + i] times the derivative of the activation at y[r·lds + i] = f(x) for r < rows and i < n, n a multiple of %d.", fn, s.lanes()))
	dst0 := Load(Param("dst"), GP64())
	g0 := Load(Param("grad"), GP64())
	y0 := Load(Param("y"), GP64())
	rows := Load(Param("rows"), GP64())
	ldd := Load(Param("ldd"), GP64())
	lds := Load(Param("lds"), GP64())
	SHLQ(U8(shift(s.elem())), ldd)
	SHLQ(U8(shift(s.elem())), lds)
	dst, g, y, n := GP64(), GP64(), GP64(), GP64()
	Label(fn + "_row")
	TESTQ(rows, rows)
	JZ(LabelRef(fn + "_done"))
	MOVQ(dst0, dst)
	MOVQ(g0, g)
	MOVQ(y0, y)
	Load(Param("n"), n)
	TESTQ(n, n)
	JZ(LabelRef(fn + "_next"))
	Label(fn + "_loop")
	gv, yv := s.vreg(), s.vreg()
	s.load(Mem{Base: g}, gv)
	s.load(Mem{Base: y}, yv)
	derivative(s, c, name, gv, yv)
	s.store(gv, Mem{Base: dst})
	ADDQ(U8(s.lanes()*s.elem()), dst)
	ADDQ(U8(s.lanes()*s.elem()), g)
	ADDQ(U8(s.lanes()*s.elem()), y)
	SUBQ(U8(s.lanes()), n)
	JNZ(LabelRef(fn + "_loop"))
	Label(fn + "_next")
	ADDQ(ldd, dst0)
	ADDQ(lds, g0)
	ADDQ(lds, y0)
	DECQ(rows)
	JMP(LabelRef(fn + "_row"))
	Label(fn + "_done")
	VZEROUPPER()
	RET()
}

// conversion emits one of the float64 ↔ float32 conversions, four values
// per YMM register, eight per iteration while there are.
func conversion(name, sig, doc string) {
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(doc)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	narrow := strings.HasPrefix(name, "narrow")
	add := strings.HasPrefix(name, "add")
	same := name == "addAVX2" // float64 to float64
	// one converts four values at offset i (in values).
	one := func(i int) {
		if narrow {
			x := XMM()
			VCVTPD2PSY(Mem{Base: src, Disp: 8 * i}, x)
			VMOVUPS(x, Mem{Base: dst, Disp: 4 * i})
			return
		}
		y := YMM()
		if same {
			VMOVUPD(Mem{Base: src, Disp: 8 * i}, y)
		} else {
			VCVTPS2PD(Mem{Base: src, Disp: 4 * i}, y)
		}
		if add {
			VADDPD(Mem{Base: dst, Disp: 8 * i}, y, y)
		}
		VMOVUPD(y, Mem{Base: dst, Disp: 8 * i})
	}
	step := func(k int) {
		se, de := 4, 8 // bytes per value of src and dst
		switch {
		case narrow:
			se, de = 8, 4
		case same:
			se = 8
		}
		ADDQ(U32(k*se), src)
		ADDQ(U32(k*de), dst)
		SUBQ(U32(k), n)
	}
	Label(name + "_x8")
	CMPQ(n, U8(8))
	JL(LabelRef(name + "_x4"))
	one(0)
	one(4)
	step(8)
	JMP(LabelRef(name + "_x8"))
	Label(name + "_x4")
	CMPQ(n, U8(4))
	JL(LabelRef(name + "_done"))
	one(0)
	step(4)
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// generate writes the assembly and the Go declarations into package pkg.
func generate(pkg string) {
	ConstraintExpr("amd64")
	avogen.Generate(pkg)
}
