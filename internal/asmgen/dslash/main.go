// Command dslash generates the amd64 hop kernels of package pfmpi/dslash
// (the Wilson hopping term for 2D U(1), 2D SU(3) and 4D SU(3), of D and of
// D†), in an AVX2+FMA and an AVX-512 (VL, 256-bit registers with embedded
// broadcasts) flavour:
//
//	cd internal/asmgen && go run ./dslash -out ../../dslash/hop_amd64.s -stubs ../../dslash/hop_amd64.go
//
// (go generate in package dslash runs it). Each kernel computes, for the
// output sites y of a list,
//
//	out(y) = x(y) − κ Σ_μ [(1 + s_F γ_μ) U_μ(y) ψ(y+μ̂) + (1 + s_B γ_μ) U_μ†(y−μ̂) ψ(y−μ̂)]
//
// (x nil: without x(y)), with (s_F, s_B) = (−1, +1) for D and (+1, −1) for
// D†. A neighbour below V is read from ψ and projected onto the half spinor
// h = ψ_up + s A_μ ψ_dn; a neighbour at V or above is a halo cell holding h
// already (for backward hops also multiplied by U†), as dslash's exchange
// packs it. The γ matrices are dslash's (gamma.go): γ_μ = [[0, A_μ], [A_μ†, 0]].
//
// Registers: in 2D one complex number per XMM register; in 4D a YMM register
// holds one colour of both half-spinor components, [h_0c, h_1c], so that
// each link product serves both. A complex matrix–vector product
// r_a = Σ_b U_ab h_b accumulates A_a = Σ_b Re U_ab · h_b and
// B_a = Σ_b Im U_ab · h_b and returns addsub(A_a, swap(B_a)) =
// (Re U h − Im U Im h, …); for U† the B sum is negated.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"pfmpi/internal/asmgen/avogen"
)

// monomial is row i of A_μ: entry phase code[i] in column col[i]; codes
// 0: +1, 1: −1, 2: +i, 3: −i (as dslash/gamma.go).
type monomial struct{ col, code [2]int }

var basis = map[int][]monomial{
	2: {{col: [2]int{0}, code: [2]int{0}}, {col: [2]int{0}, code: [2]int{3}}},
	4: {
		{col: [2]int{0, 1}, code: [2]int{0, 0}}, // 1
		{col: [2]int{1, 0}, code: [2]int{3, 3}}, // −iσ_x
		{col: [2]int{1, 0}, code: [2]int{1, 0}}, // −iσ_y
		{col: [2]int{0, 1}, code: [2]int{3, 2}}, // −iσ_z
	},
}

func neg(code int) int  { return code ^ 1 }
func conj(code int) int { return [4]int{0, 1, 3, 2}[code] }

// times returns the code of s·phase for s = ±1.
func times(s, code int) int {
	if s < 0 {
		return neg(code)
	}
	return code
}

// kernel is one generated function.
type kernel struct {
	nd, nc int
	dag    bool
	avx512 bool
	name   string
	// derived
	half, n, hn int // Ns/2, values per site, per half spinor
	lanes       int // complex numbers per vector register: 1 (2D) or 2 (4D)
	prefix      string
	// loop-invariant registers
	v, links, in, halo reg.GPVirtual
	outLo, outBase     reg.GPVirtual // outLo·(bytes per site), out less that
	xBase              Mem
	kap                reg.VecVirtual // −κ, kept in a register where there is room (2D U(1))
}

// negKappa broadcasts −κ into r.
func (k *kernel) negKappa(r reg.VecVirtual) {
	if k.lanes == 1 {
		VMOVDDUP(avogen.Param("kappa"), r)
	} else {
		VBROADCASTSD(avogen.Param("kappa"), r)
	}
	VXORPD(mask(0b1111), r, r)
}

func main() {
	masks = GLOBL("hopSignMasks", RODATA|NOPTR)
	for i, m := range maskPatterns {
		for lane := range 4 {
			v := uint64(0)
			if m&(1<<lane) != 0 {
				v = 1 << 63
			}
			DATA(32*i+8*lane, U64(v))
		}
	}
	for _, avx512 := range []bool{false, true} {
		for _, k := range []struct{ nd, nc int }{{2, 1}, {2, 3}, {4, 3}} {
			for _, dag := range []bool{false, true} {
				gen(k.nd, k.nc, dag, avx512)
				genPack(k.nd, k.nc, dag, avx512)
			}
		}
	}
	generate("dslash")
}

// maskPatterns are the sign masks the kernels use, bit l set: lane l (a
// float64) negated.
var maskPatterns = []int{
	0b0011, 0b1100, 0b1111, // complex 0, complex 1, both negated
	0b0101, 0b1010, // real parts, imaginary parts of both
	0b1001, 0b0110, // real of 0 and imaginary of 1; imaginary of 0 and real of 1
	0b0001, 0b0010, // real part, imaginary part (2D, one complex)
}

var masks Mem

func mask(pattern int) Mem {
	for i, m := range maskPatterns {
		if m == pattern {
			return masks.Offset(32 * i)
		}
	}
	panic(fmt.Sprintf("no mask %04b", pattern))
}

// newKernel returns the kernel kind (hop, pack) of nd, nc, D or D†
// (dag), in the AVX2 or AVX-512 flavour, named kind·Nd·D·Nc·op·flavour.
func newKernel(kind string, nd, nc int, dag, avx512 bool) *kernel {
	k := &kernel{nd: nd, nc: nc, dag: dag, avx512: avx512, half: nd / 2, n: nd * nc, hn: nd / 2 * nc, lanes: 1}
	if nd == 4 {
		k.lanes = 2
	}
	op, flavour := "D", "AVX2"
	if dag {
		op = "Ddag"
	}
	if avx512 {
		flavour = "AVX512"
	}
	k.name = fmt.Sprintf("%s%dD%d%s%s", kind, nd, nc, op, flavour)
	k.prefix = k.name + "_"
	return k
}

func gen(nd, nc int, dag, avx512 bool) {
	k := newKernel("hop", nd, nc, dag, avx512)
	TEXT(k.name, NOSPLIT, "func(out *complex128, outLo int, sites *int32, nsites int, in *complex128, inLo int, links, halo *complex128, nbr *int32, v int, x *complex128, kappa float64, stream bool, alpha float64, update bool) (norm float64)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes out(y) = x(y) − κ H ψ(y) (x nil: −κ H ψ(y); update: out(y) −= α·that instead; stream: with non-temporal stores) and returns Σ |out(y)|² of %s for %dD %s at the nsites output sites of sites, with the neighbour table nbr (2·%d int32 per site, forward and backward per direction), ψ = in from site inLo, out from site outLo, and the projected halo half spinors at halo (cells from v).", k.name, map[bool]string{false: "D", true: "D†"}[dag], nd, map[int]string{1: "U(1)", 3: "SU(3)"}[nc], nd))
	k.body()
}

// genPack emits the packing of projected half spinors for the halo
// (dslash's startHalo): for each entry (site int32 at 0, μ int8 at 4, fwd
// bool at 5, boundary phase float64 at 8; 16 bytes), ε·P ψ(site) for a
// forward entry or ε·U_μ†(site)·P ψ(site) for a backward one, written one
// half spinor after the other to dst.
func genPack(nd, nc int, dag, avx512 bool) {
	k := newKernel("pack", nd, nc, dag, avx512)
	TEXT(k.name, NOSPLIT, "func(dst *complex128, entries *int32, n int, in *complex128, inLo int, links *complex128)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s writes the n projected half spinors of the halo entries (16 bytes each: site int32, μ int8, fwd bool, phase float64) of %s for %dD %s to dst, from ψ = in (from site inLo) and the links.", k.name, map[bool]string{false: "D", true: "D†"}[dag], nd, map[int]string{1: "U(1)", 3: "SU(3)"}[nc]))
	dst := Load(Param("dst"), GP64())
	ent := Load(Param("entries"), GP64())
	count := Load(Param("n"), GP64())
	k.in, k.links = GP64(), GP64()
	t := GP64()
	MOVQ(avogen.Param("in"), k.in)
	MOVQ(avogen.Param("inLo"), t)
	IMUL3Q(U32(16*k.n), t, t)
	SUBQ(t, k.in)
	MOVQ(avogen.Param("links"), k.links)
	sF, sB := -1, 1
	if dag {
		sF, sB = 1, -1
	}
	Label(k.prefix + "loop")
	TESTQ(count, count)
	JZ(LabelRef(k.prefix + "done"))
	idx := GP64()
	MOVBQZX(Mem{Base: ent, Disp: 4}, idx)
	SHLQ(U8(1), idx)
	fw := GP64()
	MOVBQZX(Mem{Base: ent, Disp: 5}, fw)
	ADDQ(fw, idx) // 2μ + fwd
	for mu := 0; mu < nd; mu++ {
		for fwd := 0; fwd < 2; fwd++ {
			CMPQ(idx, U8(2*mu+fwd))
			JE(LabelRef(k.label("entry", mu, fwd)))
		}
	}
	JMP(LabelRef(k.prefix + "next"))
	for mu := 0; mu < nd; mu++ {
		for fwd := 0; fwd < 2; fwd++ {
			Label(k.label("entry", mu, fwd))
			site := GP64()
			MOVLQSX(Mem{Base: ent}, site)
			off := GP64()
			MOVQ(site, off)
			scale(off, 16*k.n)
			h := make([]reg.VecVirtual, nc)
			for c := range h {
				h[c] = k.vec()
			}
			sign := sB
			if fwd == 1 {
				sign = sF
			}
			k.project(Mem{Base: k.in, Index: off, Scale: 1}, mu, sign, h)
			g := h
			if fwd == 0 {
				u := GP64()
				IMUL3Q(U32(16*nd*nc*nc), site, u)
				ADDQ(k.links, u)
				g = make([]reg.VecVirtual, nc)
				for c := range g {
					g[c] = k.vec()
				}
				k.matvec(Mem{Base: u, Disp: 16 * mu * nc * nc}, h, true, g, nil)
			}
			ph := k.vec()
			if k.lanes == 1 {
				VMOVDDUP(Mem{Base: ent, Disp: 8}, ph)
			} else {
				VBROADCASTSD(Mem{Base: ent, Disp: 8}, ph)
			}
			for c := range g {
				VMULPD(ph, g[c], g[c])
				offs := k.halfOffsets(c)
				if len(offs) == 1 {
					VMOVUPD(g[c], Mem{Base: dst, Disp: offs[0]})
				} else {
					VMOVUPD(g[c].AsX(), Mem{Base: dst, Disp: offs[0]})
					VEXTRACTF128(U8(1), g[c], Mem{Base: dst, Disp: offs[1]})
				}
			}
			JMP(LabelRef(k.prefix + "next"))
		}
	}
	Label(k.prefix + "next")
	ADDQ(U8(16), ent)
	ADDQ(U32(16*k.hn), dst)
	DECQ(count)
	JMP(LabelRef(k.prefix + "loop"))
	Label(k.prefix + "done")
	VZEROUPPER()
	RET()
}

// vec returns a new vector register of the kernel's width.
func (k *kernel) vec() reg.VecVirtual {
	if k.lanes == 1 {
		return XMM()
	}
	return YMM()
}

func (k *kernel) label(s string, mu, dir int) string {
	return fmt.Sprintf("%s%s_%d_%d", k.prefix, s, mu, dir)
}

func (k *kernel) body() {
	sites := Load(Param("sites"), GP64())
	count := Load(Param("nsites"), GP64())
	// Loop invariants: v, links, in − inLo·(bytes per site) and halo −
	// v·(bytes per half spinor), so that a neighbour's address is one
	// multiplication and one base+index operand.
	k.v, k.links, k.in, k.halo = GP64(), GP64(), GP64(), GP64()
	MOVQ(avogen.Param("v"), k.v)
	MOVQ(avogen.Param("links"), k.links)
	t := GP64()
	MOVQ(avogen.Param("in"), k.in)
	MOVQ(avogen.Param("inLo"), t)
	IMUL3Q(U32(16*k.n), t, t)
	SUBQ(t, k.in)
	MOVQ(avogen.Param("halo"), k.halo)
	IMUL3Q(U32(16*k.hn), k.v, t)
	SUBQ(t, k.halo)
	// out − outLo·(bytes per site); x is offset per site (nil stays nil).
	k.outLo, k.outBase, k.xBase = GP64(), GP64(), Mem{}
	MOVQ(avogen.Param("outLo"), k.outLo)
	scale(k.outLo, 16*k.n)
	MOVQ(avogen.Param("out"), k.outBase)
	SUBQ(k.outLo, k.outBase)
	k.xBase = avogen.Param("x")
	if k.lanes == 1 && k.nc == 1 {
		k.kap = k.vec()
		k.negKappa(k.kap)
	}
	// Σ |out(y)|², the norm CG needs, accumulated on the way out.
	nrm := k.vec()
	VXORPD(nrm, nrm, nrm)
	Label(k.prefix + "loop")
	TESTQ(count, count)
	JZ(LabelRef(k.prefix + "done"))
	y := GP64()
	MOVLQSX(Mem{Base: sites}, y)
	nacc := 2 * k.nc * k.half / k.lanes
	acc := make([]reg.VecVirtual, nacc)
	for i := range acc {
		acc[i] = k.vec()
		VXORPD(acc[i], acc[i], acc[i])
	}
	sF, sB := -1, 1
	if k.dag {
		sF, sB = 1, -1
	}
	row := GP64()
	IMUL3Q(U32(8*k.nd), y, row)
	ADDQ(avogen.Param("nbr"), row)
	uy := GP64()
	IMUL3Q(U32(16*k.nd*k.nc*k.nc), y, uy)
	ADDQ(k.links, uy)
	for mu := 0; mu < k.nd; mu++ {
		k.forward(acc, row, uy, mu, sF)
		k.backward(acc, row, mu, sB)
	}
	// out = x + (−κ) acc, at (y − outLo)·(bytes per site) from out and x
	o := GP64()
	MOVLQSX(Mem{Base: sites}, o)
	scale(o, 16*k.n)
	kap := k.kap
	if kap == nil {
		kap = k.vec()
		k.negKappa(kap)
	}
	xp := GP64()
	MOVQ(k.xBase, xp)
	TESTQ(xp, xp)
	JNZ(LabelRef(k.prefix + "x"))
	for i := range acc {
		VMULPD(kap, acc[i], acc[i])
	}
	JMP(LabelRef(k.prefix + "store"))
	Label(k.prefix + "x")
	SUBQ(k.outLo, xp)
	ADDQ(o, xp)
	for i := range acc {
		offs := k.vecOffsets(i)
		if len(offs) == 1 {
			VFMADD213PD(Mem{Base: xp}.Offset(offs[0]), kap, acc[i])
		} else {
			VFMADD213PD(k.loadAt(Mem{Base: xp}, offs, nil), kap, acc[i])
		}
	}
	Label(k.prefix + "store")
	ADDQ(k.outBase, o)
	// update: out(y) −= α·(the above)
	up := GP8()
	MOVB(avogen.Param("update"), up)
	TESTB(up, up)
	JZ(LabelRef(k.prefix + "norm"))
	alpha := k.vec()
	if k.lanes == 1 {
		VMOVDDUP(avogen.Param("alpha"), alpha)
	} else {
		VBROADCASTSD(avogen.Param("alpha"), alpha)
	}
	for i := range acc {
		r := k.loadAt(Mem{Base: o}, k.vecOffsets(i), nil)
		VFNMADD231PD(alpha, acc[i], r)
		VMOVAPD(r, acc[i])
	}
	Label(k.prefix + "norm")
	for i := range acc {
		VFMADD231PD(acc[i], acc[i], nrm)
	}
	st := GP8()
	MOVB(avogen.Param("stream"), st)
	TESTB(st, st)
	JNZ(LabelRef(k.prefix + "stream"))
	for i := range acc {
		k.storeVec(acc[i], Mem{Base: o}, i, false)
	}
	JMP(LabelRef(k.prefix + "next"))
	Label(k.prefix + "stream")
	for i := range acc {
		k.storeVec(acc[i], Mem{Base: o}, i, true)
	}
	Label(k.prefix + "next")
	ADDQ(U8(4), sites)
	DECQ(count)
	JMP(LabelRef(k.prefix + "loop"))
	Label(k.prefix + "done")
	SFENCE() // order the streaming stores before whatever reads out next
	sum := XMM()
	if k.lanes == 1 {
		VMOVAPD(nrm, sum)
	} else {
		VEXTRACTF128(U8(1), nrm, sum)
		VADDPD(nrm.AsX(), sum, sum)
	}
	sw := XMM()
	VPERMILPD(U8(1), sum, sw)
	VADDSD(sw, sum, sum)
	Store(sum, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// Vector i of a site's accumulator holds: 2D, value i (spin i/nc, colour
// i%nc); 4D, upper (i < 3) [ψ_0c, ψ_1c] or lower [ψ_2c, ψ_3c], c = i%3.
// vecOffsets returns the byte offsets of its complex numbers in a spinor.
func (k *kernel) vecOffsets(i int) []int {
	if k.lanes == 1 {
		return []int{16 * i}
	}
	c, lower := i%3, i/3
	return []int{16 * ((2*lower+0)*3 + c), 16 * ((2*lower+1)*3 + c)}
}

// loadAt loads the complex numbers at the offsets (from base) into one
// register (r, or a new one if r is nil).
func (k *kernel) loadAt(base Mem, offs []int, r reg.VecVirtual) reg.VecVirtual {
	if r == nil {
		r = k.vec()
	}
	if len(offs) == 1 {
		VMOVUPD(base.Offset(offs[0]), r)
		return r
	}
	// A broadcast first, so that r is written whole (avo's liveness would
	// count a write to its lower half as a partial definition).
	VBROADCASTF128(base.Offset(offs[0]), r)
	VINSERTF128(U8(1), base.Offset(offs[1]), r, r)
	return r
}

func (k *kernel) addVec(base Mem, i int, acc reg.VecVirtual) {
	offs := k.vecOffsets(i)
	if len(offs) == 1 {
		VADDPD(base.Offset(offs[0]), acc, acc)
		return
	}
	t := k.loadAt(base, offs, nil)
	VADDPD(t, acc, acc)
}

// storeVec stores accumulator register i of a site at base; stream: with
// non-temporal stores, which bypass the caches and skip the read for
// ownership (out is then written at the cost of its bytes once; base must
// be 16-byte aligned, as every complex128 of a large allocation is).
func (k *kernel) storeVec(acc reg.VecVirtual, base Mem, i int, stream bool) {
	offs := k.vecOffsets(i)
	if !stream {
		if len(offs) == 1 {
			VMOVUPD(acc, base.Offset(offs[0]))
			return
		}
		VMOVUPD(acc.AsX(), base.Offset(offs[0]))
		VEXTRACTF128(U8(1), acc, base.Offset(offs[1]))
		return
	}
	VMOVNTPD(acc.AsX(), base.Offset(offs[0]))
	if len(offs) == 2 {
		hi := XMM()
		VEXTRACTF128(U8(1), acc, hi)
		VMOVNTPD(hi, base.Offset(offs[1]))
	}
}

// project sets h = ψ_up + s A_μ ψ_dn of the spinor at base, one register
// per colour.
func (k *kernel) project(base Mem, mu, s int, h []reg.VecVirtual) {
	a := basis[k.nd][mu]
	for c := range k.nc {
		var up, dn []int
		var codes []int
		for i := 0; i < k.half; i++ {
			up = append(up, 16*(i*k.nc+c))
			dn = append(dn, 16*((k.half+a.col[i])*k.nc+c))
			codes = append(codes, times(s, a.code[i]))
		}
		p := k.loadAt(base, up, nil)
		if len(dn) == 1 && codes[0] < 2 {
			// real phase: add or subtract straight from memory
			if codes[0] == 0 {
				VADDPD(base.Offset(dn[0]), p, h[c])
			} else {
				VSUBPD(base.Offset(dn[0]), p, h[c])
			}
			continue
		}
		q := k.loadAt(base, dn, nil)
		k.addPhased(p, q, codes, h[c])
	}
}

// addPhased sets dst = a + φ∘z, φ the phase codes of z's complex numbers
// (all real or all imaginary).
func (k *kernel) addPhased(a, z reg.VecVirtual, codes []int, dst reg.VecVirtual) {
	imag := codes[0] >= 2
	for _, c := range codes {
		if (c >= 2) != imag {
			panic("mixed real and imaginary phases in one register")
		}
	}
	if !imag {
		m := 0
		for l, c := range codes {
			if c == 1 {
				m |= 0b11 << (2 * l)
			}
		}
		switch {
		case m == 0:
			VADDPD(z, a, dst)
		case m == (1<<(2*len(codes)))-1:
			VSUBPD(z, a, dst)
		default:
			t := k.vec()
			VXORPD(mask(m), z, t)
			VADDPD(t, a, dst)
		}
		return
	}
	// i·(re, im) = (−im, re): swap, then negate the real lane (+i) or the
	// imaginary lane (−i).
	sw := k.vec()
	VPERMILPD(U8(0b0101), z, sw)
	allPlusI := true
	m := 0
	for l, c := range codes {
		if c == 2 {
			m |= 0b01 << (2 * l)
		} else {
			m |= 0b10 << (2 * l)
			allPlusI = false
		}
	}
	if allPlusI {
		// a + i z = (a_re − z_im, a_im + z_re) = addsub(a, swap(z))
		VADDSUBPD(sw, a, dst)
		return
	}
	VXORPD(mask(m), sw, sw)
	VADDPD(sw, a, dst)
}

// matvec computes U h (dag: U† h) for the link at base into dst (nil: new
// registers) and passes each colour's register to emit (if not nil) as soon
// as it is ready.
func (k *kernel) matvec(u Mem, h []reg.VecVirtual, dag bool, dst []reg.VecVirtual, emit func(a int, r reg.VecVirtual)) {
	nc := k.nc
	if nc == 1 {
		// u h = fmaddsub(h, Re u, swap(Im u · h)); conj(u) h = fmsubadd(…)
		t := k.vec()
		if dst != nil {
			t = dst[0]
		}
		k.fma(u.Offset(8), h[0], t, true, false)
		VPERMILPD(U8(0b0101), t, t)
		switch {
		case k.avx512 && dag:
			VFMSUBADD231PD_BCST(u, h[0], t)
		case k.avx512:
			VFMADDSUB231PD_BCST(u, h[0], t)
		default:
			b := k.vec()
			VMOVDDUP(u, b)
			if dag {
				VFMSUBADD231PD(b, h[0], t)
			} else {
				VFMADDSUB231PD(b, h[0], t)
			}
		}
		if emit != nil {
			emit(0, t)
		}
		return
	}
	for a := range nc {
		re, im := k.vec(), k.vec()
		for b := range nc {
			e := a*nc + b
			if dag {
				e = b*nc + a
			}
			k.fma(u.Offset(16*e), h[b], re, b == 0, false)
			k.fma(u.Offset(16*e+8), h[b], im, b == 0, dag)
		}
		sw := k.vec()
		VPERMILPD(U8(0b0101), im, sw)
		var r reg.VecVirtual
		if dst != nil {
			r = dst[a]
		} else {
			r = k.vec()
		}
		VADDSUBPD(sw, re, r)
		if emit != nil {
			emit(a, r)
		}
	}
}

// fma sets acc (first) or adds to it (neg: subtracts) the broadcast float64
// at m times h.
func (k *kernel) fma(m Mem, h, acc reg.VecVirtual, first, neg bool) {
	if k.avx512 {
		if first {
			VMULPD_BCST(m, h, acc)
			if neg {
				VXORPD(mask(0b1111), acc, acc)
			}
			return
		}
		if neg {
			VFNMADD231PD_BCST(m, h, acc)
		} else {
			VFMADD231PD_BCST(m, h, acc)
		}
		return
	}
	b := k.vec()
	if k.lanes == 1 {
		VMOVDDUP(m, b)
	} else {
		VBROADCASTSD(m, b)
	}
	switch {
	case first && neg:
		VMULPD(b, h, acc)
		VXORPD(mask(0b1111), acc, acc)
	case first:
		VMULPD(b, h, acc)
	case neg:
		VFNMADD231PD(b, h, acc)
	default:
		VFMADD231PD(b, h, acc)
	}
}

// reconstruct adds colour c of (1 + sγ_μ)ψ = (g, s A_μ† g) to the accumulator.
func (k *kernel) reconstruct(acc []reg.VecVirtual, c int, gc reg.VecVirtual, mu, s int) {
	a := basis[k.nd][mu]
	g := map[int]reg.VecVirtual{c: gc}
	{
		VADDPD(g[c], acc[c], acc[c])
		// lower component j = col_i receives s conj(phase_i) g_i
		codes := make([]int, k.half)
		swapped := false
		for i := 0; i < k.half; i++ {
			codes[a.col[i]] = times(s, conj(a.code[i]))
			swapped = swapped || a.col[i] != i
		}
		z := g[c]
		if swapped {
			z = k.vec()
			VPERM2F128(U8(0x01), g[c], g[c], z)
		}
		lo := acc[k.nc+c]
		k.addPhased(lo, z, codes, lo)
	}
}

func (k *kernel) forward(acc []reg.VecVirtual, row, uy reg.GPVirtual, mu, s int) {
	f := GP64()
	MOVLQSX(Mem{Base: row, Disp: 4 * (2 * mu)}, f)
	h := make([]reg.VecVirtual, k.nc)
	for c := range h {
		h[c] = k.vec()
	}
	CMPQ(f, k.v)
	JAE(LabelRef(k.label("fhalo", mu, 0)))
	// ψ(f) projected
	scale(f, 16*k.n)
	k.project(Mem{Base: k.in, Index: f, Scale: 1}, mu, s, h)
	JMP(LabelRef(k.label("fmul", mu, 0)))
	Label(k.label("fhalo", mu, 0))
	scale(f, 16*k.hn)
	for c := range h {
		k.loadAt(Mem{Base: k.halo, Index: f, Scale: 1}, k.halfOffsets(c), h[c])
	}
	Label(k.label("fmul", mu, 0))
	k.matvec(Mem{Base: uy, Disp: 16 * mu * k.nc * k.nc}, h, false, nil, func(c int, r reg.VecVirtual) {
		k.reconstruct(acc, c, r, mu, s)
	})
}

func (k *kernel) backward(acc []reg.VecVirtual, row reg.GPVirtual, mu, s int) {
	b := GP64()
	MOVLQSX(Mem{Base: row, Disp: 4 * (2*mu + 1)}, b)
	g := make([]reg.VecVirtual, k.nc)
	for c := range g {
		g[c] = k.vec()
	}
	CMPQ(b, k.v)
	JAE(LabelRef(k.label("bhalo", mu, 1)))
	// (b) the neighbour's links; for 2D U(1) at the spinor's offset
	var ub Mem
	if 16*k.nd*k.nc*k.nc == 16*k.n {
		scale(b, 16*k.n)
		ub = Mem{Base: k.links, Index: b, Scale: 1}
	} else {
		u := GP64()
		IMUL3Q(U32(16*k.nd*k.nc*k.nc), b, u)
		ADDQ(k.links, u)
		scale(b, 16*k.n)
		ub = Mem{Base: u}
	}
	h := make([]reg.VecVirtual, k.nc)
	for c := range h {
		h[c] = k.vec()
	}
	k.project(Mem{Base: k.in, Index: b, Scale: 1}, mu, s, h)
	k.matvec(ub.Offset(16*mu*k.nc*k.nc), h, true, g, nil)
	JMP(LabelRef(k.label("brec", mu, 1)))
	Label(k.label("bhalo", mu, 1))
	scale(b, 16*k.hn)
	for c := range g {
		k.loadAt(Mem{Base: k.halo, Index: b, Scale: 1}, k.halfOffsets(c), g[c])
	}
	Label(k.label("brec", mu, 1))
	for c := range g {
		k.reconstruct(acc, c, g[c], mu, s)
	}
}

// scale sets r *= m, by a shift where m is a power of two.
func scale(r reg.GPVirtual, m int) {
	if m&(m-1) == 0 {
		sh := 0
		for 1<<sh < m {
			sh++
		}
		SHLQ(U8(sh), r)
		return
	}
	IMUL3Q(U32(m), r, r)
}

// halfOffsets are the byte offsets of colour c's register in a half spinor.
func (k *kernel) halfOffsets(c int) []int {
	if k.lanes == 1 {
		return []int{16 * c}
	}
	return []int{16 * c, 16 * (k.nc + c)}
}

// generate writes the assembly and the Go declarations into package pkg.
func generate(pkg string) {
	ConstraintExpr("amd64")
	avogen.Generate(pkg)
}
