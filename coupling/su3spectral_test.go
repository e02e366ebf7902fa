package coupling

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"pfmpi/measure"
	"pfmpi/rng"
	"pfmpi/su3"
)

func spectralParams(m SpectralMap, seed uint64) []float64 {
	st := rng.New(seed, "spectral").Stream(0)
	p := make([]float64, m.Params())
	for i := range p {
		p[i] = 1.5 * st.Normal()
	}
	return p
}

// TestSpectralMap checks conjugation equivariance, unit determinant, the
// inverse, the identity at zero parameters, and log J against the
// brute-force Jacobian of W ↦ h(W) in Lie-algebra coordinates
// (W → e^{X}W, h → e^{Y}h, at X = 0 where Haar measure is Lebesgue in x).
func TestSpectralMap(t *testing.T) {
	m, err := NewSpectralMap(3, 3, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	st := rng.New(1, "spectral-w").Stream(0)
	for trial := range 6 {
		p := spectralParams(m, uint64(trial))
		var c spectralCoef
		m.coefficients(p, &c)
		for s := range m.Steps {
			for th := -math.Pi; th < math.Pi; th += 0.01 {
				if _, d, _ := psi(c[s][:2*m.K], th); math.Abs(d) >= m.S {
					t.Fatalf("step %d: |ψ′(%g)| = %g ≥ bound %g", s, th, math.Abs(d), m.S)
				}
			}
		}
		w := su3.Haar(&st)
		h, ld := m.Apply(p, w)
		if d := h.DistanceFromSU3(); d > 1e-12 {
			t.Fatalf("h(W) is %g away from SU(3)", d)
		}
		om := su3.Haar(&st)
		hr, ldr := m.Apply(p, om.Mul(w).MulAdj(om))
		if d := hr.Sub(om.Mul(h).MulAdj(om)).MaxAbs(); d > 1e-10 || math.Abs(ldr-ld) > 1e-9 {
			t.Fatalf("trial %d: h(ΩWΩ†) − Ω h(W) Ω† = %g, log J %g vs %g", trial, d, ldr, ld)
		}
		back, ldb, err := m.Inverse(p, h)
		if err != nil {
			t.Fatal(err)
		}
		if d := back.Sub(w).MaxAbs(); d > 1e-10 || math.Abs(ldb-ld) > 1e-9 {
			t.Fatalf("trial %d: inverse misses W by %g (log J %g vs %g)", trial, d, ldb, ld)
		}
		if id, l0 := m.Apply(make([]float64, m.Params()), w); id.Sub(w).MaxAbs() > 1e-12 || math.Abs(l0) > 1e-12 {
			t.Fatalf("zero parameters are not the identity")
		}
		// Brute force: y(x) = coordinates of log(h(e^X W) h(W)†) ≈ TA(·).
		coords := func(x [8]float64) [8]float64 {
			hx, _ := m.Apply(p, su3.Exp(su3.FromComponents(x)).Mul(w))
			return su3.Components(hx.MulAdj(h).TA())
		}
		jac := mat.NewDense(8, 8, nil)
		const eps = 1e-5
		for b := range 8 {
			var xp, xm [8]float64
			xp[b], xm[b] = eps, -eps
			yp, ym := coords(xp), coords(xm)
			for a := range 8 {
				jac.Set(a, b, (yp[a]-ym[a])/(2*eps))
			}
		}
		var lu mat.LU
		lu.Factorize(jac)
		brute, _ := lu.LogDet()
		if math.Abs(brute-ld) > 1e-6*(1+math.Abs(ld)) {
			t.Fatalf("trial %d: log J = %.10g, brute force %.10g", trial, ld, brute)
		}
		if trial == 0 {
			t.Logf("log J = %.10g, brute-force log|det ∂y/∂x| = %.10g", ld, brute)
		}
	}
}

// TestRotationVJP compares RotationVJP with central differences of
// L = Re Tr(C† F(W)) + c·log J along W → e^{tX}W (X ∈ su(3)) and along the
// parameters, also for a W with two nearly equal eigenvalues.
func TestRotationVJP(t *testing.T) {
	m, err := NewSpectralMap(3, 3, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	st := rng.New(2, "rotation-vjp").Stream(0)
	const c = 0.7
	for trial := range 5 {
		p := spectralParams(m, uint64(10+trial))
		w := su3.Haar(&st)
		if trial == 4 {
			// Eigenphases (0.4, 0.4 + 1e-4, −0.8 − 1e-4) in a random basis.
			_, v := su3.Phases(su3.Haar(&st))
			w = fromPhases(v, [3]float64{0.4, 0.4 + 1e-4, -0.8 - 1e-4})
		}
		cm := su3.Haar(&st).Add(su3.Haar(&st).Scale(complex(0.3, -0.2)))
		loss := func(w su3.Matrix, p []float64) float64 {
			f, ld := m.Rotation(p, w)
			return real(cm.AdjMul(f).Trace()) + c*ld
		}
		gp := make([]float64, m.Params())
		gw, f := m.RotationVJP(p, w, cm, c, gp)
		if f0, _ := m.Rotation(p, w); f.Sub(f0).MaxAbs() > 1e-13 {
			t.Fatalf("RotationVJP's F differs from Rotation's")
		}
		x := su3.RandomAlgebra(&st)
		want := real(gw.AdjMul(x.Mul(w)).Trace())
		const eps = 1e-6
		fd := (loss(su3.Exp(x.Scale(eps)).Mul(w), p) - loss(su3.Exp(x.Scale(-eps)).Mul(w), p)) / (2 * eps)
		if math.Abs(fd-want) > 1e-6*(1+math.Abs(want)) {
			t.Fatalf("trial %d: ∂L/∂W along XW = %.10g, central difference %.10g", trial, want, fd)
		}
		// Parameters: a larger step, because near degenerate eigenvalues
		// log J = … + Vd(θ′) − Vd(θ) is a difference of two logs of 1e-8
		// whose rounding central differences at 1e-6 amplify to 1e-6.
		const epsP = 1e-5
		dir := spectralParams(m, uint64(20+trial))
		wantP := 0.0
		pp, pm := append([]float64(nil), p...), append([]float64(nil), p...)
		for i := range dir {
			wantP += dir[i] * gp[i]
			pp[i] += epsP * dir[i]
			pm[i] -= epsP * dir[i]
		}
		fdP := (loss(w, pp) - loss(w, pm)) / (2 * epsP)
		if math.Abs(fdP-wantP) > 1e-6*(1+math.Abs(wantP)) {
			t.Fatalf("trial %d: ∂L/∂p along dir = %.10g, central difference %.10g", trial, wantP, fdP)
		}
	}
}

// TestSpectralMapCapacity fits a spectral map with constant parameters to
// the single-plaquette density e^{(β/3) Re Tr W} on Haar measure at β = 6
// by reverse KL (Adam, fresh Haar samples each step, the gradient from
// RotationVJP) and requires the composition of four steps to reach a KL
// below 0.02 nats, where one step stays above 0.05: the reason layers
// compose several steps. log z = log Z(6, V)/V of the torus (V = 64; the
// finite-volume part is 1e-24).
func TestSpectralMapCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	const beta = 6.0
	lz, err := measure.SU3LogPartition(beta, 64)
	if err != nil {
		t.Fatal(err)
	}
	logz := lz / 64
	fit := func(steps int) float64 {
		m, err := NewSpectralMap(4, steps, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]float64, m.Params())
		g := make([]float64, len(p))
		mo, v := make([]float64, len(p)), make([]float64, len(p))
		st := rng.New(7, "capacity").Stream(0)
		const n, iters = 128, 1500
		lr := 0.01
		kl := 0.0 // averaged over the last 500 iterations
		for it := range iters {
			if it == 1000 {
				lr /= 3
			}
			clear(g)
			for range n {
				w := su3.Haar(&st)
				// L = −(β/3) Re Tr(F W) − log J, averaged.
				m.RotationVJP(p, w, w.Adj().Scale(complex(-beta/3/n, 0)), -1.0/n, g)
				f, ld := m.Rotation(p, w)
				if it >= iters-500 {
					kl -= (beta/3*real(f.Mul(w).Trace()) + ld - logz) / (n * 500)
				}
			}
			b1, b2 := 1-math.Pow(0.9, float64(it+1)), 1-math.Pow(0.999, float64(it+1))
			for i := range p {
				mo[i] = 0.9*mo[i] + 0.1*g[i]
				v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
				p[i] -= lr * (mo[i] / b1) / (math.Sqrt(v[i]/b2) + 1e-8)
			}
		}
		return kl
	}
	one, four := fit(1), fit(4)
	t.Logf("KL per plaquette after fitting: one step %.4f, four steps %.4f nats", one, four)
	if !(four < 0.02) || !(one > 0.05) {
		t.Errorf("KL one step %.4f (want > 0.05), four steps %.4f (want < 0.02)", one, four)
	}
}

// TestPsiRecurrence: ψ, ψ′ and ψ″ with sin kθ, cos kθ by angle addition
// agree with the direct evaluation for the largest number of modes.
func TestPsiRecurrence(t *testing.T) {
	st := rng.New(11, "psi").Stream(0)
	c := make([]float64, 2*MaxSpectralModes)
	for i := range c {
		c[i] = st.Normal()
	}
	for n := range 200 {
		th := -math.Pi + 2*math.Pi*float64(n)/200
		var v, d, d2 float64
		for i := 0; i < len(c); i += 2 {
			kf := float64(i/2 + 1)
			s, co := math.Sincos(kf * th)
			v += kf * (-c[i]*s + c[i+1]*co)
			d += kf * kf * (-c[i]*co - c[i+1]*s)
			d2 += kf * kf * kf * (c[i]*s - c[i+1]*co)
		}
		gv, gd, gd2 := psi(c, th)
		if math.Abs(gv-v) > 1e-11*(1+math.Abs(v)) || math.Abs(gd-d) > 1e-10*(1+math.Abs(d)) || math.Abs(gd2-d2) > 1e-9*(1+math.Abs(d2)) {
			t.Fatalf("θ = %g: ψ %g %g %g, direct %g %g %g", th, gv, gd, gd2, v, d, d2)
		}
	}
}
