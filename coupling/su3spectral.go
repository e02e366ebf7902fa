package coupling

import (
	"fmt"
	"math"
	"math/cmplx"

	"pfmpi/su3"
)

// Limits of a SpectralMap: its working arrays live on the stack.
const (
	MaxSpectralModes = 16
	MaxSpectralSteps = 8
)

// SpectralMap is a conjugation-equivariant bijection of SU(3), the kernel
// of the SU(3) gauge layers: for W = V diag(e^{iθ}) V†,
//
//	h(W) = V diag(e^{iθ′}) V†,   θ′ = T_{n−1} ∘ … ∘ T_0 (θ),
//	T_s(θ)_i = θ_i + ψ_s(θ_i) − (1/3) Σ_j ψ_s(θ_j),
//
// a composition of n residual steps, each with its own ψ_s = Φ_s′, the
// derivative of a trigonometric polynomial Φ_s(θ) = Σ_{k=1}^{K} a_k cos kθ +
// b_k sin kθ. Because the same ψ_s acts on every eigenphase, θ′ is
// permutation equivariant (no canonical cell of the Weyl group is needed)
// and h(ΩWΩ†) = Ω h(W) Ω†; the mean is subtracted so that Σθ′ = Σθ
// (det h(W) = 1). The coefficients of each step are its raw parameters
// scaled jointly so that Σ k²(|a_k| + |b_k|) < s (see scale): |ψ_s′| < s < 1,
// so every step is the identity plus a contraction on the torus, hence a
// bijection (inverted by Newton's method, step by step from the last).
// With respect to Haar measure (Weyl integration formula),
//
//	log J = Σ_s log det(1 + P diag(ψ_s′(θ^s))) + Vd(θ′) − Vd(θ),
//	Vd(θ) = Σ_{i<j} log|e^{iθ_i} − e^{iθ_j}|²,
//
// θ^s the phases entering step s and P = 1 − (1/3)11ᵀ: each 3 × 3
// determinant equals the one restricted to the plane Σθ = const, which the
// steps preserve. Zero parameters give the identity.
type SpectralMap struct {
	K     int     // Fourier modes per step
	Steps int     // residual steps composed
	S     float64 // bound on |ψ_s′|, in (0, 1)
}

// NewSpectralMap returns the map with steps residual steps of k modes and
// bound s on |ψ′|.
func NewSpectralMap(k, steps int, s float64) (SpectralMap, error) {
	if k < 1 || k > MaxSpectralModes || steps < 1 || steps > MaxSpectralSteps || !(s > 0 && s < 1) {
		return SpectralMap{}, fmt.Errorf("coupling: spectral map with %d modes, %d steps and bound %g: need 1 ≤ modes ≤ %d, 1 ≤ steps ≤ %d and 0 < bound < 1",
			k, steps, s, MaxSpectralModes, MaxSpectralSteps)
	}
	return SpectralMap{K: k, Steps: steps, S: s}, nil
}

// Params is the number of real parameters: 2K per step, step s first
// (a_1, b_1, a_2, b_2, …).
func (m SpectralMap) Params() int { return 2 * m.K * m.Steps }

// spectralDelta smooths |p| in the normalisation of the coefficients.
const spectralDelta = 1e-3

// stepParams returns the raw parameters of step s.
func (m SpectralMap) stepParams(p []float64, s int) []float64 {
	return p[2*m.K*s : 2*m.K*(s+1)]
}

// scale returns g(W) = s·tanh(W)/W with W = Σ_i k_i² √(p_i² + δ²) over one
// step's raw parameters p: the coefficients are c_i = p_i·g(W), so
// Σ k²(|a_k| + |b_k|) ≤ g(W)·W = s·tanh W < s while a single mode may use
// the whole budget. It also returns W.
func (m SpectralMap) scale(p []float64) (g, w float64) {
	for i, v := range p[:2*m.K] {
		k := float64(i/2 + 1)
		w += k * k * math.Sqrt(v*v+spectralDelta*spectralDelta)
	}
	return m.S * math.Tanh(w) / w, w
}

// spectralCoef holds the coefficients of every step.
type spectralCoef [MaxSpectralSteps][2 * MaxSpectralModes]float64

func (m SpectralMap) coefficients(p []float64, c *spectralCoef) {
	for s := range m.Steps {
		ps := m.stepParams(p, s)
		g, _ := m.scale(ps)
		for i, v := range ps {
			c[s][i] = v * g
		}
	}
}

// psi returns ψ(θ), ψ′(θ) and ψ″(θ) for coefficients c = (a_1, b_1, …).
func psi(c []float64, th float64) (v, d, d2 float64) {
	s1, c1 := math.Sincos(th)
	s, co := s1, c1
	for i := 0; i < len(c); i += 2 {
		a, b := c[i], c[i+1]
		kf := float64(i/2 + 1)
		if i > 0 { // sin and cos of kθ by angle addition (k ≤ MaxSpectralModes)
			s, co = s*c1+co*s1, co*c1-s*s1
		}
		v += kf * (-a*s + b*co)
		d += kf * kf * (-a*co - b*s)
		d2 += kf * kf * kf * (a*s - b*co)
	}
	return v, d, d2
}

// psiDivided returns (ψ(a+δ) − ψ(a))/δ, evaluated without cancellation:
// Σ k²(−a_k cos kμ − b_k sin kμ)·sinc(kδ/2) with μ = a + δ/2.
func psiDivided(c []float64, a, delta float64) float64 {
	mid := a + delta/2
	v := 0.0
	for i := 0; i < len(c); i += 2 {
		kf := float64(i/2 + 1)
		s, co := math.Sincos(kf * mid)
		v += kf * kf * (-c[i]*co - c[i+1]*s) * sinc(kf*delta/2)
	}
	return v
}

func sinc(x float64) float64 {
	if math.Abs(x) < 1e-4 {
		return 1 - x*x/6
	}
	return math.Sin(x) / x
}

// stepMatrix returns 1 + P diag(d).
func stepMatrix(d [3]float64) [3][3]float64 {
	var a [3][3]float64
	for i := range 3 {
		for j := range 3 {
			a[i][j] = -d[j] / 3
		}
		a[i][i] += 1 + d[i]
	}
	return a
}

// step applies one residual step with coefficients c to th, returning the
// new phases and ψ′ at th.
func step(c []float64, th [3]float64) (out, d [3]float64) {
	var ps [3]float64
	mean := 0.0
	for i, t := range th {
		ps[i], d[i], _ = psi(c, t)
		mean += ps[i] / 3
	}
	for i := range th {
		out[i] = th[i] + ps[i] - mean
	}
	return out, d
}

// Phases maps the eigenphases θ to θ′ and returns the log-Jacobian with
// respect to Haar measure.
func (m SpectralMap) Phases(p []float64, th [3]float64) ([3]float64, float64) {
	var c spectralCoef
	m.coefficients(p, &c)
	return m.phases(&c, th)
}

func (m SpectralMap) phases(c *spectralCoef, th [3]float64) ([3]float64, float64) {
	out, ld := th, 0.0
	for s := range m.Steps {
		var d [3]float64
		out, d = step(c[s][:2*m.K], out)
		ld += math.Log(math.Abs(det3(stepMatrix(d))))
	}
	return out, ld + vandermonde(out) - vandermonde(th)
}

// vandermonde returns Σ_{i<j} log|e^{iθ_i} − e^{iθ_j}|² = Σ log(4 sin²((θ_i − θ_j)/2)).
func vandermonde(th [3]float64) float64 {
	s := 0.0
	for i := range 3 {
		for j := i + 1; j < 3; j++ {
			x := math.Sin((th[i] - th[j]) / 2)
			s += math.Log(4 * x * x)
		}
	}
	return s
}

// InversePhases returns θ with Phases(θ) = θ′ (Newton's method on the
// plane Σθ = Σθ′, one step at a time from the last) and the forward
// log-Jacobian at θ.
func (m SpectralMap) InversePhases(p []float64, target [3]float64) ([3]float64, float64, error) {
	var c spectralCoef
	m.coefficients(p, &c)
	th := target
	for s := m.Steps - 1; s >= 0; s-- {
		cs := c[s][:2*m.K]
		want := th
		converged := false
		for it := 0; it < 100; it++ {
			out, d := step(cs, th)
			var f [3]float64
			worst := 0.0
			for i := range 3 {
				f[i] = out[i] - want[i]
				worst = max(worst, math.Abs(f[i]))
			}
			if worst < 1e-14 {
				converged = true
				break
			}
			// Solve (1 + P diag(ψ′)) δ = f (3 × 3, Cramer).
			a := stepMatrix(d)
			det := det3(a)
			for col := range 3 {
				b := a
				for r := range 3 {
					b[r][col] = f[r]
				}
				th[col] -= det3(b) / det
			}
		}
		if !converged {
			return th, 0, fmt.Errorf("coupling: spectral map inverse did not converge in step %d", s)
		}
	}
	_, ld := m.phases(&c, th)
	return th, ld, nil
}

func det3(a [3][3]float64) float64 {
	return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) - a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) + a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
}

// Apply returns h(W) for W ∈ SU(3) and the log-Jacobian with respect to
// Haar measure.
func (m SpectralMap) Apply(p []float64, w su3.Matrix) (su3.Matrix, float64) {
	th, v := su3.Phases(w)
	out, ld := m.Phases(p, th)
	return fromPhases(v, out), ld
}

// Inverse returns W with Apply(W) = h and the forward log-Jacobian at W.
func (m SpectralMap) Inverse(p []float64, h su3.Matrix) (su3.Matrix, float64, error) {
	th, v := su3.Phases(h)
	in, ld, err := m.InversePhases(p, th)
	if err != nil {
		return su3.Matrix{}, 0, err
	}
	return fromPhases(v, in), ld, nil
}

// fromPhases returns V diag(e^{iθ}) V†.
func fromPhases(v su3.Matrix, th [3]float64) su3.Matrix {
	var d su3.Matrix
	for i := range 3 {
		d[4*i] = cmplx.Exp(complex(0, th[i]))
	}
	return v.Mul(d).MulAdj(v)
}

// Rotation returns F(W) = h(W) W† = V diag(e^{i(θ′−θ)}) V†, the factor the
// SU(3) layer multiplies a link by (U′ = F U), and log J.
func (m SpectralMap) Rotation(p []float64, w su3.Matrix) (su3.Matrix, float64) {
	f, ld, _, _ := m.RotationEigen(p, w)
	return f, ld
}

// RotationEigen is Rotation that also returns the eigenphases θ and
// eigenvectors V of W it used, for RotationVJPEigen.
func (m SpectralMap) RotationEigen(p []float64, w su3.Matrix) (f su3.Matrix, ld float64, th [3]float64, v su3.Matrix) {
	th, v = su3.Phases(w)
	f, ld = m.rotationOf(p, th, v)
	return f, ld, th, v
}

func (m SpectralMap) rotationOf(p []float64, th [3]float64, v su3.Matrix) (su3.Matrix, float64) {
	out, ld := m.Phases(p, th)
	var eps [3]float64
	for i := range eps {
		eps[i] = out[i] - th[i]
	}
	return fromPhases(v, eps), ld
}

// addCoefficientVJP adds to gp the gradient with respect to one step's raw
// parameters p given gc = ∂L/∂c_i: ∂c_i/∂p_j = δ_ij g + p_i g′(W) ∂W/∂p_j.
func (m SpectralMap) addCoefficientVJP(p, gc, gp []float64) {
	g, w := m.scale(p)
	t := math.Tanh(w)
	dg := m.S * (w*(1-t*t) - t) / (w * w)
	dot := 0.0
	for i := range p {
		dot += gc[i] * p[i]
	}
	for j := range p {
		k := float64(j/2 + 1)
		dw := k * k * p[j] / math.Sqrt(p[j]*p[j]+spectralDelta*spectralDelta)
		gp[j] += gc[j]*g + dg*dw*dot
	}
}

// RotationVJP adds to gp the gradient of L with respect to the raw
// parameters and returns the gradient with respect to W and F itself (one
// eigen-decomposition serves both), given gF = ∂L/∂F (complex-matrix
// convention: dL = Re Tr(gF† dF)) and gLD = ∂L/∂log J, for F, log J =
// Rotation(p, W). The returned G_W is exact along the tangent directions
// δW = XW, X ∈ su(3) (dL = Re Tr(G_W† X W)).
//
// In the eigenbasis E = V†δW V, F = φ(W) with φ(λ_i) = e^{iε_i}, ε = θ′ − θ:
// off the diagonal (V†δF V)_ij = D_ij E_ij with the divided difference
// D_ij = (e^{iε_i} − e^{iε_j})/(λ_i − λ_j) (Daleckii–Krein; it holds
// although ε_i depends on every θ_j, because the eigenvector rotation does
// not see the diagonal); on it δε = (∂ε/∂θ) δθ with δθ_j = Im(λ̄_j E_jj),
// back-propagated through the steps together with log J. Near-degenerate
// eigenvalues: D_ij = e^{i(ε_i+ε_j−θ_i−θ_j)/2} sin(Δε/2)/sin(Δθ/2) with
// Δε/Δθ = Π_s (1 + [ψ_s]) − 1, [ψ_s] the divided differences of ψ_s
// written with sinc (psiDivided), so nothing cancels as Δθ → 0 and the
// limit is the derivative.
func (m SpectralMap) RotationVJP(p []float64, w, gF su3.Matrix, gLD float64, gp []float64) (gW, f su3.Matrix) {
	th, v := su3.Phases(w)
	return m.RotationVJPEigen(p, th, v, gF, gLD, gp)
}

// RotationVJPEigen is RotationVJP at W = V diag(e^{iθ}) V† given by its
// eigen-decomposition (as RotationEigen returned it).
func (m SpectralMap) RotationVJPEigen(p []float64, th [3]float64, v, gF su3.Matrix, gLD float64, gp []float64) (gW, f su3.Matrix) {
	var c spectralCoef
	m.coefficients(p, &c)
	nk := 2 * m.K
	// Forward trace: phases entering each step, ψ′ and ψ″ there.
	var ths [MaxSpectralSteps + 1][3]float64
	var d1, d2 [MaxSpectralSteps][3]float64
	ths[0] = th
	for s := range m.Steps {
		cs := c[s][:nk]
		var ps [3]float64
		mean := 0.0
		for i := range 3 {
			ps[i], d1[s][i], d2[s][i] = psi(cs, ths[s][i])
			mean += ps[i] / 3
		}
		for i := range 3 {
			ths[s+1][i] = ths[s][i] + ps[i] - mean
		}
	}
	out := ths[m.Steps]
	var eps [3]float64
	var lam, phi [3]complex128
	for i := range 3 {
		eps[i] = out[i] - th[i]
		lam[i] = cmplx.Exp(complex(0, th[i]))
		phi[i] = cmplx.Exp(complex(0, eps[i]))
	}
	k := v.AdjMul(gF).Mul(v) // K = V† G_F V
	var ge su3.Matrix
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			// Divided difference on the pair, θ_i taken as θ_j + Δ₀ with
			// |Δ₀| ≤ π (ε is 2π-periodic in each phase).
			d0 := math.Remainder(th[i]-th[j], 2*math.Pi)
			r, delta := 1.0, d0
			for s := range m.Steps {
				f := 1 + psiDivided(c[s][:nk], ths[s][j], delta)
				r *= f
				delta *= f
			}
			x, y := d0*(r-1)/2, d0/2
			dij := cmplx.Exp(complex(0, (eps[i]+eps[j])/2-th[j]-y)) * complex(sinc(x)/sinc(y)*(r-1), 0)
			ge[3*i+j] = k[3*i+j] * cmplx.Conj(dij)
		}
	}
	// ∂L/∂ε_i = Re(conj(K_ii) i e^{iε_i}); the phases' gradient starts at θ′.
	var geps, gth [3]float64
	vdOut := vdGrad(out)
	for i := range 3 {
		geps[i] = real(cmplx.Conj(k[4*i]) * complex(0, 1) * phi[i])
		gth[i] = geps[i] + gLD*vdOut[i]
	}
	var gc [2 * MaxSpectralModes]float64
	for s := m.Steps - 1; s >= 0; s-- {
		// θ^{s+1} = θ^s + P ψ_s(θ^s), log J ∋ log det M_s, M_s = 1 + P diag ψ_s′.
		gm := (gth[0] + gth[1] + gth[2]) / 3
		var pg, mp [3]float64
		minv := inverse3(stepMatrix(d1[s]))
		for j := range 3 {
			pg[j] = gth[j] - gm
			// ∂ log det M/∂ψ′_j = (M⁻¹P)_jj = M⁻¹_jj − (1/3)Σ_l M⁻¹_jl.
			mp[j] = minv[j][j] - (minv[j][0]+minv[j][1]+minv[j][2])/3
		}
		clear(gc[:nk])
		for j := range 3 {
			s1, c1 := math.Sincos(ths[s][j])
			sn, co := s1, c1
			for i := 0; i < nk; i += 2 {
				kf := float64(i/2 + 1)
				if i > 0 {
					sn, co = sn*c1+co*s1, co*c1-sn*s1
				}
				gc[i] += pg[j]*(-kf*sn) + gLD*mp[j]*(-kf*kf*co)
				gc[i+1] += pg[j]*(kf*co) + gLD*mp[j]*(-kf*kf*sn)
			}
		}
		m.addCoefficientVJP(m.stepParams(p, s), gc[:nk], m.stepParams(gp, s))
		for j := range 3 {
			gth[j] += d1[s][j]*pg[j] + gLD*d2[s][j]*mp[j]
		}
	}
	vdIn := vdGrad(th)
	for j := range 3 {
		gth[j] -= geps[j] + gLD*vdIn[j]
		// δθ_j = Im(λ̄_j E_jj): G_E,jj = (∂L/∂θ_j)·iλ_j.
		ge[4*j] = complex(gth[j], 0) * complex(0, 1) * lam[j]
	}
	return v.Mul(ge).MulAdj(v), fromPhases(v, eps)
}

// vdGrad returns ∂/∂θ_j Σ_{i<k} log(4 sin²((θ_i − θ_k)/2)) = Σ_{k≠j} cot((θ_j − θ_k)/2).
func vdGrad(th [3]float64) [3]float64 {
	var g [3]float64
	for j := range 3 {
		for k := range 3 {
			if k != j {
				g[j] += 1 / math.Tan((th[j]-th[k])/2)
			}
		}
	}
	return g
}

func inverse3(a [3][3]float64) [3][3]float64 {
	det := det3(a)
	var inv [3][3]float64
	for i := range 3 {
		for j := range 3 {
			// Cofactor of (j, i).
			r0, r1 := (j+1)%3, (j+2)%3
			c0, c1 := (i+1)%3, (i+2)%3
			inv[i][j] = (a[r0][c0]*a[r1][c1] - a[r0][c1]*a[r1][c0]) / det
		}
	}
	return inv
}
