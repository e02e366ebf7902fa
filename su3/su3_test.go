package su3

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/rng"
)

func randomMatrix(s *rng.Stream) Matrix {
	var m Matrix
	for i := range m {
		m[i] = s.ComplexNormal()
	}
	return m
}

// naiveMul is the textbook triple loop, the reference for the unrolled products.
func naiveMul(a, b Matrix) Matrix {
	var c Matrix
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				c[3*i+j] += a[3*i+k] * b[3*k+j]
			}
		}
	}
	return c
}

func maxDiff(a, b Matrix) float64 { return a.Sub(b).MaxAbs() }

func TestProducts(t *testing.T) {
	s := rng.New(1, "su3-products").Stream(0)
	for range 100 {
		a, b := randomMatrix(&s), randomMatrix(&s)
		want := naiveMul(a, b)
		if d := maxDiff(a.Mul(b), want); d > 1e-14 {
			t.Fatalf("Mul differs from the reference by %g", d)
		}
		if d := maxDiff(a.MulAdj(b), naiveMul(a, b.Adj())); d > 1e-14 {
			t.Fatalf("MulAdj differs by %g", d)
		}
		if d := maxDiff(a.AdjMul(b), naiveMul(a.Adj(), b)); d > 1e-14 {
			t.Fatalf("AdjMul differs by %g", d)
		}
		if d := cmplx.Abs(a.Mul(b).Det() - a.Det()*b.Det()); d > 1e-12*cmplx.Abs(a.Det()*b.Det())+1e-13 {
			t.Fatalf("det(ab) − det a det b = %g", d)
		}
		if d := cmplx.Abs(a.Mul(b).Trace() - b.Mul(a).Trace()); d > 1e-13 {
			t.Fatalf("Tr ab ≠ Tr ba by %g", d)
		}
	}
}

func TestGellMannBasis(t *testing.T) {
	for a := 0; a < 8; a++ {
		g := Generator(a)
		if maxDiff(g.Adj(), g.Scale(-1)) != 0 || g.Trace() != 0 {
			t.Errorf("T_%d is not traceless anti-Hermitian", a+1)
		}
		for b := 0; b < 8; b++ {
			want := 0.0
			if a == b {
				want = -0.5
			}
			if d := cmplx.Abs(g.Mul(Generator(b)).Trace() - complex(want, 0)); d > 1e-15 {
				t.Errorf("Tr(T_%d T_%d) off by %g", a+1, b+1, d)
			}
		}
	}
	// Structure constants: [T_1, T_2] = −T_3 for T_a = iλ_a/2 ([λ1, λ2] = 2iλ3).
	c := Generator(0).Mul(Generator(1)).Sub(Generator(1).Mul(Generator(0)))
	if d := maxDiff(c, Generator(2).Scale(-1)); d > 1e-15 {
		t.Errorf("[T1, T2] ≠ −T3 by %g", d)
	}
	s := rng.New(2, "su3-components").Stream(0)
	for range 50 {
		m := randomMatrix(&s)
		x := m.TA()
		comp := Components(x)
		for a := 0; a < 8; a++ {
			want := -2 * real(Generator(a).Mul(x).Trace())
			if math.Abs(comp[a]-want) > 1e-14 {
				t.Fatalf("component %d = %v, want −2 Re Tr(T_a X) = %v", a, comp[a], want)
			}
			// TA is the projection onto su(3) for the trace pairing.
			if d := real(Generator(a).Mul(m).Trace()) - real(Generator(a).Mul(x).Trace()); math.Abs(d) > 1e-14 {
				t.Fatalf("Re Tr(T_a M) ≠ Re Tr(T_a TA(M)) by %g", d)
			}
		}
		if d := maxDiff(FromComponents(comp), x); d > 1e-14 {
			t.Fatalf("FromComponents(Components(X)) ≠ X by %g", d)
		}
		if d := maxDiff(x.TA(), x); d > 1e-15 {
			t.Fatalf("TA is not idempotent: %g", d)
		}
	}
}

// taylorExp is exp(x) by scaling and squaring with a 30-term Taylor series,
// the reference for Exp.
func taylorExp(x Matrix) Matrix {
	k := 0
	for x.MaxAbs()/math.Pow(2, float64(k)) > 0.5 {
		k++
	}
	y := x.Scale(complex(math.Pow(2, -float64(k)), 0))
	sum, term := Identity(), Identity()
	for n := 1; n <= 30; n++ {
		term = term.Mul(y).Scale(complex(1/float64(n), 0))
		sum = sum.Add(term)
	}
	for ; k > 0; k-- {
		sum = sum.Mul(sum)
	}
	return sum
}

func TestExp(t *testing.T) {
	s := rng.New(3, "su3-exp").Stream(0)
	var cases []Matrix
	for _, eps := range []float64{1e-12, 1e-8, 1e-4, 0.01, 0.3, 1, 3, 10} {
		for range 20 {
			cases = append(cases, RandomAlgebra(&s).Scale(complex(eps, 0)))
		}
	}
	// Special spectra of Q = −iX: degenerate pairs (θ = 0 in the formula),
	// det Q < 0, det Q = 0, and a rotated degenerate case.
	cases = append(cases,
		FromComponents([8]float64{0, 0, 0, 0, 0, 0, 0, 1}),
		FromComponents([8]float64{0, 0, 0, 0, 0, 0, 0, -1}),
		FromComponents([8]float64{0, 0, 1, 0, 0, 0, 0, 0}),
		FromComponents([8]float64{0, 0, 1e-9, 0, 0, 0, 0, 1}),
		FromComponents([8]float64{0.3, 0, 0, 0, 0, 0, 0, 0}),
	)
	h := Haar(&s)
	cases = append(cases, h.Mul(FromComponents([8]float64{0, 0, 0, 0, 0, 0, 0, 2.5})).MulAdj(h))
	for i, x := range cases {
		e := Exp(x)
		want := taylorExp(x)
		if d := maxDiff(e, want); d > 1e-13*max(1, want.MaxAbs()) {
			t.Errorf("case %d (|X| = %.3g): Exp differs from the Taylor series by %g", i, x.MaxAbs(), d)
		}
		if d := e.DistanceFromSU3(); d > 1e-14 {
			t.Errorf("case %d: exp(X) is %g away from SU(3)", i, d)
		}
		if d := maxDiff(e.Mul(Exp(x.Scale(-1))), Identity()); d > 1e-14 {
			t.Errorf("case %d: exp(X)exp(−X) ≠ 1 by %g", i, d)
		}
	}
	if Exp(Matrix{}) != Identity() {
		t.Errorf("exp(0) ≠ 1")
	}
}

func TestUnitarize(t *testing.T) {
	s := rng.New(4, "su3-unitarize").Stream(0)
	for range 100 {
		u := Haar(&s)
		if d := maxDiff(u.Unitarize(), u); d > 1e-14 {
			t.Fatalf("Unitarize moved an SU(3) matrix by %g", d)
		}
		noisy := u.Add(randomMatrix(&s).Scale(1e-3))
		p := noisy.Unitarize()
		if d := p.DistanceFromSU3(); d > 1e-14 {
			t.Fatalf("projection is %g away from SU(3)", d)
		}
		if d := maxDiff(p, u); d > 1e-2 {
			t.Fatalf("projection of a 1e-3 perturbation moved %g", d)
		}
	}
}

func TestNearIdentity(t *testing.T) {
	s := rng.New(5, "su3-near").Stream(0)
	for _, eps := range []float64{1e-6, 1e-2, 0.5} {
		var dist float64
		for range 200 {
			u := NearIdentity(&s, eps)
			if d := u.DistanceFromSU3(); d > 1e-14 {
				t.Fatalf("near-identity element %g away from SU(3)", d)
			}
			dist = max(dist, maxDiff(u, Identity()))
		}
		if dist > 10*eps || dist < eps/10 {
			t.Errorf("ε = %g: max |U − 1| = %g", eps, dist)
		}
	}
}

// TestHaarMoments checks Haar moments of SU(3): E|Tr U|² = 1, E Tr U = 0,
// E (Tr U)³ = 1 (the determinant's singlet), E|Tr U|⁴ = 2.
func TestHaarMoments(t *testing.T) {
	s := rng.New(6, "su3-haar").Stream(0)
	const n = 100000
	var tr1, tr3 complex128
	var tr2, tr4 float64
	for range n {
		u := Haar(&s)
		if d := u.DistanceFromSU3(); d > 1e-14 {
			t.Fatalf("Haar sample %g away from SU(3)", d)
		}
		z := u.Trace()
		a := real(z)*real(z) + imag(z)*imag(z)
		tr1 += z
		tr2 += a
		tr3 += z * z * z
		tr4 += a * a
	}
	check := func(what string, got, want, sd float64) {
		if math.Abs(got-want) > 5*sd/math.Sqrt(n) {
			t.Errorf("%s = %.4f, want %v (±%.4f)", what, got, want, sd/math.Sqrt(n))
		}
	}
	check("|E Tr U|", cmplx.Abs(tr1/n), 0, 1.5)
	check("E|Tr U|²", tr2/n, 1, 1.5)
	check("Re E(Tr U)³", real(tr3/n), 1, 4)
	check("E|Tr U|⁴", tr4/n, 2, 6)
}

// weylDensity is the density of one eigenphase of a Haar SU(3) matrix,
// integrated numerically from the Weyl formula Π_{i<j} |e^{iθ_i} − e^{iθ_j}|²
// with θ₃ = −θ₁ − θ₂.
func weylDensity(bins int) []float64 {
	const m = 300
	p := make([]float64, bins)
	total := 0.0
	for i := 0; i < bins*m; i++ {
		t1 := -math.Pi + (float64(i)+0.5)*2*math.Pi/float64(bins*m)
		acc := 0.0
		for j := 0; j < 2*m; j++ {
			t2 := -math.Pi + (float64(j)+0.5)*math.Pi/float64(m)
			t3 := -t1 - t2
			f := func(a, b float64) float64 { s := math.Sin((a - b) / 2); return 4 * s * s }
			acc += f(t1, t2) * f(t1, t3) * f(t2, t3)
		}
		p[i/m] += acc
		total += acc
	}
	for i := range p {
		p[i] /= total
	}
	return p
}

func TestHaarEigenphaseDensity(t *testing.T) {
	const bins, n = 24, 60000
	want := weylDensity(bins)
	got := make([]float64, bins)
	s := rng.New(7, "su3-weyl").Stream(0)
	for range n {
		theta, _ := Phases(Haar(&s))
		sum := 0.0
		for _, th := range theta {
			got[min(int((th+math.Pi)/(2*math.Pi)*bins), bins-1)]++
			sum += th
		}
		if r := math.Remainder(sum, 2*math.Pi); math.Abs(r) > 1e-12 {
			t.Fatalf("eigenphases of an SU(3) matrix sum to %v mod 2π", r)
		}
	}
	// χ² of the pooled histogram (3n angles) against the Weyl marginal.
	chi2 := 0.0
	for i := range got {
		e := want[i] * 3 * n
		chi2 += (got[i] - e) * (got[i] - e) / e
	}
	// The three phases of one matrix are correlated, which inflates χ²
	// somewhat; 2.5 × (bins − 1) is far beyond the statistical spread.
	t.Logf("χ² = %.1f", chi2)
	if chi2 > 2.5*(bins-1) {
		t.Errorf("eigenphase histogram χ² = %.1f for %d bins", chi2, bins)
	}
}

// checkEigen verifies u = V diag(λ) V† and V†V = 1.
func checkEigen(t *testing.T, name string, u Matrix) {
	t.Helper()
	lambda, v := Eigen(u)
	var d Matrix
	d[0], d[4], d[8] = lambda[0], lambda[1], lambda[2]
	if e := maxDiff(v.Mul(d).MulAdj(v), u); e > 1e-12 {
		t.Errorf("%s: reconstruction error %g (λ = %v)", name, e, lambda)
	}
	if e := maxDiff(v.AdjMul(v), Identity()); e > 1e-14 {
		t.Errorf("%s: V is not unitary: %g", name, e)
	}
}

func TestEigen(t *testing.T) {
	s := rng.New(8, "su3-eigen").Stream(0)
	for i := range 2000 {
		checkEigen(t, fmt.Sprintf("Haar %d", i), Haar(&s))
	}
	diag := func(a, b, c float64) Matrix {
		var m Matrix
		m[0], m[4], m[8] = cmplx.Rect(1, a), cmplx.Rect(1, b), cmplx.Rect(1, c)
		return m
	}
	for _, delta := range []float64{1e-2, 1e-4, 1e-6, 1e-9, 1e-12, 1e-15, 0} {
		for _, c := range []struct {
			name    string
			a, b, c float64
		}{
			{"pair", 0.7, 0.7 + delta, -1.4 - delta},
			{"conjugate pair", 0.7, -0.7 + delta, 2.1},
			{"triple", 0.3, 0.3 + delta, 0.3 - delta},
			{"near +1", delta, -delta, 0},
			{"near −1", math.Pi - delta, math.Pi + delta, math.Pi},
			{"centre", 2 * math.Pi / 3, 2*math.Pi/3 + delta, 2 * math.Pi / 3},
			{"opposite sines", math.Pi/2 - delta, math.Pi/2 + delta, 0.4},
		} {
			for k := range 20 {
				w := Haar(&s)
				u := w.Mul(diag(c.a, c.b, c.c)).MulAdj(w)
				checkEigen(t, fmt.Sprintf("%s δ=%g #%d", c.name, delta, k), u)
			}
		}
	}
	checkEigen(t, "identity", Identity())
	checkEigen(t, "−identity", Identity().Scale(-1))
	checkEigen(t, "diagonal", diag(0.1, 0.2, -0.3))
}

func BenchmarkMul(b *testing.B) {
	s := rng.New(1, "bench").Stream(0)
	x, y := Haar(&s), Haar(&s)
	for b.Loop() {
		x = x.Mul(y)
	}
	_ = x
}

func BenchmarkExp(b *testing.B) {
	s := rng.New(1, "bench").Stream(0)
	x := RandomAlgebra(&s)
	var e Matrix
	for b.Loop() {
		e = Exp(x)
	}
	_ = e
}

func BenchmarkEigen(b *testing.B) {
	s := rng.New(1, "bench").Stream(0)
	u := Haar(&s)
	for b.Loop() {
		Eigen(u)
	}
}
