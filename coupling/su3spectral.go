package coupling

import (
	"fmt"
	"math"
	"math/cmplx"

	"pfmpi/su3"
)

// SpectralMap is a conjugation-equivariant bijection of SU(3), the kernel
// of the SU(3) gauge layers: for W = V diag(e^{iθ}) V†,
//
//	h(W) = V diag(e^{iθ′}) V†,   θ′_i = θ_i + ψ(θ_i) − (1/3) Σ_j ψ(θ_j),
//
// with ψ = Φ′ the derivative of the trigonometric polynomial Φ(θ) =
// Σ_{k=1}^{K} a_k cos kθ + b_k sin kθ. Because the same ψ acts on every
// eigenphase, θ′ is permutation equivariant (no canonical cell of the Weyl
// group is needed) and h(ΩWΩ†) = Ω h(W) Ω†; the mean is subtracted so that
// Σθ′ = Σθ (det h(W) = 1). The coefficients are the raw parameters scaled
// jointly so that Σ k²(|a_k| + |b_k|) < s (see scale): |ψ′| < s < 1, so
// θ ↦ θ′ is the identity plus a contraction on the torus, hence a
// bijection (inverted by Newton's method).
// With respect to Haar measure (Weyl integration formula),
//
//	log J = log det(1 + P diag(ψ′(θ))) + Σ_{i<j} [log|e^{iθ′_i} − e^{iθ′_j}|² − log|e^{iθ_i} − e^{iθ_j}|²],
//
// P = 1 − (1/3)11ᵀ: the 3 × 3 determinant equals the one restricted to the
// plane Σθ = const, which the map preserves. Zero parameters give the
// identity.
type SpectralMap struct {
	K int     // Fourier modes
	S float64 // bound on |ψ′|, in (0, 1)
}

// NewSpectralMap returns the map with k modes and bound s on |ψ′|.
func NewSpectralMap(k int, s float64) (SpectralMap, error) {
	if k < 1 || !(s > 0 && s < 1) {
		return SpectralMap{}, fmt.Errorf("coupling: spectral map with %d modes and bound %g: need k ≥ 1 and 0 < s < 1", k, s)
	}
	return SpectralMap{K: k, S: s}, nil
}

// Params is the number of real parameters: 2K.
func (m SpectralMap) Params() int { return 2 * m.K }

// spectralDelta smooths |p| in the normalisation of the coefficients.
const spectralDelta = 1e-3

// scale returns g(W) = s·tanh(W)/W with W = Σ_i k_i² √(p_i² + δ²): the
// coefficients are c_i = p_i·g(W), so Σ k²(|a_k| + |b_k|) ≤ g(W)·W =
// s·tanh W < s while a single mode may use the whole budget. It also
// returns W.
func (m SpectralMap) scale(p []float64) (g, w float64) {
	for i, v := range p[:2*m.K] {
		k := float64(i/2 + 1)
		w += k * k * math.Sqrt(v*v+spectralDelta*spectralDelta)
	}
	return m.S * math.Tanh(w) / w, w
}

// coefficient returns a_k (b = false) or b_k from the raw parameters.
func (m SpectralMap) coefficient(p []float64, k int, b bool) float64 {
	i := 2 * (k - 1)
	if b {
		i++
	}
	g, _ := m.scale(p)
	return p[i] * g
}

// psi returns ψ(θ) and ψ′(θ).
func (m SpectralMap) psi(p []float64, th float64) (v, d float64) {
	for k := 1; k <= m.K; k++ {
		a, b := m.coefficient(p, k, false), m.coefficient(p, k, true)
		kf := float64(k)
		s, c := math.Sincos(kf * th)
		v += kf * (-a*s + b*c)
		d += kf * kf * (-a*c - b*s)
	}
	return v, d
}

// Phases maps the eigenphases θ to θ′ and returns the log-Jacobian with
// respect to Haar measure.
func (m SpectralMap) Phases(p []float64, th [3]float64) ([3]float64, float64) {
	var out [3]float64
	var ps, dps [3]float64
	mean := 0.0
	for i, t := range th {
		ps[i], dps[i] = m.psi(p, t)
		mean += ps[i] / 3
	}
	for i := range th {
		out[i] = th[i] + ps[i] - mean
	}
	return out, m.logDet(dps) + vandermonde(out) - vandermonde(th)
}

// logDet returns log det(1 + P diag(d)).
func (m SpectralMap) logDet(d [3]float64) float64 {
	var a [3][3]float64
	for i := range 3 {
		for j := range 3 {
			a[i][j] = -d[j] / 3
		}
		a[i][i] += 1 + d[i]
	}
	det := a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) - a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) + a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
	return math.Log(math.Abs(det))
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
// plane Σθ = Σθ′) and the forward log-Jacobian at θ.
func (m SpectralMap) InversePhases(p []float64, target [3]float64) ([3]float64, float64, error) {
	th := target
	for it := 0; it < 100; it++ {
		var ps, dps [3]float64
		mean := 0.0
		for i, t := range th {
			ps[i], dps[i] = m.psi(p, t)
			mean += ps[i] / 3
		}
		var f [3]float64
		worst := 0.0
		for i := range 3 {
			f[i] = th[i] + ps[i] - mean - target[i]
			worst = max(worst, math.Abs(f[i]))
		}
		if worst < 1e-14 {
			_, ld := m.Phases(p, th)
			return th, ld, nil
		}
		// Solve (1 + P diag(ψ′)) δ = f (3 × 3, Cramer).
		var a [3][3]float64
		for i := range 3 {
			for j := range 3 {
				a[i][j] = -dps[j] / 3
			}
			a[i][i] += 1 + dps[i]
		}
		det := det3(a)
		for c := range 3 {
			b := a
			for r := range 3 {
				b[r][c] = f[r]
			}
			th[c] -= det3(b) / det
		}
	}
	return th, 0, fmt.Errorf("coupling: spectral map inverse did not converge")
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
	th, v := su3.Phases(w)
	out, ld := m.Phases(p, th)
	var eps [3]float64
	for i := range eps {
		eps[i] = out[i] - th[i]
	}
	return fromPhases(v, eps), ld
}

// addCoefficientVJP adds to gp the gradient with respect to the raw
// parameters given gc = ∂L/∂c_i: ∂c_i/∂p_j = δ_ij g + p_i g′(W) ∂W/∂p_j.
func (m SpectralMap) addCoefficientVJP(p, gc, gp []float64) {
	g, w := m.scale(p)
	t := math.Tanh(w)
	dg := m.S * (w*(1-t*t) - t) / (w * w)
	dot := 0.0
	for i := range gc {
		dot += gc[i] * p[i]
	}
	for j := range gc {
		k := float64(j/2 + 1)
		dw := k * k * p[j] / math.Sqrt(p[j]*p[j]+spectralDelta*spectralDelta)
		gp[j] += gc[j]*g + dg*dw*dot
	}
}

// psi2 returns ψ″(θ).
func (m SpectralMap) psi2(p []float64, th float64) float64 {
	d := 0.0
	for k := 1; k <= m.K; k++ {
		a, b := m.coefficient(p, k, false), m.coefficient(p, k, true)
		kf := float64(k)
		s, c := math.Sincos(kf * th)
		d += kf * kf * kf * (a*s - b*c)
	}
	return d
}

// RotationVJP adds to gp the gradient of L with respect to the raw
// parameters and returns the gradient with respect to W and F itself (one
// eigen-decomposition serves both), given gF =
// ∂L/∂F (complex-matrix convention: dL = Re Tr(gF† dF)) and gLD = ∂L/∂log J,
// for F, log J = Rotation(p, W). The returned G_W is exact along the
// tangent directions δW = XW, X ∈ su(3) (dL = Re Tr(G_W† X W)). Near
// degenerate eigenvalues the divided differences of g(λ) = e^{iψ(arg λ)}
// are replaced by the derivative at the midpoint.
func (m SpectralMap) RotationVJP(p []float64, w, gF su3.Matrix, gLD float64, gp []float64) (gW, f su3.Matrix) {
	th, v := su3.Phases(w)
	var lam, g [3]complex128
	var ps, dps, d2 [3]float64
	mean := 0.0
	for i := range 3 {
		lam[i] = cmplx.Exp(complex(0, th[i]))
		ps[i], dps[i] = m.psi(p, th[i])
		d2[i] = m.psi2(p, th[i])
		mean += ps[i] / 3
	}
	em := cmplx.Exp(complex(0, -mean)) // e^{−im}
	for i := range 3 {
		g[i] = cmplx.Exp(complex(0, ps[i]))
	}
	// K = V† G_F V.
	k := v.AdjMul(gF).Mul(v)
	// Divided differences C_ij of g on the spectrum.
	var c [3][3]complex128
	for i := range 3 {
		for j := range 3 {
			d := lam[i] - lam[j]
			if i == j || cmplx.Abs(d) < 1e-7 {
				// g′(λ) = g ψ′/λ at the midpoint phase.
				t := th[i]
				if i != j {
					t = th[j] + math.Remainder(th[i]-th[j], 2*math.Pi)/2
				}
				pv, pd := m.psi(p, t)
				c[i][j] = cmplx.Exp(complex(0, pv)) * complex(pd, 0) / cmplx.Exp(complex(0, t))
				continue
			}
			c[i][j] = (g[i] - g[j]) / d
		}
	}
	// G_E from the spectral part e^{−im} g(W).
	var ge su3.Matrix
	for i := range 3 {
		for j := range 3 {
			ge[3*i+j] = cmplx.Conj(em) * k[3*i+j] * cmplx.Conj(c[i][j])
		}
	}
	// dL/dθ_j from the mean term, −i e^{−im} δm g(W): δm = (1/3)Σ ψ′ δθ.
	var tr complex128 // Tr(G_F† g(W)) = Σ_i conj(K_ii) g_i
	for i := range 3 {
		tr += cmplx.Conj(k[4*i]) * g[i]
	}
	dm := imag(em * tr) // ∂L/∂m
	var dth [3]float64
	for j := range 3 {
		dth[j] = dm * dps[j] / 3
	}
	// log J = log det M + Vd(θ′) − Vd(θ), M = 1 + P diag(ψ′).
	var mm [3][3]float64
	for i := range 3 {
		for j := range 3 {
			mm[i][j] = -dps[j] / 3
		}
		mm[i][i] += 1 + dps[i]
	}
	minv := inverse3(mm)
	var out [3]float64
	for i := range 3 {
		out[i] = th[i] + ps[i] - mean
	}
	vdOut, vdIn := vdGrad(out), vdGrad(th)
	for j := range 3 {
		// ∂ log det M/∂θ_j = ψ″(θ_j) (M⁻¹P)_jj, (M⁻¹P)_jj = M⁻¹_jj − (1/3)Σ_l M⁻¹_jl.
		mp := minv[j][j]
		for l := range 3 {
			mp -= minv[j][l] / 3
		}
		dl := d2[j] * mp
		for i := range 3 {
			dl += vdOut[i] * mm[i][j]
		}
		dl -= vdIn[j]
		dth[j] += gLD * dl
	}
	// δθ_j = Im(E_jj λ̄_j): G_E,jj += (∂L/∂θ_j)·iλ_j.
	for j := range 3 {
		ge[4*j] += complex(dth[j], 0) * complex(0, 1) * lam[j]
	}
	// Parameters: ε_i = ψ(θ_i) − mean ψ enters F as e^{iε_i}; and log J.
	var deps [3]float64 // ∂L/∂ε_i through F
	for i := range 3 {
		z := cmplx.Exp(complex(0, ps[i]-mean))
		deps[i] = real(cmplx.Conj(k[4*i]) * complex(0, 1) * z)
	}
	gc := make([]float64, 2*m.K) // ∂L/∂c_i
	for kk := 1; kk <= m.K; kk++ {
		for _, isB := range []bool{false, true} {
			idx := 2 * (kk - 1)
			if isB {
				idx++
			}
			kf := float64(kk)
			// ∂ψ(θ)/∂coef and ∂ψ′(θ)/∂coef.
			var dpsi, dpsid [3]float64
			for i := range 3 {
				s, co := math.Sincos(kf * th[i])
				if isB {
					dpsi[i], dpsid[i] = kf*co, -kf*kf*s
				} else {
					dpsi[i], dpsid[i] = -kf*s, -kf*kf*co
				}
			}
			meanD := (dpsi[0] + dpsi[1] + dpsi[2]) / 3
			gsum := 0.0
			for i := range 3 {
				deps_i := dpsi[i] - meanD
				gsum += deps[i] * deps_i
				// log J: Vd(θ′) through θ′_i; log det M through ψ′.
				gsum += gLD * vdOut[i] * deps_i
			}
			// ∂ log det M/∂coef = tr(M⁻¹ P diag(∂ψ′)) = Σ_j ∂ψ′_j (M⁻¹P)_jj.
			for j := range 3 {
				mp := minv[j][j]
				for l := range 3 {
					mp -= minv[j][l] / 3
				}
				gsum += gLD * dpsid[j] * mp
			}
			gc[idx] = gsum
		}
	}
	m.addCoefficientVJP(p, gc, gp)
	var eps [3]float64
	for i := range eps {
		eps[i] = ps[i] - mean
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
