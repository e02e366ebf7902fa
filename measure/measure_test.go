package measure

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/internal/latticetest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/spectrum"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// ar1 returns an AR(1) series x_{i+1} = ρ x_i + √(1−ρ²) ξ, whose integrated
// autocorrelation time is (1+ρ)/(2(1−ρ)).
func ar1(rho float64, n int, seed uint64) []float64 {
	st := rng.New(seed, "ar1").Stream(0)
	x := make([]float64, n)
	v := st.Normal()
	for i := range x {
		v = rho*v + math.Sqrt(1-rho*rho)*st.Normal()
		x[i] = v
	}
	return x
}

func TestGammaAR1(t *testing.T) {
	for _, rho := range []float64{0, 0.5, 0.9} {
		want := (1 + rho) / (2 * (1 - rho))
		a, err := Gamma(ar1(rho, 100000, 1))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(a.TauInt.Value-want) > 3*a.TauInt.Error+0.02 || a.Flagged {
			t.Errorf("ρ = %g: τ_int = %v (W = %d), want %g", rho, a.TauInt, a.Window, want)
		}
		// The error of the mean: √(2τ_int/N) for unit variance.
		if e := math.Sqrt(2 * want / 100000); math.Abs(a.Mean.Error-e) > 0.15*e {
			t.Errorf("ρ = %g: error of the mean %g, want ≈ %g", rho, a.Mean.Error, e)
		}
		if math.Abs(a.Mean.Value) > 4*a.Mean.Error {
			t.Errorf("ρ = %g: mean %v is not zero", rho, a.Mean)
		}
	}
	// Replicas: four chains of a quarter of the length agree with one.
	x := ar1(0.8, 40000, 2)
	one, _ := Gamma(x)
	four, err := Gamma(x[:10000], x[10000:20000], x[20000:30000], x[30000:])
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(one.TauInt.Value-four.TauInt.Value) > 0.1*one.TauInt.Value {
		t.Errorf("τ_int from one chain %v, from four replicas %v", one.TauInt, four.TauInt)
	}
	if _, err := Gamma([]float64{1}); err == nil {
		t.Error("Gamma of one value accepted")
	}
}

func TestJackknife(t *testing.T) {
	x := ar1(0, 1000, 3)
	// For the mean with bins of one, the jackknife error is the naive s/√N.
	e, err := Jackknife([][]float64{x}, 1, func(m []float64) (float64, error) { return m[0], nil })
	if err != nil {
		t.Fatal(err)
	}
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	n := float64(len(x))
	naive := math.Sqrt((s2/n - (s/n)*(s/n)) / (n - 1))
	if math.Abs(e.Error-naive) > 1e-12*naive || math.Abs(e.Value-s/n) > 1e-14 {
		t.Errorf("jackknife mean %v, want %g ± %g", e, s/n, naive)
	}
	// A ratio of correlated means: ⟨2 + x⟩/⟨4 + 2x⟩ = ½ exactly, error 0.
	a, b := make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		a[i], b[i] = 2+v, 4+2*v
	}
	r, err := Jackknife([][]float64{a, b}, 10, func(m []float64) (float64, error) { return m[0] / m[1], nil })
	if err != nil || math.Abs(r.Value-0.5) > 1e-15 || r.Error > 1e-14 {
		t.Errorf("jackknife ratio %v, %v; want 0.5 ± 0", r, err)
	}
}

func TestBesselAndU1Plaquette(t *testing.T) {
	// Abramowitz and Stegun, Table 9.8.
	for _, c := range []struct {
		n    int
		x, v float64
	}{{0, 1, 1.2660658777520084}, {1, 1, 0.5651591039924851}, {0, 2, 2.2795853023360673}, {1, 2, 1.5906368546373291}, {2, 2, 0.6889484476987382}} {
		if got := besselI(c.n, c.x); math.Abs(got-c.v) > 1e-15*c.v {
			t.Errorf("I_%d(%g) = %.17g, want %.17g", c.n, c.x, got, c.v)
		}
	}
	// One plaquette on a periodic 1×1 lattice is the identity.
	if p, _ := U1Plaquette(2, 1); math.Abs(p-1) > 1e-14 {
		t.Errorf("V = 1: ⟨cos P⟩ = %g, want 1", p)
	}
	// Infinite volume: I_1(β)/I_0(β).
	if p, _ := U1Plaquette(2, 100000); math.Abs(p-1.5906368546373291/2.2795853023360673) > 1e-13 {
		t.Errorf("V → ∞: ⟨cos P⟩ = %.15g, want I1/I0 = %.15g", p, 1.5906368546373291/2.2795853023360673)
	}
	// V = 2: direct integral over the two plaquette angles constrained by
	// θ_1 + θ_2 = 0 mod 2π (the torus): ⟨cos θ⟩ with weight e^{2β cos θ}.
	beta := 1.3
	var num, den float64
	for i := 0; i < 20000; i++ {
		th := 2 * math.Pi * (float64(i) + 0.5) / 20000
		w := math.Exp(2 * beta * math.Cos(th))
		num += w * math.Cos(th)
		den += w
	}
	if p, _ := U1Plaquette(beta, 2); math.Abs(p-num/den) > 1e-12 {
		t.Errorf("V = 2: ⟨cos P⟩ = %.15g, direct integral %.15g", p, num/den)
	}
	// ⟨cos P⟩ = (1/V) d log Z/dβ.
	for _, v := range []int{2, 16} {
		lp, _ := U1LogPartition(1.3+1e-5, v)
		lm, _ := U1LogPartition(1.3-1e-5, v)
		p, _ := U1Plaquette(1.3, v)
		if d := (lp - lm) / 2e-5 / float64(v); math.Abs(d-p) > 1e-8 {
			t.Errorf("V = %d: d log Z/dβ / V = %.12g, ⟨cos P⟩ = %.12g", v, d, p)
		}
	}
	if _, err := U1Plaquette(-1, 4); err == nil {
		t.Error("negative β accepted")
	}
}

func TestEffectiveMassAndFit(t *testing.T) {
	const period, m, a = 16, 0.37, 2.5
	c := make([]float64, period)
	for i := range c {
		c[i] = a * (math.Exp(-m*float64(i)) + math.Exp(-m*float64(period-i)))
	}
	f := Fold(c)
	for i, v := range EffectiveMass(f, period) {
		if math.Abs(v-m) > 1e-10 {
			t.Errorf("m_eff(%d) = %g, want %g", i, v, m)
		}
	}
	gm, ga, err := FitCosh(f, nil, period, 2, 8)
	if err != nil || math.Abs(gm-m) > 1e-8 || math.Abs(ga-a) > 1e-7 {
		t.Errorf("fit m = %g, A = %g (%v); want %g, %g", gm, ga, err, m, a)
	}
}

// TestPionAgainstDense compares the correlator with the one from the dense
// inverse of D on a small lattice, on a split process grid.
func TestPionAgainstDense(t *testing.T) {
	for _, nc := range []int{1, 3} {
		mpitest.Run(t, 2, func(comm mpi.Comm) error {
			dims := []int{6, 4}
			sp, err := latticetest.Space(comm, dims, []int{2, 1}, false, nc)
			if err != nil {
				return err
			}
			ly, lat := sp.Layout(), sp.Layout().Lattice()
			defer sp.Close()
			u := sp.NewField()
			u.SetNearIdentity(rng.New(3, "pion"), 0.7)
			op, err := dslash.NewWilson(u, 0.2)
			if err != nil {
				return err
			}
			defer op.Close()
			src := []int{4, 1}
			pion := NewPion(comm, op)
			pion.Tol = 1e-13
			got, err := pion.Correlator(src)
			if err != nil {
				return err
			}
			d, err := spectrum.Build(comm, ly, decomp.All, op.PerSite(), op.M)
			if err != nil || comm.Rank() != 0 {
				return err
			}
			n := op.PerSite()
			want := make([]float64, dims[0])
			srcIndex := int(lat.GlobalIndex(src))
			for c := 0; c < n; c++ {
				b := make([]complex128, d.N)
				b[srcIndex*n+c] = 1
				x := d.Solve(b)
				for g := 0; g < dims[0]*dims[1]; g++ {
					tt := ((g/dims[1]-src[0])%dims[0] + dims[0]) % dims[0]
					for j := 0; j < n; j++ {
						want[tt] += math.Pow(cmplx.Abs(x[g*n+j]), 2)
					}
				}
			}
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-10*want[0] {
					return fmt.Errorf("Nc %d: C(%d) = %.12g, dense %.12g", nc, i, got[i], want[i])
				}
			}
			return nil
		})
	}
}

// TestSU3Plaquette checks the Weyl-integration machinery: ∫dU = 1, the
// orthonormality ∫|χ_3|² = 1, the strong-coupling slope ⟨P⟩ ≈ β/18, and
// that the torus value at V = 64 equals the infinite-volume one at β = 6.
func TestSU3Plaquette(t *testing.T) {
	reps, err := su3Characters(0)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(reps[0].c-1) > 1e-12 {
		t.Errorf("∫dU = %.15g", reps[0].c)
	}
	for _, r := range reps[1:] {
		if math.Abs(r.c) > 1e-12 {
			t.Errorf("∫χ_(%d,%d) dU = %g, want 0", r.p, r.q, r.c)
		}
	}
	small, _ := SU3Plaquette(0.003, 0)
	if math.Abs(small/(0.003/18)-1) > 1e-3 { // the next term is O(β²)
		t.Errorf("⟨P⟩(β = 0.003) = %.10g, want ≈ β/18 = %.10g", small, 0.003/18)
	}
	inf, _ := SU3Plaquette(6, 0)
	torus, _ := SU3Plaquette(6, 64)
	corr, _ := SU3PlaquetteCorrection(6, 64)
	t.Logf("β = 6: ⟨P⟩ = %.12f (infinite volume), %.12f (8×8 torus); largest neglected weight %.2g", inf, torus, corr)
	if math.Abs(inf-torus) > 1e-12 || corr > 1e-10 || inf < 0.3 || inf > 0.9 {
		t.Errorf("β = 6: ⟨P⟩ %.12g vs %.12g on the torus, correction %g", inf, torus, corr)
	}
}

// TestSU3LogPartition: d log Z/dβ = (V/3)⟨Re Tr P⟩ = V⟨P⟩ by central differences.
func TestSU3LogPartition(t *testing.T) {
	const v, beta, h = 16, 4.0, 1e-4
	zp, _ := SU3LogPartition(beta+h, v)
	zm, _ := SU3LogPartition(beta-h, v)
	p, _ := SU3Plaquette(beta, v)
	if d := (zp - zm) / (2 * h) / v; math.Abs(d-p) > 1e-7 {
		t.Errorf("d log Z/dβ / V = %.10g, ⟨P⟩ = %.10g", d, p)
	}
}
