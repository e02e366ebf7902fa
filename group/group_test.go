package group

import (
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/rng"
)

func TestNames(t *testing.T) {
	for _, g := range Groups() {
		p, err := Parse(g.String())
		if err != nil || p != g {
			t.Errorf("Parse(%q) = %v, %v", g.String(), p, err)
		}
		o, err := Of(g.Nc())
		if err != nil || o != g {
			t.Errorf("Of(%d) = %v, %v", g.Nc(), o, err)
		}
	}
	if _, err := Parse("su2"); err == nil {
		t.Error("su2 parsed")
	}
	if _, err := Of(2); err == nil {
		t.Error("Nc = 2 accepted")
	}
	if U1.AlgebraDim() != 1 || SU3.AlgebraDim() != 8 || SU3.LinkReals() != 18 || U1.Title() != "U(1)" || SU3.Title() != "SU(3)" {
		t.Error("dimensions or titles")
	}
}

// ref multiplies a·b with a, b optionally adjoint, by the plain triple loop.
func ref(a, b []complex128, nc int, adjA, adjB bool) []complex128 {
	at := func(m []complex128, i, j int, adj bool) complex128 {
		if adj {
			return cmplx.Conj(m[j*nc+i])
		}
		return m[i*nc+j]
	}
	c := make([]complex128, nc*nc)
	for i := range nc {
		for j := range nc {
			for k := range nc {
				c[i*nc+j] += at(a, i, k, adjA) * at(b, k, j, adjB)
			}
		}
	}
	return c
}

func near(a, b []complex128, tol float64) bool {
	for i := range a {
		if cmplx.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

// TestArithmetic checks the products against the plain loops, the group
// properties of Haar, Exp and Project, and that the dual is the gradient
// of Re Tr: Σ_a T_a Re Tr(T_a m) paired with X gives Re Tr(X m).
func TestArithmetic(t *testing.T) {
	s := rng.New(1, "group-test").Stream(0)
	for _, g := range Groups() {
		nc, n := g.Nc(), g.LinkValues()
		a, b, c := make([]complex128, n), make([]complex128, n), make([]complex128, n)
		g.Haar(a, &s)
		g.Haar(b, &s)
		for _, tc := range []struct {
			f          func(dst, a, b []complex128)
			adjA, adjB bool
		}{{g.Mul, false, false}, {g.MulAdj, false, true}, {g.AdjMul, true, false}} {
			tc.f(c, a, b)
			if !near(c, ref(a, b, nc, tc.adjA, tc.adjB), 1e-14) {
				t.Errorf("%v: product (adj %v, %v) differs from the loops", g, tc.adjA, tc.adjB)
			}
		}
		v, w := make([]complex128, nc), make([]complex128, nc)
		for i := range v {
			v[i] = s.ComplexNormal()
		}
		g.MulVec(w, a, v)
		back := make([]complex128, nc)
		g.AdjMulVec(back, a, w)
		if !near(back, v, 1e-14) {
			t.Errorf("%v: U†Uv ≠ v", g)
		}
		if d := g.Distance(a); d > 1e-13 {
			t.Errorf("%v: Haar element %g from the group", g, d)
		}
		x := make([]complex128, n)
		g.RandomAlgebra(x, &s)
		g.Exp(c, x)
		if d := g.Distance(c); d > 1e-13 {
			t.Errorf("%v: exp(X) %g from the group", g, d)
		}
		c[0] *= 1.001
		g.Project(c)
		if d := g.Distance(c); d > 1e-13 {
			t.Errorf("%v: Project leaves %g", g, d)
		}
		// The dual's coordinates are F_a = Re Tr(T_a m), so Σ_a x_a F_a = Re Tr(X m).
		m := make([]complex128, n)
		for i := range m {
			m[i] = s.ComplexNormal()
		}
		dual, acc := make([]complex128, n), make([]complex128, n)
		g.Dual(dual, m)
		g.AddDual(acc, m, 1)
		if !near(acc, dual, 1e-14) {
			t.Errorf("%v: AddDual into zero ≠ Dual", g)
		}
		xm := ref(x, m, nc, false, false)
		want := real(g.Trace(xm))
		if got := g.AlgebraDot(x, dual); math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
			t.Errorf("%v: Σ x_a (dual m)_a = %g, Re Tr(X m) = %g", g, got, want)
		}
	}
}
