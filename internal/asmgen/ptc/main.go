// Command ptc generates the amd64 kernels of the one-colour 2 → 2 PTCs of
// package pfmpi/pfflow (2D, K̃ = 10 gathered features):
//
//	cd internal/asmgen && go run ./ptc -out ../../pfflow/ptc_amd64.s -stubs ../../pfflow/ptc_amd64.go
//
// (go generate in package pfflow runs it). Row r of a block has L (10
// complex, real and imaginary parts adjacent), M (2 × 10 complex at
// stride ms) and the output or its gradient G (2 complex at stride os):
//
//	forward   out_a = Σ_g M_ag L_g
//	backward  M̄_ag += G_a conj(L_g),   Ḡ_L,g = Σ_a conj(M_ag) G_a
//
// Four doubles (two complex numbers) fill a YMM register. A complex
// product z·w, z = (a, c) packed and w = (x, y), is
// fmaddsub(z, dup(x), swap(z)·dup(y)) = (a x − c y, c x + a y); a
// conjugate is an XOR with the sign of the imaginary lanes.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"pfmpi/internal/asmgen/avogen"
)

func main() {
	signs := GLOBL("ptcConjSigns", RODATA|NOPTR)
	for i := range 4 {
		v := uint64(0)
		if i%2 == 1 {
			v = 1 << 63
		}
		DATA(8*i, U64(v))
	}
	fused(signs)
	fusedBack(signs)
	pad()
	padBack()
	generate("pfflow")
}

// cmul returns u·z for u = (ur, ui) broadcast and z two complex numbers:
// fmaddsub(z, ur, swap(z)·ui) = (ur x − ui y, ur y + ui x).
func cmul(ur, ui, z reg.VecVirtual) reg.VecVirtual {
	sw, t := YMM(), YMM()
	VPERMILPD(U8(0x5), z, sw)
	VMULPD(ui, sw, t)
	VFMADDSUB231PD(z, ur, t)
	return t
}

// cmulConj returns conj(u)·z: fmsubadd(z, ur, swap(z)·ui) = (ur x + ui y,
// ur y − ui x).
func cmulConj(ur, ui, z reg.VecVirtual) reg.VecVirtual {
	sw, t := YMM(), YMM()
	VPERMILPD(U8(0x5), z, sw)
	VMULPD(ui, sw, t)
	VFMSUBADD231PD(z, ur, t)
	return t
}

// gatherL loads L of the row the pointers address: self, U_μ φ(y+μ̂) from
// the link pair at links (μ = 0, 1) and the pads at up[μ], and the
// backward-transported pads at dn[μ] (already offset to their slot).
func gatherL(self reg.Register, up, dn [2]reg.Register, links reg.Register) [5]reg.VecVirtual {
	var l [5]reg.VecVirtual
	l[0] = YMM()
	VMOVUPD(Mem{Base: self}, l[0])
	for mu := range 2 {
		ur, ui, raw := YMM(), YMM(), YMM()
		VBROADCASTSD(Mem{Base: links, Disp: 16 * mu}, ur)
		VBROADCASTSD(Mem{Base: links, Disp: 16*mu + 8}, ui)
		VMOVUPD(Mem{Base: up[mu]}, raw)
		l[1+2*mu] = cmul(ur, ui, raw)
		l[2+2*mu] = YMM()
		VMOVUPD(Mem{Base: dn[mu]}, l[2+2*mu])
	}
	return l
}

// loadRun loads the pointers to a run's pads: self, up0, up1, dn0, dn1.
func loadRun() (self reg.Register, up, dn [2]reg.Register) {
	self = Load(Param("self"), GP64())
	up[0] = Load(Param("up0"), GP64())
	up[1] = Load(Param("up1"), GP64())
	dn[0] = Load(Param("dn0"), GP64())
	dn[1] = Load(Param("dn1"), GP64())
	return self, up, dn
}

// advanceRun moves the pads' pointers one row (12 float64) and the links'
// one row (4) on.
func advanceRun(self reg.Register, up, dn [2]reg.Register, links reg.Register) {
	for _, p := range []reg.Register{self, up[0], up[1], dn[0], dn[1]} {
		ADDQ(U32(96), p)
	}
	ADDQ(U32(32), links)
}

// fused emits ptcGatherMix2AVX2: the gather of L fused with the mix, for
// rows whose pads lie 12 float64 apart (consecutive batch members of one
// site).
func fused(_ Mem) {
	TEXT("ptcGatherMix2AVX2", NOSPLIT, "func(self, up0, up1, dn0, dn1, links, m *float64, msb int, out *float64, osb, n int)")
	Pragma("noescape")
	Doc("ptcGatherMix2AVX2 sets out_a = Σ_g M_ag L_g (a < 2, g < 10, complex) for n rows, gathering L: self, up0, up1, dn0 and dn1 address the row's pads (dn already at their slots), 12 float64 apart from row to row; links 4 apart, M and out at strides msb and osb bytes.")
	self, up, dn := loadRun()
	links := Load(Param("links"), GP64())
	m := Load(Param("m"), GP64())
	out := Load(Param("out"), GP64())
	n := Load(Param("n"), GP64())
	Label("gm_loop")
	TESTQ(n, n)
	JZ(LabelRef("gm_done"))
	l := gatherL(self, up, dn, links)
	var t, u [2]reg.VecVirtual
	for k := range 5 {
		re, im := YMM(), YMM()
		VMOVDDUP(l[k], re)
		VPERMILPD(U8(0xf), l[k], im)
		for a := range 2 {
			mk, sw := YMM(), YMM()
			VMOVUPD(Mem{Base: m, Disp: 8 * (20*a + 4*k)}, mk)
			VPERMILPD(U8(0x5), mk, sw)
			if k == 0 {
				t[a], u[a] = YMM(), YMM()
				VMULPD(re, mk, t[a])
				VMULPD(im, sw, u[a])
			} else {
				VFMADD231PD(re, mk, t[a])
				VFMADD231PD(im, sw, u[a])
			}
		}
	}
	for a := range 2 {
		VADDSUBPD(u[a], t[a], t[a])
		hi := XMM()
		VEXTRACTF128(U8(1), t[a], hi)
		VADDPD(hi, t[a].AsX(), hi)
		VMOVUPD(hi, Mem{Base: out, Disp: 16 * a})
	}
	advanceRun(self, up, dn, links)
	ADDQ(avogen.Param("msb"), m)
	ADDQ(avogen.Param("osb"), out)
	DECQ(n)
	JMP(LabelRef("gm_loop"))
	Label("gm_done")
	VZEROUPPER()
	RET()
}

// fusedBack emits ptcBack2AVX2: for n rows of consecutive batch members
// of one site, the adjoint of the mix (M̄ += G conj(L), Ḡ_L = Σ_a
// conj(M_a) G_a), the links' share Ḡ_U += Ḡ_L · conj(φ(y+μ̂)), and the
// scatter of Ḡ_L to the pads' gradient: self, U_μ† Ḡ_L to y+μ̂, Ḡ_L to the
// slot of y−μ̂. The gradients lie a fixed byte distance from their data
// (gd for the pads, lgd for the links, mgd for M).
func fusedBack(signs Mem) {
	TEXT("ptcBack2AVX2", NOSPLIT, "func(self, up0, up1, dn0, dn1 *float64, gd int, links *float64, lgd int, m *float64, mgd, msb int, gout *float64, osb, n int, assign bool)")
	Pragma("noescape")
	Doc("ptcBack2AVX2 runs the backward pass of the 2 → 2 PTC on n rows of one site (pointers as for ptcGatherMix2AVX2, gradients gd, lgd and mgd bytes after their data): M̄ += G conj(L) (assign: M̄ = G conj(L)), Ḡ_L = Σ_a conj(M_a) G_a, the links' gradient and the scatter of Ḡ_L to the pads' gradient.")
	self, up, dn := loadRun()
	gd := Load(Param("gd"), GP64())
	links := Load(Param("links"), GP64())
	lgd := Load(Param("lgd"), GP64())
	m := Load(Param("m"), GP64())
	mgd := Load(Param("mgd"), GP64())
	g := Load(Param("gout"), GP64())
	n := Load(Param("n"), GP64())
	flag := Load(Param("assign"), GP8())
	TESTB(flag, flag)
	JNZ(LabelRef("fb_assign"))
	for _, assign := range []bool{false, true} {
		label := map[bool]string{false: "fb_add", true: "fb_assign"}[assign]
		Label(label)
		TESTQ(n, n)
		JZ(LabelRef("fb_done"))
		l := gatherL(self, up, dn, links)
		var gre, gim [2]reg.VecVirtual
		for a := range 2 {
			gre[a], gim[a] = YMM(), YMM()
			VBROADCASTSD(Mem{Base: g, Disp: 16 * a}, gre[a])
			VBROADCASTSD(Mem{Base: g, Disp: 16*a + 8}, gim[a])
		}
		sign := YMM()
		VMOVUPD(signs, sign)
		// M̄ += G_a conj(L_k).
		for k := range 5 {
			lc, sw := YMM(), YMM()
			VXORPD(l[k], sign, lc)
			VPERMILPD(U8(0x5), lc, sw)
			for a := range 2 {
				t := YMM()
				VMULPD(gim[a], sw, t)
				VFMADDSUB231PD(lc, gre[a], t)
				at := Mem{Base: m, Index: mgd, Scale: 1, Disp: 8 * (20*a + 4*k)}
				if !assign {
					VADDPD(at, t, t)
				}
				VMOVUPD(t, at)
			}
		}
		for k := range 5 {
			acc := YMM()
			for a := range 2 {
				mc, sw, t := YMM(), YMM(), YMM()
				VXORPD(Mem{Base: m, Disp: 8 * (20*a + 4*k)}, sign, mc)
				VPERMILPD(U8(0x5), mc, sw)
				VMULPD(gim[a], sw, t)
				VFMADDSUB231PD(mc, gre[a], t)
				if a == 0 {
					VMOVAPD(t, acc)
				} else {
					VADDPD(t, acc, acc)
				}
			}
			var dst Mem
			switch {
			case k == 0:
				dst = Mem{Base: self, Index: gd, Scale: 1}
			case k%2 == 0: // Ḡ_L of −μ̂: to the slot of y−μ̂
				dst = Mem{Base: dn[(k-1)/2], Index: gd, Scale: 1}
			default: // +μ̂
				mu := (k - 1) / 2
				ur, ui := YMM(), YMM()
				VBROADCASTSD(Mem{Base: links, Disp: 16 * mu}, ur)
				VBROADCASTSD(Mem{Base: links, Disp: 16*mu + 8}, ui)
				// Ḡ_U_μ += Σ Ḡ_L conj(φ(y+μ̂)).
				raw, pre, pim, sw, t := YMM(), YMM(), YMM(), YMM(), YMM()
				VMOVUPD(Mem{Base: up[mu]}, raw)
				VMOVDDUP(raw, pre)
				VPERMILPD(U8(0xf), raw, pim)
				VPERMILPD(U8(0x5), acc, sw)
				VMULPD(pim, sw, t)
				VFMSUBADD231PD(acc, pre, t)
				hi := XMM()
				VEXTRACTF128(U8(1), t, hi)
				VADDPD(hi, t.AsX(), hi)
				lg := Mem{Base: links, Index: lgd, Scale: 1, Disp: 16 * mu}
				VADDPD(lg, hi, hi)
				VMOVUPD(hi, lg)
				// U_μ† Ḡ_L to y+μ̂.
				acc = cmulConj(ur, ui, acc)
				dst = Mem{Base: up[mu], Index: gd, Scale: 1}
			}
			VADDPD(dst, acc, acc)
			VMOVUPD(acc, dst)
		}
		advanceRun(self, up, dn, links)
		ADDQ(avogen.Param("msb"), m)
		ADDQ(avogen.Param("osb"), g)
		DECQ(n)
		JMP(LabelRef(label))
	}
	Label("fb_done")
	VZEROUPPER()
	RET()
}

// pad emits ptcPad2AVX2: the halo buffer rows of n consecutive rows.
func pad() {
	TEXT("ptcPad2AVX2", NOSPLIT, "func(pad, phi, links *float64, n int)")
	Pragma("noescape")
	Doc("ptcPad2AVX2 writes n rows of the halo buffer (12 float64 each): φ (4), then U_μ† φ for μ = 0, 1, from φ (4 per row) and the links (4 per row).")
	pd := Load(Param("pad"), GP64())
	phi := Load(Param("phi"), GP64())
	links := Load(Param("links"), GP64())
	n := Load(Param("n"), GP64())
	Label("pad_loop")
	TESTQ(n, n)
	JZ(LabelRef("pad_done"))
	f := YMM()
	VMOVUPD(Mem{Base: phi}, f)
	VMOVUPD(f, Mem{Base: pd})
	for mu := range 2 {
		ur, ui := YMM(), YMM()
		VBROADCASTSD(Mem{Base: links, Disp: 16 * mu}, ur)
		VBROADCASTSD(Mem{Base: links, Disp: 16*mu + 8}, ui)
		VMOVUPD(cmulConj(ur, ui, f), Mem{Base: pd, Disp: 32 * (1 + mu)})
	}
	ADDQ(U32(96), pd)
	ADDQ(U32(32), phi)
	ADDQ(U32(32), links)
	DECQ(n)
	JMP(LabelRef("pad_loop"))
	Label("pad_done")
	VZEROUPPER()
	RET()
}

// padBack emits ptcPadBack2AVX2, the adjoint of pad: Ḡ_φ += Ḡ_pad,0 +
// Σ_μ U_μ Ḡ_pad,1+μ and Ḡ_U_μ += Σ φ conj(Ḡ_pad,1+μ).
func padBack() {
	TEXT("ptcPadBack2AVX2", NOSPLIT, "func(gpad, phi, gphi, links, glinks *float64, n int)")
	Pragma("noescape")
	Doc("ptcPadBack2AVX2 adds the adjoint of ptcPad2AVX2 for n rows to the gradients of φ (gphi, nil: skipped) and of the links (glinks, nil: skipped) from the halo buffer's gradient gpad.")
	gp := Load(Param("gpad"), GP64())
	phi := Load(Param("phi"), GP64())
	gphi := Load(Param("gphi"), GP64())
	links := Load(Param("links"), GP64())
	gl := Load(Param("glinks"), GP64())
	n := Load(Param("n"), GP64())
	Label("pb_loop")
	TESTQ(n, n)
	JZ(LabelRef("pb_done"))
	var gs [2]reg.VecVirtual
	for mu := range 2 {
		gs[mu] = YMM()
		VMOVUPD(Mem{Base: gp, Disp: 32 * (1 + mu)}, gs[mu])
	}
	TESTQ(gphi, gphi)
	JZ(LabelRef("pb_links"))
	acc := YMM()
	VMOVUPD(Mem{Base: gp}, acc)
	for mu := range 2 {
		ur, ui := YMM(), YMM()
		VBROADCASTSD(Mem{Base: links, Disp: 16 * mu}, ur)
		VBROADCASTSD(Mem{Base: links, Disp: 16*mu + 8}, ui)
		VADDPD(cmul(ur, ui, gs[mu]), acc, acc)
	}
	VADDPD(Mem{Base: gphi}, acc, acc)
	VMOVUPD(acc, Mem{Base: gphi})
	ADDQ(U32(32), gphi)
	Label("pb_links")
	TESTQ(gl, gl)
	JZ(LabelRef("pb_next"))
	f, fsw := YMM(), YMM()
	VMOVUPD(Mem{Base: phi}, f)
	VPERMILPD(U8(0x5), f, fsw)
	for mu := range 2 {
		// Σ φ conj(g) = Σ (fr gr + fi gi, fi gr − fr gi) =
		// fmsubadd(φ, dup(gr), swap(φ)·dup(gi)).
		gre, gim, t := YMM(), YMM(), YMM()
		VMOVDDUP(gs[mu], gre)
		VPERMILPD(U8(0xf), gs[mu], gim)
		VMULPD(gim, fsw, t)
		VFMSUBADD231PD(f, gre, t)
		hi := XMM()
		VEXTRACTF128(U8(1), t, hi)
		VADDPD(hi, t.AsX(), hi)
		at := Mem{Base: gl, Disp: 16 * mu}
		VADDPD(at, hi, hi)
		VMOVUPD(hi, at)
	}
	ADDQ(U32(32), gl)
	Label("pb_next")
	ADDQ(U32(96), gp)
	ADDQ(U32(32), phi)
	ADDQ(U32(32), links)
	DECQ(n)
	JMP(LabelRef("pb_loop"))
	Label("pb_done")
	VZEROUPPER()
	RET()
}

// generate writes the assembly and the Go declarations into package pkg.
func generate(pkg string) {
	ConstraintExpr("amd64")
	avogen.Generate(pkg)
}
