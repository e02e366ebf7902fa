package vmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"pfmpi/gemm"
)

// inputs covers zero, tiny, moderate and huge arguments of both signs, the
// ends of the reduction interval and of the clamps, infinities and NaN.
func inputs(r *rand.Rand, n int) []float64 {
	xs := []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 1e-17, -1e-9, 1e-5, 0.3465, -0.3466,
		0.5, -0.625, 1, -1, 2.5, 10, -10, 21.9, 22.1, -22.1, 30, -49.9, -50.1, -700, 700, 1e300,
		math.Inf(1), math.Inf(-1), math.NaN()}
	for len(xs) < n {
		xs = append(xs, r.NormFloat64()*math.Pow(10, float64(r.IntN(6)-3)))
	}
	return xs
}

func elu(x float64) float64 {
	if x > 0 {
		return x
	}
	return math.Expm1(x)
}

func ulp[T gemm.Float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 0x1p-24
	}
	return 0x1p-53
}

func close(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol*math.Abs(want) || math.Abs(got-want) < 1e-300
}

func testFuncs[T gemm.Float](t *testing.T, a gemm.Arch) {
	f, err := New[T](a)
	if err != nil {
		t.Skip(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 8, 17, 33, 200} {
		xs := inputs(r, n)[:n]
		src := make([]T, n)
		bias := make([]T, n)
		for i, x := range xs {
			src[i] = T(x)
			bias[i] = T(r.NormFloat64() * 0.1)
		}
		for _, withBias := range []bool{false, true} {
			var b []T
			if withBias {
				b = bias
			}
			for _, act := range []string{"tanh", "elu"} {
				dst := make([]T, n+1)
				dst[n] = 42
				ref := math.Tanh
				if act == "tanh" {
					f.Tanh(dst[:n], src, b)
				} else {
					f.ELU(dst[:n], src, b)
					ref = elu
				}
				if dst[n] != 42 {
					t.Fatalf("%s %s wrote past the end", a, act)
				}
				for i := range n {
					x := src[i]
					if withBias {
						x += b[i] // in T, as the kernels add
					}
					want := ref(float64(x))
					if _, f32 := any(x).(float32); f32 {
						want = float64(float32(want))
					}
					if !close(float64(dst[i]), want, 8*ulp[T]()) {
						t.Fatalf("%s %s(%g) = %g, want %g", a, act, float64(x), float64(dst[i]), want)
					}
					if act == "tanh" && x == 0 && math.Signbit(float64(x)) != math.Signbit(float64(dst[i])) {
						t.Fatalf("%s tanh(%g) = %g: sign of zero lost", a, float64(x), float64(dst[i]))
					}
				}
				// Derivatives from the values.
				g := make([]T, n)
				for i := range g {
					g[i] = T(r.NormFloat64())
				}
				want := append([]T(nil), g...)
				if act == "tanh" {
					f.TanhGrad(g, dst[:n])
				} else {
					f.ELUGrad(g, dst[:n])
				}
				for i := range n {
					y := float64(dst[i])
					d := 1 - y*y
					if act == "elu" {
						d = min(y, 0) + 1
					}
					w := float64(want[i]) * d
					if !close(float64(g[i]), w, 8*ulp[T]()/max(1e-300, math.Min(1, math.Abs(d)))) && !(math.IsNaN(y) && math.IsNaN(float64(g[i]))) {
						t.Fatalf("%s %s′ at y = %g: %g, want %g", a, act, y, float64(g[i]), w)
					}
				}
			}
		}
	}
}

func TestFuncs(t *testing.T) {
	for _, a := range []gemm.Arch{gemm.Generic, gemm.AVX2, gemm.AVX512} {
		t.Run(fmt.Sprintf("%s/float64", a), func(t *testing.T) { testFuncs[float64](t, a) })
		t.Run(fmt.Sprintf("%s/float32", a), func(t *testing.T) { testFuncs[float32](t, a) })
	}
}

// TestRows: the row-block activations and derivatives give the bits of
// [Funcs.Tanh], [Funcs.ELU], [Funcs.TanhGrad] and [Funcs.ELUGrad] row by
// row (which TestFuncs checks against math), for widths with and without a
// ragged tail, and leave the gaps between rows alone.
func TestRows(t *testing.T) {
	for _, a := range []gemm.Arch{gemm.Generic, gemm.AVX2, gemm.AVX512} {
		t.Run(fmt.Sprintf("%s/float64", a), func(t *testing.T) { testRows[float64](t, a) })
		t.Run(fmt.Sprintf("%s/float32", a), func(t *testing.T) { testRows[float32](t, a) })
	}
}

func testRows[T gemm.Float](t *testing.T, a gemm.Arch) {
	f, err := New[T](a)
	if err != nil {
		t.Skip(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 4, 8, 13, 16, 40, 67} {
		for _, rows := range []int{1, 2, 7} {
			lds, ldd := n+5, n+3
			xs := inputs(r, rows*lds)
			src := make([]T, (rows-1)*lds+n)
			for i := range src {
				src[i] = T(xs[i])
			}
			bias := make([]T, n)
			for i := range bias {
				bias[i] = T(r.NormFloat64())
			}
			for _, act := range []string{"tanh", "elu"} {
				got := make([]T, (rows-1)*ldd+n+1)
				for i := range got {
					got[i] = 42
				}
				want := append([]T(nil), got...)
				if act == "tanh" {
					f.TanhRows(got, ldd, src, lds, bias, rows)
				} else {
					f.ELURows(got, ldd, src, lds, bias, rows)
				}
				for row := range rows {
					d, s := want[row*ldd:row*ldd+n], src[row*lds:row*lds+n]
					if act == "tanh" {
						f.Tanh(d, s, bias)
					} else {
						f.ELU(d, s, bias)
					}
				}
				for i := range got {
					same := got[i] == want[i] || (math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i])))
					if !same {
						t.Fatalf("%s %sRows n=%d rows=%d: element %d (row %d) = %g, want %g", a, act, n, rows, i, i/ldd, float64(got[i]), float64(want[i]))
					}
				}
				// The derivative rows: the activation's values at stride
				// ldd serve as y, gradients at the same stride.
				g := make([]T, len(got))
				for i := range g {
					g[i] = T(r.NormFloat64())
				}
				gotG := make([]T, (rows-1)*lds+n+1)
				for i := range gotG {
					gotG[i] = 42
				}
				wantG := append([]T(nil), gotG...)
				if act == "tanh" {
					f.TanhGradRows(gotG, lds, g, got, ldd, n, rows)
				} else {
					f.ELUGradRows(gotG, lds, g, got, ldd, n, rows)
				}
				for row := range rows {
					d := wantG[row*lds : row*lds+n]
					copy(d, g[row*ldd:row*ldd+n])
					if act == "tanh" {
						f.TanhGrad(d, got[row*ldd:row*ldd+n])
					} else {
						f.ELUGrad(d, got[row*ldd:row*ldd+n])
					}
				}
				for i := range gotG {
					same := gotG[i] == wantG[i] || (math.IsNaN(float64(gotG[i])) && math.IsNaN(float64(wantG[i])))
					if !same {
						t.Fatalf("%s %sGradRows n=%d rows=%d: element %d (row %d) = %g, want %g", a, act, n, rows, i, i/lds, float64(gotG[i]), float64(wantG[i]))
					}
				}
			}
		}
	}
}

// TestTailLikeBody: an element gives the same bits in the vector body and
// in the tail.
func TestTailLikeBody(t *testing.T) {
	for _, a := range gemm.Archs() {
		f := MustNew[float64](a)
		src := make([]float64, 37)
		for i := range src {
			src[i] = 0.37
		}
		dst := make([]float64, 37)
		f.Tanh(dst, src, nil)
		for i, v := range dst {
			if v != dst[0] {
				t.Fatalf("%s: element %d = %v, element 0 = %v", a, i, v, dst[0])
			}
		}
	}
}

func BenchmarkTanh(b *testing.B) {
	for _, a := range gemm.Archs() {
		for _, f32 := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/f32=%v", a, f32), func(b *testing.B) {
				if f32 {
					benchTanh[float32](b, a)
				} else {
					benchTanh[float64](b, a)
				}
			})
		}
	}
}

func benchTanh[T gemm.Float](b *testing.B, a gemm.Arch) {
	f := MustNew[T](a)
	x := make([]T, 1<<14)
	bias := make([]T, len(x))
	for i := range x {
		x[i] = T(float64(i%200)/50 - 2)
	}
	y := make([]T, len(x))
	for b.Loop() {
		f.Tanh(y, x, bias)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
}

func TestNoAllocation(t *testing.T) {
	for _, a := range gemm.Archs() {
		f := MustNew[float64](a)
		x := make([]float64, 37)
		if n := testing.AllocsPerRun(10, func() { f.Tanh(x, x, nil); f.TanhGrad(x, x) }); n != 0 {
			t.Errorf("%s: %v allocations per call", a, n)
		}
	}
}

// TestConversions: the float64 ↔ float32 conversions (and Add) agree with Go's bit
// for bit on every length (assembly body and Go tail), on random values
// and on the special ones (zeros, subnormals, overflow, infinities, NaN).
func TestConversions(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	special := []float64{0, math.Copysign(0, -1), 1e-40, -1e-45, 3e38, 4e38, -1e300, math.Inf(1), math.Inf(-1), math.NaN(),
		math.MaxFloat32, math.SmallestNonzeroFloat32 / 2, 1 + 0x1p-24, 1 + 0x1p-23 + 0x1p-24}
	for n := range 40 {
		src := make([]float64, n)
		for i := range src {
			if i%3 == 0 {
				src[i] = special[(i/3+n)%len(special)]
			} else {
				src[i] = r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
			}
		}
		got := make([]float32, n)
		Narrow(got, src)
		for i, v := range src {
			if w := float32(v); math.Float32bits(got[i]) != math.Float32bits(w) && !(w != w && got[i] != got[i]) {
				t.Fatalf("Narrow, n = %d: element %d of %g is %g, want %g", n, i, v, got[i], w)
			}
		}
		wide := make([]float64, n)
		Widen(wide, got)
		sum := make([]float64, n)
		for i := range sum {
			sum[i] = r.NormFloat64()
		}
		want := make([]float64, n)
		for i := range want {
			want[i] = sum[i] + float64(got[i])
		}
		AddWiden(sum, got)
		for i := range got {
			if w := float64(got[i]); math.Float64bits(wide[i]) != math.Float64bits(w) && !(w != w && wide[i] != wide[i]) {
				t.Fatalf("Widen, n = %d: element %d is %g, want %g", n, i, wide[i], w)
			}
			if math.Float64bits(sum[i]) != math.Float64bits(want[i]) && !(want[i] != want[i] && sum[i] != sum[i]) {
				t.Fatalf("AddWiden, n = %d: element %d is %g, want %g", n, i, sum[i], want[i])
			}
		}
		// Add: float64 to float64, bit for bit as Go adds.
		acc := make([]float64, n)
		for i := range acc {
			acc[i] = r.NormFloat64()
			want[i] = acc[i] + src[i]
		}
		Add(acc, src)
		for i := range acc {
			if math.Float64bits(acc[i]) != math.Float64bits(want[i]) && !(want[i] != want[i] && acc[i] != acc[i]) {
				t.Fatalf("Add, n = %d: element %d is %g, want %g", n, i, acc[i], want[i])
			}
		}
	}
}
