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
	"flag"
	"fmt"
	"os"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
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
	mix(signs)
	mixBack(signs)
	generate("pfflow")
}

// mix emits ptcMix2AVX2(l, m *float64, ms int, out *float64, os, n int).
func mix(_ Mem) {
	TEXT("ptcMix2AVX2", NOSPLIT, "func(l, m *float64, ms int, out *float64, os, n int)")
	Pragma("noescape")
	Doc("ptcMix2AVX2 sets out_a = Σ_g M_ag L_g (a < 2, g < 10, complex) for n rows: L at stride 20, M at stride ms, out at stride os (float64 elements).")
	l := Load(Param("l"), GP64())
	m := Load(Param("m"), GP64())
	ms := Load(Param("ms"), GP64())
	out := Load(Param("out"), GP64())
	os := Load(Param("os"), GP64())
	n := Load(Param("n"), GP64())
	SHLQ(U8(3), ms)
	SHLQ(U8(3), os)
	Label("mix_loop")
	TESTQ(n, n)
	JZ(LabelRef("mix_done"))
	var re, im [5]reg.VecVirtual
	for k := range 5 {
		x := YMM()
		VMOVUPD(Mem{Base: l, Disp: 32 * k}, x)
		re[k], im[k] = YMM(), YMM()
		VMOVDDUP(x, re[k])
		VPERMILPD(U8(0xf), x, im[k])
	}
	for a := range 2 {
		t, u := YMM(), YMM()
		for k := range 5 {
			mk, sw := YMM(), YMM()
			VMOVUPD(Mem{Base: m, Disp: 8 * (20*a + 4*k)}, mk)
			VPERMILPD(U8(0x5), mk, sw)
			if k == 0 {
				VMULPD(re[k], mk, t)
				VMULPD(im[k], sw, u)
			} else {
				VFMADD231PD(re[k], mk, t)
				VFMADD231PD(im[k], sw, u)
			}
		}
		VADDSUBPD(u, t, t) // (Σ a x − c y, Σ c x + a y) over two lanes
		hi := XMM()
		VEXTRACTF128(U8(1), t, hi)
		VADDPD(hi, t.AsX(), hi)
		VMOVUPD(hi, Mem{Base: out, Disp: 16 * a})
	}
	ADDQ(U32(160), l)
	ADDQ(ms, m)
	ADDQ(os, out)
	DECQ(n)
	JMP(LabelRef("mix_loop"))
	Label("mix_done")
	VZEROUPPER()
	RET()
}

// mixBack emits ptcMixBack2AVX2(l, m, mg *float64, ms int, g *float64, os
// int, gl *float64, n int); mg nil skips M̄.
func mixBack(signs Mem) {
	TEXT("ptcMixBack2AVX2", NOSPLIT, "func(l, m, mg *float64, ms int, gout *float64, os int, gl *float64, n int)")
	Pragma("noescape")
	Doc("ptcMixBack2AVX2 adds G_a conj(L_g) to M̄_ag (mg nil: skipped) and sets Ḡ_L,g = Σ_a conj(M_ag) G_a for n rows: L and Ḡ_L at stride 20, M and M̄ at stride ms, G at stride os.")
	l := Load(Param("l"), GP64())
	m := Load(Param("m"), GP64())
	mg := Load(Param("mg"), GP64())
	ms := Load(Param("ms"), GP64())
	g := Load(Param("gout"), GP64())
	os := Load(Param("os"), GP64())
	gl := Load(Param("gl"), GP64())
	n := Load(Param("n"), GP64())
	SHLQ(U8(3), ms)
	SHLQ(U8(3), os)
	sign := YMM()
	VMOVUPD(signs, sign)
	for _, withGrad := range []bool{true, false} {
		loop := fmt.Sprintf("back_loop_%v", withGrad)
		if withGrad {
			TESTQ(mg, mg)
			JZ(LabelRef(fmt.Sprintf("back_loop_%v", false)))
		}
		Label(loop)
		TESTQ(n, n)
		JZ(LabelRef("back_done"))
		var gre, gim [2]reg.VecVirtual
		for a := range 2 {
			gre[a], gim[a] = YMM(), YMM()
			VBROADCASTSD(Mem{Base: g, Disp: 16 * a}, gre[a])
			VBROADCASTSD(Mem{Base: g, Disp: 16*a + 8}, gim[a])
		}
		if withGrad {
			for k := range 5 {
				lc, sw := YMM(), YMM()
				VXORPD(Mem{Base: l, Disp: 32 * k}, sign, lc) // conj(L)
				VPERMILPD(U8(0x5), lc, sw)
				for a := range 2 {
					t := YMM()
					VMULPD(gim[a], sw, t)
					VFMADDSUB231PD(lc, gre[a], t) // G_a conj(L_g)
					at := Mem{Base: mg, Disp: 8 * (20*a + 4*k)}
					VADDPD(at, t, t)
					VMOVUPD(t, at)
				}
			}
		}
		for k := range 5 {
			acc := YMM()
			for a := range 2 {
				mc, sw, t := YMM(), YMM(), YMM()
				VXORPD(Mem{Base: m, Disp: 8 * (20*a + 4*k)}, sign, mc) // conj(M)
				VPERMILPD(U8(0x5), mc, sw)
				VMULPD(gim[a], sw, t)
				VFMADDSUB231PD(mc, gre[a], t) // conj(M_ag) G_a
				if a == 0 {
					VMOVAPD(t, acc)
				} else {
					VADDPD(t, acc, acc)
				}
			}
			VMOVUPD(acc, Mem{Base: gl, Disp: 32 * k})
		}
		ADDQ(U32(160), l)
		ADDQ(U32(160), gl)
		ADDQ(ms, m)
		if withGrad {
			ADDQ(ms, mg)
		}
		ADDQ(os, g)
		DECQ(n)
		JMP(LabelRef(loop))
	}
	Label("back_done")
	VZEROUPPER()
	RET()
}

// generate writes the assembly and the Go declarations, the latter in
// package pkg (avo names the generator's own package otherwise).
func generate(pkg string) {
	ConstraintExpr("amd64")
	flag.Parse()
	Generate()
	stubs := flag.Lookup("stubs").Value.String()
	if stubs == "" {
		return
	}
	b, err := os.ReadFile(stubs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := strings.Replace(string(b), "\npackage asmgen\n", "\npackage "+pkg+"\n", 1)
	if err := os.WriteFile(stubs, []byte(s), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
