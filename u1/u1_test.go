package u1

import (
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/rng"
)

func TestAnglesAndExp(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0, 0}, {math.Pi, math.Pi}, {-math.Pi, math.Pi}, {3 * math.Pi, math.Pi},
		{2 * math.Pi, 0}, {-0.5, -0.5}, {7, 7 - 2*math.Pi},
	} {
		if got := WrapAngle(c.in); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("WrapAngle(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	s := rng.New(1, "u1").Stream(0)
	for range 1000 {
		theta := 10 * (s.Float64() - 0.5)
		z := FromAngle(theta)
		if math.Abs(cmplx.Abs(z)-1) > 1e-15 || math.Abs(Angle(z)-WrapAngle(theta)) > 1e-14 {
			t.Fatalf("angle round trip of %v: %v", theta, Angle(z))
		}
		if Exp(complex(0, theta)) != z {
			t.Fatalf("Exp(iθ) ≠ e^{iθ}")
		}
		w := s.ComplexNormal()
		x := complex(0, s.Normal())
		if d := real(x*w) - real(x*TA(w)); math.Abs(d) > 1e-15 {
			t.Fatalf("Re(X z) ≠ Re(X TA(z)) by %g", d)
		}
		if p := Project(w); math.Abs(cmplx.Abs(p)-1) > 1e-15 || math.Abs(Angle(p)-Angle(w)) > 1e-15 {
			t.Fatalf("Project(%v) = %v", w, p)
		}
		if Components(x) != imag(x) {
			t.Fatalf("Components")
		}
	}
	if Project(0) != 1 {
		t.Errorf("Project(0) must be a group element")
	}
}

func TestHaar(t *testing.T) {
	s := rng.New(2, "u1-haar").Stream(0)
	const n = 100000
	var m1, m2 complex128
	for range n {
		z := Haar(&s)
		m1 += z
		m2 += z * z
	}
	if cmplx.Abs(m1/n) > 5/math.Sqrt(n) || cmplx.Abs(m2/n) > 5/math.Sqrt(n) {
		t.Errorf("Haar moments E z = %v, E z² = %v, want 0", m1/n, m2/n)
	}
	var d float64
	for range 1000 {
		d = max(d, math.Abs(Angle(NearIdentity(&s, 1e-3))))
	}
	if d > 1e-2 || d < 1e-4 {
		t.Errorf("near-identity angles reach %v for ε = 1e-3", d)
	}
}
