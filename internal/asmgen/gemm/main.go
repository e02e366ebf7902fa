// Command gemm generates the amd64 micro-kernels of package pfmpi/gemm:
//
//	cd internal/asmgen && go run ./gemm -out ../../gemm/kernels_amd64.s -stubs ../../gemm/kernels_amd64.go
//
// (go generate in package gemm runs it). Each kernel computes one MR × NR
// tile of C from packed panels (see the gemm package documentation):
//
//	T = Σ_{k<kc} A_panel[k·MR + i] · B_panel[k·NR + j],   C[i·ldc + j] = T (+ C when acc ≠ 0),
//
// summing over k in order with fused multiply–adds from a zero start and
// adding C only at the end, so that every element is computed the same way
// wherever its tile lies. Peak kernels run independent FMA chains on
// registers only, to measure the core's FMA throughput.
package main

import (
	"fmt"
	"os"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"pfmpi/internal/asmgen/avogen"
)

// kernel describes one micro-kernel.
type kernel struct {
	name   string
	f32    bool
	zmm    bool // AVX-512 (else AVX2)
	mr, nr int
}

func (k kernel) elem() int {
	if k.f32 {
		return 4
	}
	return 8
}

func (k kernel) lanes() int {
	w := 32
	if k.zmm {
		w = 64
	}
	return w / k.elem()
}

func (k kernel) vec(i int) reg.VecPhysical {
	if k.zmm {
		return zregs[i]
	}
	return yregs[i]
}

var (
	zregs = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9,
		reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20,
		reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
	yregs = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9,
		reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
)

// regBroadcast makes the AVX-512 kernels broadcast A into a register once
// per row instead of in each FMA (measured faster on AMD Zen 4).
var regBroadcast = os.Getenv("EMBEDDED_BROADCAST") == ""

// unroll is the number of k steps of one iteration of a micro-kernel.
var unroll = 4

func main() {
	ConstraintExpr("amd64")
	for _, k := range []kernel{
		{name: "kernF64AVX512", zmm: true, mr: 6, nr: 32},
		{name: "kernF64AVX512N", zmm: true, mr: 12, nr: 16},
		{name: "kernF64AVX2", mr: 6, nr: 8},
		{name: "kernF32AVX512", f32: true, zmm: true, mr: 6, nr: 64},
		{name: "kernF32AVX512N", f32: true, zmm: true, mr: 12, nr: 32},
		{name: "kernF32AVX512S", f32: true, zmm: true, mr: 12, nr: 16},
		{name: "kernF32AVX2", f32: true, mr: 6, nr: 16},
	} {
		micro(k)
	}
	peak("peakF64AVX512", false, true)
	peak("peakF64AVX2", false, false)
	peak("peakF32AVX512", true, true)
	peak("peakF32AVX2", true, false)
	generate("gemm")
}

// generate writes the assembly and the Go declarations into package pkg.
func generate(pkg string) {
	avogen.Generate(pkg)
}

// micro emits one micro-kernel: for each of `panels` consecutive MR-row
// panels of A (and rows of C), accumulators acc[i][v] for row i and vector v
// of the NR columns, B loaded once per k, A broadcast from MR rows of a
// row-major block (leading dimension lda elements). Row i is addressed as
// base + index·lda with bases at rows 0, 3, 6, 9 and index 0, 1, 2, 4 or 8,
// so that four pointers reach twelve rows.
func micro(k kernel) {
	typ := "float64"
	if k.f32 {
		typ = "float32"
	}
	TEXT(k.name, NOSPLIT, fmt.Sprintf("func(kc int, a *%s, lda int, b, c *%s, ldc int, acc int, panels int)", typ, typ))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes panels × %d rows × %d columns of C from consecutive %d-row panels of A and a packed panel of B (kc ≥ 1, panels ≥ 1).", k.name, k.mr, k.nr, k.mr))
	nv := k.nr / k.lanes()
	shift := map[bool]uint8{true: 2, false: 3}[k.f32]
	a := Load(Param("a"), GP64())
	lda := Load(Param("lda"), GP64())
	SHLQ(U8(shift), lda)
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(shift), ldc)
	panels := Load(Param("panels"), GP64())

	acc := func(i, v int) reg.VecPhysical { return k.vec(i*nv + v) }
	bv := func(v int) reg.VecPhysical { return k.vec(k.mr*nv + v) }
	tmp := k.vec(k.mr*nv + nv)

	Label(k.name + "_panel")
	kc := Load(Param("kc"), GP64())
	b := Load(Param("b"), GP64())
	a0 := GP64()
	MOVQ(a, a0)
	var bases []reg.Register // rows 0, 3, 6, 9
	bases = append(bases, a0)
	for base := 3; base < k.mr; base += 3 {
		r := GP64()
		LEAQ(Mem{Base: bases[len(bases)-1], Index: lda, Scale: 2}, r)
		ADDQ(lda, r)
		bases = append(bases, r)
	}
	// rowMem returns the address of element k of row i (displacement d).
	rowMem := func(i, d int) Mem {
		for bi, base := range bases {
			off := i - 3*bi
			switch off {
			case 0:
				return Mem{Base: base, Disp: d}
			case 1, 2, 4, 8:
				return Mem{Base: base, Index: lda, Scale: uint8(off), Disp: d}
			}
		}
		panic(fmt.Sprintf("row %d not addressable", i))
	}
	for i := 0; i < k.mr; i++ {
		for v := 0; v < nv; v++ {
			r := acc(i, v)
			if k.zmm {
				VPXORQ(r, r, r)
			} else if k.f32 {
				VXORPS(r, r, r)
			} else {
				VXORPD(r, r, r)
			}
		}
	}
	// step emits one k step at displacement u (in steps) from the pointers.
	step := func(u int) {
		for v := 0; v < nv; v++ {
			m := Mem{Base: b, Disp: u*k.nr*k.elem() + v*k.lanes()*k.elem()}
			if k.f32 {
				VMOVUPS(m, bv(v))
			} else {
				VMOVUPD(m, bv(v))
			}
		}
		for i := 0; i < k.mr; i++ {
			src := rowMem(i, u*k.elem())
			switch {
			case k.zmm && k.f32 && regBroadcast:
				t := k.vec(k.mr*nv + nv + i%2)
				VBROADCASTSS(src, t)
				for v := 0; v < nv; v++ {
					VFMADD231PS(bv(v), t, acc(i, v))
				}
			case k.zmm && regBroadcast:
				t := k.vec(k.mr*nv + nv + i%2)
				VBROADCASTSD(src, t)
				for v := 0; v < nv; v++ {
					VFMADD231PD(bv(v), t, acc(i, v))
				}
			case k.zmm && k.f32:
				for v := 0; v < nv; v++ {
					VFMADD231PS_BCST(src, bv(v), acc(i, v))
				}
			case k.zmm:
				for v := 0; v < nv; v++ {
					VFMADD231PD_BCST(src, bv(v), acc(i, v))
				}
			case k.f32:
				VBROADCASTSS(src, tmp)
				for v := 0; v < nv; v++ {
					VFMADD231PS(bv(v), tmp, acc(i, v))
				}
			default:
				VBROADCASTSD(src, tmp)
				for v := 0; v < nv; v++ {
					VFMADD231PD(bv(v), tmp, acc(i, v))
				}
			}
		}
	}
	advance := func(u int) {
		for _, base := range bases {
			ADDQ(U32(u*k.elem()), base)
		}
		ADDQ(U32(u*k.nr*k.elem()), b)
	}
	CMPQ(kc, U8(unroll))
	JL(LabelRef(k.name + "_tail"))
	Label(k.name + "_loop")
	for u := 0; u < unroll; u++ {
		step(u)
	}
	advance(unroll)
	SUBQ(U8(unroll), kc)
	CMPQ(kc, U8(unroll))
	JGE(LabelRef(k.name + "_loop"))
	Label(k.name + "_tail")
	TESTQ(kc, kc)
	JZ(LabelRef(k.name + "_done"))
	Label(k.name + "_one")
	step(0)
	advance(1)
	DECQ(kc)
	JNZ(LabelRef(k.name + "_one"))
	Label(k.name + "_done")

	// Store: C = T, or C += T; c moves down MR rows.
	accFlag := Load(Param("acc"), GP64())
	TESTQ(accFlag, accFlag)
	JZ(LabelRef(k.name + "_store"))
	{
		p := GP64()
		MOVQ(c, p)
		for i := 0; i < k.mr; i++ {
			for v := 0; v < nv; v++ {
				m := Mem{Base: p, Disp: v * k.lanes() * k.elem()}
				if k.f32 {
					VADDPS(m, acc(i, v), acc(i, v))
				} else {
					VADDPD(m, acc(i, v), acc(i, v))
				}
			}
			ADDQ(ldc, p)
		}
	}
	Label(k.name + "_store")
	for i := 0; i < k.mr; i++ {
		for v := 0; v < nv; v++ {
			m := Mem{Base: c, Disp: v * k.lanes() * k.elem()}
			if k.f32 {
				VMOVUPS(acc(i, v), m)
			} else {
				VMOVUPD(acc(i, v), m)
			}
		}
		ADDQ(ldc, c)
	}
	// The next panel: MR rows of A further.
	for range k.mr {
		ADDQ(lda, a)
	}
	DECQ(panels)
	JNZ(LabelRef(k.name + "_panel"))
	VZEROUPPER()
	RET()
}

// peak emits a kernel running n rounds of independent FMA chains on
// registers (no memory traffic): 24 chains with AVX-512, 12 with AVX2 —
// more than latency × throughput of any current core.
func peak(name string, f32, zmm bool) {
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(name + " runs n rounds of independent FMAs on registers (the core's peak).")
	k := kernel{f32: f32, zmm: zmm}
	chains := 12
	if zmm {
		chains = 24
	}
	n := Load(Param("n"), GP64())
	x, y := k.vec(chains), k.vec(chains+1)
	for i := 0; i < chains+2; i++ {
		if zmm {
			VPXORQ(k.vec(i), k.vec(i), k.vec(i))
		} else {
			VXORPD(k.vec(i), k.vec(i), k.vec(i))
		}
	}
	Label(name + "_loop")
	for i := 0; i < chains; i++ {
		if f32 {
			VFMADD231PS(x, y, k.vec(i))
		} else {
			VFMADD231PD(x, y, k.vec(i))
		}
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}
