package rng

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"
)

// Known-answer vectors of Philox4x64-10 published with Random123 (kat_vectors).
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint64
		key  [2]uint64
		want [4]uint64
	}{
		{[4]uint64{}, [2]uint64{}, [4]uint64{0x16554d9eca36314c, 0xdb20fe9d672d0fdc, 0xd7e772cee186176b, 0x7e68b68aec7ba23b}},
		{
			[4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}, [2]uint64{^uint64(0), ^uint64(0)},
			[4]uint64{0x87b092c3013fe90b, 0x438c3c67be8d0224, 0x9cc7d7c69cd777b6, 0xa09caebf594f0ba0},
		},
		{
			[4]uint64{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89},
			[2]uint64{0x452821e638d01377, 0xbe5466cf34e90c6c},
			[4]uint64{0xa528f45403e61d95, 0x38c72dbd566e9788, 0xa5a1610e72fd18b5, 0x57bd43b5e52b7fe6},
		},
	}
	for _, c := range cases {
		if got := philox4x64(c.ctr, c.key); got != c.want {
			t.Errorf("philox4x64(%x, %x) = %x, want %x", c.ctr, c.key, got, c.want)
		}
	}
}

func TestStreamsAreFunctionsOfKeyAndSite(t *testing.T) {
	k := New(1234, "test")
	a, b := k.Stream(17), k.Stream(17)
	other := k.Stream(18)
	// Interleave another stream's use: it must not affect a or b.
	var same, differ = true, false
	for i := 0; i < 1000; i++ {
		other.Normal()
		x, y := a.Uint64(), b.Uint64()
		same = same && x == y
	}
	c, d := k.Stream(17), k.Stream(18)
	for i := 0; i < 10; i++ {
		differ = differ || c.Uint64() != d.Uint64()
	}
	if !same || !differ {
		t.Fatalf("same (key, site) must repeat (%v) and different sites must differ (%v)", same, differ)
	}
	// Different seeds, purposes and derived keys give different streams.
	first := func(k Key) uint64 { s := k.Stream(0); return s.Uint64() }
	seen := map[uint64]string{}
	for name, key := range map[string]Key{
		"base": k, "seed": New(1235, "test"), "purpose": New(1234, "tests"),
		"child0": k.Derive(0), "child1": k.Derive(1), "grandchild": k.Derive(0).Derive(0),
	} {
		u := first(key)
		if prev, ok := seen[u]; ok {
			t.Errorf("keys %s and %s give the same stream", prev, name)
		}
		seen[u] = name
	}
	if FromWords(k.Words()) != k {
		t.Errorf("FromWords(Words()) does not round-trip")
	}
}

// moments returns the sample mean and the standard error of the mean.
func moments(n int, f func() float64) (mean, stderr float64) {
	var s, s2 float64
	for i := 0; i < n; i++ {
		x := f()
		s += x
		s2 += x * x
	}
	mean = s / float64(n)
	return mean, math.Sqrt((s2/float64(n) - mean*mean) / float64(n))
}

// within checks |got − want| ≤ 5 standard errors.
func within(t *testing.T, what string, got, stderr, want float64) {
	t.Helper()
	if math.Abs(got-want) > 5*stderr {
		t.Errorf("%s = %.5f ± %.5f, want %v", what, got, stderr, want)
	}
}

func TestDistributions(t *testing.T) {
	const n = 200000
	s := New(99, "moments").Stream(3)
	m, e := moments(n, s.Float64)
	within(t, "E[u]", m, e, 0.5)
	m, e = moments(n, func() float64 { u := s.Float64(); return u * u })
	within(t, "E[u²]", m, e, 1.0/3)

	m, e = moments(n, s.Normal)
	within(t, "E[x] normal", m, e, 0)
	m, e = moments(n, func() float64 { x := s.Normal(); return x * x })
	within(t, "E[x²] normal", m, e, 1)
	m, e = moments(n, func() float64 { x := s.Normal(); return x * x * x * x })
	within(t, "E[x⁴] normal", m, e, 3)

	m, e = moments(n, func() float64 { return real(s.ComplexNormal()) })
	within(t, "E[Re z]", m, e, 0)
	m, e = moments(n, func() float64 { z := s.ComplexNormal(); return real(z) * real(z) })
	within(t, "E[(Re z)²]", m, e, 0.5)
	m, e = moments(n, func() float64 { z := s.ComplexNormal(); return real(z) * imag(z) })
	within(t, "E[Re z Im z]", m, e, 0)
	m, e = moments(n, func() float64 { z := s.ComplexNormal(); a := real(z)*real(z) + imag(z)*imag(z); return a * a })
	within(t, "E[|z|⁴]", m, e, 2)

	m, e = moments(n, func() float64 { return real(s.Phase()) })
	within(t, "E[Re e^{iθ}]", m, e, 0)
	m, e = moments(n, func() float64 { z := s.Phase(); return imag(z) * imag(z) })
	within(t, "E[(Im e^{iθ})²]", m, e, 0.5)
}

func TestUniformIsOpenInterval(t *testing.T) {
	// The extreme words map strictly inside (0, 1).
	s := New(0, "").Stream(0)
	s.buf, s.pos = [4]uint64{0, ^uint64(0), 1 << 63, 0}, 0
	lo, hi, mid := s.Float64(), s.Float64(), s.Float64()
	if !(lo > 0 && hi < 1) || mid != 0.5+0x1p-53 {
		t.Fatalf("uniforms of words 0, 2⁶⁴−1, 2⁶³ = %g, %v, %v: want inside (0, 1) and 0.5+2⁻⁵³", lo, hi, mid)
	}
	if math.IsInf(math.Log(lo), 0) || math.Log(hi) == 0 {
		t.Fatalf("ln u must be finite and non-zero at the ends")
	}
}

func TestUnitaryHaar(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := New(5, "haar").Stream(uint64(n))
			u := make([]complex128, n*n)
			const samples = 40000
			var tr2, u00 float64
			var tr complex128
			for k := 0; k < samples; k++ {
				s.Unitary(u, n)
				// U†U = 1
				for i := 0; i < n; i++ {
					for j := 0; j < n; j++ {
						var d complex128
						for l := 0; l < n; l++ {
							d += cmplx.Conj(u[l*n+i]) * u[l*n+j]
						}
						want := complex(0, 0)
						if i == j {
							want = 1
						}
						if cmplx.Abs(d-want) > 1e-13 {
							t.Fatalf("(U†U)_%d%d = %v", i, j, d)
						}
					}
				}
				var trace complex128
				for i := 0; i < n; i++ {
					trace += u[i*n+i]
				}
				tr += trace
				tr2 += real(trace)*real(trace) + imag(trace)*imag(trace)
				u00 += real(u[0])*real(u[0]) + imag(u[0])*imag(u[0])
			}
			// Haar moments on U(n): E tr U = 0, E|tr U|² = 1, E|U₀₀|² = 1/n.
			// Standard errors: |tr U|² has variance 1 (n ≥ 2), tr U components ½.
			if a := cmplx.Abs(tr / samples); a > 5*math.Sqrt(0.5/samples)*1.5 {
				t.Errorf("|E tr U| = %.4f, want 0", a)
			}
			if d := math.Abs(tr2/samples - 1); d > 5*math.Sqrt(2.0/samples) {
				t.Errorf("E|tr U|² = %.4f, want 1", tr2/samples)
			}
			if d := math.Abs(u00/samples - 1/float64(n)); d > 5/math.Sqrt(samples) {
				t.Errorf("E|U₀₀|² = %.4f, want %.4f", u00/samples, 1/float64(n))
			}
		})
	}
}

func BenchmarkNormal(b *testing.B) {
	s := New(1, "bench").Stream(0)
	var acc float64
	for b.Loop() {
		acc += s.Normal()
	}
	_ = acc
}

func BenchmarkStreamPerSite(b *testing.B) {
	k := New(1, "bench")
	var acc complex128
	site := uint64(0)
	for b.Loop() {
		s := k.Stream(site)
		acc += s.ComplexNormal()
		site++
	}
	_ = acc
}
