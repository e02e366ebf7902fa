//go:build goexperiment.simd && amd64

package dslash

import (
	"simd/archsimd"
	"unsafe"
)

// The AVX2+FMA kernel for 4D SU(3), built with GOEXPERIMENT=simd (Go's
// experimental simd/archsimd package). A 256-bit register holds one colour of
// both half-spinor components, [h0_c, h1_c] as (re, im, re, im), so every link
// multiplication serves both at once; the spinor accumulator lives in six
// registers for the whole site. Complex products use broadcast real and
// imaginary parts: U·h = (Σ Re U·h) ∓± (Σ Im U·swap(h)) by AddSub.

type f4 = archsimd.Float64x4

// simdKernels is true when the CPU runs the AVX2+FMA kernels.
var simdKernels = archsimd.X86.AVX2() && archsimd.X86.FMA()

func ld2(p *complex128) archsimd.Float64x2 {
	return archsimd.LoadFloat64x2((*[2]float64)(unsafe.Pointer(p)))
}

func st2(p *complex128, v archsimd.Float64x2) { v.Store((*[2]float64)(unsafe.Pointer(p))) }

// pair returns [a, b].
func pair(a, b *complex128) f4 {
	var z f4
	return z.SetLo(ld2(a)).SetHi(ld2(b))
}

func swapPairs(x f4) f4  { return x.SelectFromPairGrouped(1, 0, x) }
func swapHalves(x f4) f4 { return x.Select128FromPair(1, 0, x) }

func vec(a, b, c, d float64) f4 { return archsimd.LoadFloat64x4(&[4]float64{a, b, c, d}) }

func bc(x float64) f4 { return archsimd.BroadcastFloat64x4(x) }

// parts returns [Re z ×4] and [Im z ×4] from vector loads only (scalar float
// loads would be spilled with legacy SSE moves, whose mixing with 256-bit AVX
// code costs a pipeline transition on every use).
func parts(z *complex128) (re, im f4) {
	v := ld2(z)
	return v.Broadcast1To4(), v.SelectFromPair(1, 0, v).Broadcast1To4()
}

// mv4 returns U h for the three colours of both half spinors.
func mv4(u *[9]complex128, h0, h1, h2 f4) (r0, r1, r2 f4) {
	s0, s1, s2 := swapPairs(h0), swapPairs(h1), swapPairs(h2)
	re00, im00 := parts(&u[0])
	re01, im01 := parts(&u[1])
	re02, im02 := parts(&u[2])
	r0 = re00.Mul(h0)
	r0 = re01.MulAdd(h1, r0)
	r0 = re02.MulAdd(h2, r0)
	b0 := im00.Mul(s0)
	b0 = im01.MulAdd(s1, b0)
	b0 = im02.MulAdd(s2, b0)
	re10, im10 := parts(&u[3])
	re11, im11 := parts(&u[4])
	re12, im12 := parts(&u[5])
	r1 = re10.Mul(h0)
	r1 = re11.MulAdd(h1, r1)
	r1 = re12.MulAdd(h2, r1)
	b1 := im10.Mul(s0)
	b1 = im11.MulAdd(s1, b1)
	b1 = im12.MulAdd(s2, b1)
	re20, im20 := parts(&u[6])
	re21, im21 := parts(&u[7])
	re22, im22 := parts(&u[8])
	r2 = re20.Mul(h0)
	r2 = re21.MulAdd(h1, r2)
	r2 = re22.MulAdd(h2, r2)
	b2 := im20.Mul(s0)
	b2 = im21.MulAdd(s1, b2)
	b2 = im22.MulAdd(s2, b2)
	return r0.AddSub(b0), r1.AddSub(b1), r2.AddSub(b2)
}

// amv4 returns U† h: U transposed, and Im U negated (AddSub of −B).
func amv4(u *[9]complex128, h0, h1, h2 f4) (r0, r1, r2 f4) {
	s0, s1, s2 := swapPairs(h0), swapPairs(h1), swapPairs(h2)
	re00, im00 := parts(&u[0])
	re01, im01 := parts(&u[3])
	re02, im02 := parts(&u[6])
	r0 = re00.Mul(h0)
	r0 = re01.MulAdd(h1, r0)
	r0 = re02.MulAdd(h2, r0)
	b0 := im00.Mul(s0)
	b0 = im01.MulAdd(s1, b0)
	b0 = im02.MulAdd(s2, b0)
	re10, im10 := parts(&u[1])
	re11, im11 := parts(&u[4])
	re12, im12 := parts(&u[7])
	r1 = re10.Mul(h0)
	r1 = re11.MulAdd(h1, r1)
	r1 = re12.MulAdd(h2, r1)
	b1 := im10.Mul(s0)
	b1 = im11.MulAdd(s1, b1)
	b1 = im12.MulAdd(s2, b1)
	re20, im20 := parts(&u[2])
	re21, im21 := parts(&u[5])
	re22, im22 := parts(&u[8])
	r2 = re20.Mul(h0)
	r2 = re21.MulAdd(h1, r2)
	r2 = re22.MulAdd(h2, r2)
	b2 := im20.Mul(s0)
	b2 = im21.MulAdd(s1, b2)
	b2 = im22.MulAdd(s2, b2)
	var zero f4
	return r0.AddSub(zero.Sub(b0)), r1.AddSub(zero.Sub(b1)), r2.AddSub(zero.Sub(b2))
}

// hop4D3SIMD is hop for 4D SU(3) (sF: sign of the forward projector). The
// projector table is the one of hop4D3D in kernels_gen.go.
func (w *Wilson) hop4D3SIMD(out []complex128, outLo int, sites []int32, in []complex128, inLo int, sF float64, x []complex128, kappa float64) {
	links := w.u.Data().Data()
	hh := w.ex.halfHalo
	v := w.v
	k := bc(-kappa)
	// Projection h = ψ_up + C∘Y, Y = [ψ_a, ψ_b] (pair-swapped for imaginary
	// coefficients); reconstruction lower += C'∘R' with R' = R, half- and/or
	// pair-swapped.
	pa := [4]int{2, 3, 3, 2}
	pb := [4]int{3, 2, 2, 3}
	imaginary := [4]bool{false, true, false, true}
	var pc, rc [4][2]f4
	for dir, s := range []float64{sF, -sF} {
		pc[0][dir], rc[0][dir] = vec(s, s, s, s), vec(s, s, s, s)
		pc[1][dir], rc[1][dir] = vec(s, -s, s, -s), vec(-s, s, -s, s)
		pc[2][dir], rc[2][dir] = vec(-s, -s, s, s), vec(s, s, -s, -s)
		pc[3][dir], rc[3][dir] = vec(s, -s, -s, s), vec(-s, s, s, -s)
	}
	for _, ys := range sites {
		y := int(ys)
		var u0, u1, u2, l0, l1, l2 f4
		for mu := 0; mu < 4; mu++ {
			uy := (*[9]complex128)(links[36*y+9*mu : 36*y+9*mu+9])
			for dir := 0; dir < 2; dir++ {
				n := int(w.up[mu][y])
				if dir == 1 {
					n = int(w.dn[mu][y])
				}
				var h0, h1, h2 f4
				if n < v {
					p := (*[12]complex128)(in[12*(n-inLo) : 12*(n-inLo)+12])
					a, b := 3*pa[mu], 3*pb[mu]
					y0, y1, y2 := pair(&p[a], &p[b]), pair(&p[a+1], &p[b+1]), pair(&p[a+2], &p[b+2])
					if imaginary[mu] {
						y0, y1, y2 = swapPairs(y0), swapPairs(y1), swapPairs(y2)
					}
					c := pc[mu][dir]
					h0 = y0.MulAdd(c, pair(&p[0], &p[3]))
					h1 = y1.MulAdd(c, pair(&p[1], &p[4]))
					h2 = y2.MulAdd(c, pair(&p[2], &p[5]))
					if dir == 0 {
						h0, h1, h2 = mv4(uy, h0, h1, h2)
					} else {
						h0, h1, h2 = amv4((*[9]complex128)(links[36*n+9*mu:36*n+9*mu+9]), h0, h1, h2)
					}
				} else {
					c := (*[6]complex128)(hh[6*(n-v) : 6*(n-v)+6])
					h0, h1, h2 = pair(&c[0], &c[3]), pair(&c[1], &c[4]), pair(&c[2], &c[5])
					if dir == 0 {
						h0, h1, h2 = mv4(uy, h0, h1, h2)
					}
				}
				u0, u1, u2 = u0.Add(h0), u1.Add(h1), u2.Add(h2)
				if mu == 1 || mu == 2 {
					h0, h1, h2 = swapHalves(h0), swapHalves(h1), swapHalves(h2)
				}
				if imaginary[mu] {
					h0, h1, h2 = swapPairs(h0), swapPairs(h1), swapPairs(h2)
				}
				c := rc[mu][dir]
				l0, l1, l2 = h0.MulAdd(c, l0), h1.MulAdd(c, l1), h2.MulAdd(c, l2)
			}
		}
		o := (*[12]complex128)(out[12*(y-outLo) : 12*(y-outLo)+12])
		if x != nil {
			xy := (*[12]complex128)(x[12*(y-outLo) : 12*(y-outLo)+12])
			u0, u1, u2 = u0.MulAdd(k, pair(&xy[0], &xy[3])), u1.MulAdd(k, pair(&xy[1], &xy[4])), u2.MulAdd(k, pair(&xy[2], &xy[5]))
			l0, l1, l2 = l0.MulAdd(k, pair(&xy[6], &xy[9])), l1.MulAdd(k, pair(&xy[7], &xy[10])), l2.MulAdd(k, pair(&xy[8], &xy[11]))
		} else {
			u0, u1, u2, l0, l1, l2 = u0.Mul(k), u1.Mul(k), u2.Mul(k), l0.Mul(k), l1.Mul(k), l2.Mul(k)
		}
		st2(&o[0], u0.GetLo())
		st2(&o[3], u0.GetHi())
		st2(&o[1], u1.GetLo())
		st2(&o[4], u1.GetHi())
		st2(&o[2], u2.GetLo())
		st2(&o[5], u2.GetHi())
		st2(&o[6], l0.GetLo())
		st2(&o[9], l0.GetHi())
		st2(&o[7], l1.GetLo())
		st2(&o[10], l1.GetHi())
		st2(&o[8], l2.GetLo())
		st2(&o[11], l2.GetHi())
	}
}
