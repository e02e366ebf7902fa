package coupling

import (
	"fmt"
	"math"
)

const twoPi = 2 * math.Pi

// softplusShift makes softplus(0 + shift) = 1: a zero network output gives
// unit knot derivatives, i.e. the identity spline.
var softplusShift = math.Log(math.E - 1)

func softplus(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// wrap returns x mod 2π in [0, 2π).
func wrap(x float64) float64 {
	x = math.Mod(x, twoPi)
	if x < 0 {
		x += twoPi
	}
	if x >= twoPi { // rounding of x + 2π
		x = 0
	}
	return x
}

// CircleMap is a family of increasing bijections of the circle [0, 2π)
// that fix the orientation, parameterised by a vector of real numbers (the
// outputs of a context network at one site). All-zero parameters give the
// identity.
type CircleMap interface {
	// Params is the number of parameters.
	Params() int
	// Forward returns y = h(x) and log h'(x); s is scratch of ScratchLen.
	Forward(p []float64, x float64, s []float64) (y, logd float64)
	// VJP returns dL/dx and adds dL/dp to gp, given dL/dy = gy and
	// dL/d(log h') = gl at x.
	VJP(p []float64, x, gy, gl float64, gp, s []float64) float64
	// Inverse returns x = h⁻¹(y) and log h'(x).
	Inverse(p []float64, y float64, s []float64) (x, logd float64)
	// ScratchLen is the scratch length the methods need.
	ScratchLen() int
}

// Spline is the circular rational-quadratic spline (Durkan et al. 2019;
// Rezende et al. 2020 for the circle) with Bins bins, followed by a
// rotation. Its parameters are, in order: Bins width logits, Bins height
// logits, Bins knot-derivative pre-activations (knot Bins is knot 0: the
// derivative is periodic) and the rotation t:
//
//	widths  w = 2π softmax(a_w),   knots x_k = Σ_{j<k} w_j
//	heights h = 2π softmax(a_h),   knots y_k = Σ_{j<k} h_j
//	d_k = softplus(a_d,k + log(e − 1))       (= 1 at a_d = 0)
//	in bin k, ξ = (x − x_k)/w_k, s = h_k/w_k:
//	  y = y_k + h_k [s ξ² + d_k ξ(1−ξ)] / [s + (d_k + d_{k+1} − 2s) ξ(1−ξ)]
//	then y → (y + t) mod 2π.
type Spline struct{ Bins int }

// NewSpline returns the spline with the given number of bins (≥ 2).
func NewSpline(bins int) (*Spline, error) {
	if bins < 2 {
		return nil, fmt.Errorf("coupling: a circular spline needs at least 2 bins, got %d", bins)
	}
	return &Spline{Bins: bins}, nil
}

func (sp *Spline) Params() int     { return 3*sp.Bins + 1 }
func (sp *Spline) ScratchLen() int { return 6*sp.Bins + 3 }

// knots fills widths, x knots (n+1), heights, y knots (n+1) and the knot
// derivatives (n+1) from p.
func (sp *Spline) knots(p, s []float64) (w, xk, h, yk, d []float64) {
	n := sp.Bins
	w, h, d = s[:n], s[n:2*n], s[2*n:3*n+1]
	xk, yk = s[3*n+1:4*n+2], s[4*n+2:5*n+3]
	softmax2pi(w, p[:n])
	softmax2pi(h, p[n:2*n])
	for k := 0; k < n; k++ {
		d[k] = softplus(p[2*n+k] + softplusShift)
	}
	d[n] = d[0]
	xk[0], yk[0] = 0, 0
	for k := 0; k < n; k++ {
		xk[k+1] = xk[k] + w[k]
		yk[k+1] = yk[k] + h[k]
	}
	xk[n], yk[n] = twoPi, twoPi
	return
}

func softmax2pi(dst, a []float64) {
	m := math.Inf(-1)
	for _, v := range a {
		m = max(m, v)
	}
	sum := 0.0
	for i, v := range a {
		dst[i] = math.Exp(v - m)
		sum += dst[i]
	}
	for i := range dst {
		dst[i] *= twoPi / sum
	}
}

// bin returns the bin of x among the knots.
func bin(knots []float64, x float64) int {
	n := len(knots) - 1
	k := 0
	for k < n-1 && x >= knots[k+1] {
		k++
	}
	return k
}

// rq evaluates the bin's rational quadratic: g(ξ) and the quantities the
// derivatives need.
type rq struct {
	xi, s, d0, d1, phi, num, den, n2 float64
}

func newRQ(xi, s, d0, d1 float64) rq {
	phi := xi * (1 - xi)
	return rq{xi: xi, s: s, d0: d0, d1: d1, phi: phi,
		num: s*xi*xi + d0*phi,
		den: s + (d0+d1-2*s)*phi,
		n2:  d1*xi*xi + 2*s*phi + d0*(1-xi)*(1-xi)}
}

func (r rq) g() float64 { return r.num / r.den }

// logDeriv is log dy/dx = 2 log s + log n2 − 2 log den.
func (r rq) logDeriv() float64 { return 2*math.Log(r.s) + math.Log(r.n2) - 2*math.Log(r.den) }

func (sp *Spline) Forward(p []float64, x float64, s []float64) (y, logd float64) {
	w, xk, h, yk, d := sp.knots(p, s)
	k := bin(xk, x)
	r := newRQ((x-xk[k])/w[k], h[k]/w[k], d[k], d[k+1])
	y = wrap(yk[k] + h[k]*r.g() + p[3*sp.Bins])
	return y, r.logDeriv()
}

func (sp *Spline) VJP(p []float64, x, gy, gl float64, gp, s []float64) float64 {
	n := sp.Bins
	w, xk, h, _, d := sp.knots(p, s)
	k := bin(xk, x)
	W, H := w[k], h[k]
	r := newRQ((x-xk[k])/W, H/W, d[k], d[k+1])
	xi, sl, phi, num, den, n2 := r.xi, r.s, r.phi, r.num, r.den, r.n2
	den2 := den * den
	// g = num/den as a function of (ξ, s, d0, d1).
	gXi := ((2*sl*xi+r.d0*(1-2*xi))*den - num*(r.d0+r.d1-2*sl)*(1-2*xi)) / den2
	gS := (xi*xi*den - num*(1-2*phi)) / den2
	gD0 := phi * (den - num) / den2
	gD1 := -num * phi / den2
	// F = log y' as a function of (ξ, s, d0, d1).
	fXi := (2*r.d1*xi+2*sl*(1-2*xi)-2*r.d0*(1-xi))/n2 - 2*(r.d0+r.d1-2*sl)*(1-2*xi)/den
	fS := 2/sl + 2*phi/n2 - 2*(1-2*phi)/den
	fD0 := (1-xi)*(1-xi)/n2 - 2*phi/den
	fD1 := xi*xi/n2 - 2*phi/den
	// y = y_k + H g(ξ, s), ξ = (x − x_k)/W, s = H/W.
	dYdX := H / W * gXi
	dYdXk := -H / W * gXi
	dYdW := -H / W * (sl*gS + xi*gXi)
	dYdH := r.g() + sl*gS
	dFdX := fXi / W
	dFdXk := -fXi / W
	dFdW := -(sl*fS + xi*fXi) / W
	dFdH := fS / W
	// Upstream through the local quantities.
	gXk := gy*dYdXk + gl*dFdXk
	gW := gy*dYdW + gl*dFdW
	gYk := gy
	gH := gy*dYdH + gl*dFdH
	gd0 := gy*H*gD0 + gl*fD0
	gd1 := gy*H*gD1 + gl*fD1
	// Widths: x_k = Σ_{j<k} w_j, W = w_k; heights likewise (y_n = 2π is
	// fixed, but k < n so y_k and h_k are free sums).
	dw := s[5*n+3 : 6*n+3]
	clear(dw)
	for j := 0; j < k; j++ {
		dw[j] += gXk
	}
	dw[k] += gW
	softmaxVJP(gp[:n], w, dw)
	clear(dw)
	for j := 0; j < k; j++ {
		dw[j] += gYk
	}
	dw[k] += gH
	softmaxVJP(gp[n:2*n], h, dw)
	// Knot derivatives: d_n is d_0.
	k1 := (k + 1) % n
	gp[2*n+k] += gd0 * sigmoid(p[2*n+k]+softplusShift)
	gp[2*n+k1] += gd1 * sigmoid(p[2*n+k1]+softplusShift)
	gp[3*n] += gy // rotation
	return gy*dYdX + gl*dFdX
}

// softmaxVJP adds to ga the gradient through w = 2π softmax(a) given
// dL/dw = gw.
func softmaxVJP(ga, w, gw []float64) {
	dot := 0.0
	for i := range w {
		dot += w[i] * gw[i]
	}
	dot /= twoPi
	for i := range w {
		ga[i] += w[i] * (gw[i] - dot)
	}
}

func (sp *Spline) Inverse(p []float64, y float64, s []float64) (x, logd float64) {
	w, xk, h, yk, d := sp.knots(p, s)
	y = wrap(y - p[3*sp.Bins])
	k := bin(yk, y)
	W, H := w[k], h[k]
	sl := H / W
	d0, d1 := d[k], d[k+1]
	// Solve y − y_k = H (sξ² + d0 ξ(1−ξ))/(s + (d0+d1−2s)ξ(1−ξ)) for ξ ∈ [0, 1]:
	// a ξ² + b ξ + c = 0 with the stable root 2c/(−b − √(b²−4ac)).
	dy := y - yk[k]
	delta := d0 + d1 - 2*sl
	a := H*(sl-d0) + dy*delta
	b := H*d0 - dy*delta
	c := -sl * dy
	disc := math.Max(b*b-4*a*c, 0)
	xi := 2 * c / (-b - math.Sqrt(disc))
	xi = math.Min(math.Max(xi, 0), 1)
	x = xk[k] + xi*W
	r := newRQ(xi, sl, d0, d1)
	return x, r.logDeriv()
}

// NCP is a mixture of Components non-compact projections (Rezende et al.
// 2020) followed by a rotation:
//
//	h(x) = (1/m) Σ_i 2 atan(e^{s_i} tan(x/2)) (mod 2π, each term increasing on [0, 2π)),   then + t,
//	h'(x) = (1/m) Σ_i [e^{−s_i} cos²(x/2) + e^{s_i} sin²(x/2)]⁻¹.
//
// Parameters: s_1 … s_m, t. The inverse is found by bisection to rounding.
type NCP struct{ Components int }

// NewNCP returns the mixture of m ≥ 1 components.
func NewNCP(m int) (*NCP, error) {
	if m < 1 {
		return nil, fmt.Errorf("coupling: a non-compact projection mixture needs at least 1 component, got %d", m)
	}
	return &NCP{Components: m}, nil
}

func (n *NCP) Params() int     { return n.Components + 1 }
func (n *NCP) ScratchLen() int { return 0 }

// proj returns 2 atan(e^s tan(x/2)) ∈ [0, 2π) for x ∈ [0, 2π) and its
// derivatives with respect to x and s.
func proj(s, x float64) (y, dydx, dyds float64) {
	c, sn := math.Cos(x/2), math.Sin(x/2)
	es := math.Exp(s)
	// atan2 keeps the branch: the angle of (cos, e^s sin) in [0, π] for x ∈ [0, 2π).
	y = 2 * math.Atan2(es*sn, c)
	if y < 0 {
		y += twoPi
	}
	q := c*c/es + es*sn*sn
	dydx = 1 / q
	// dy/ds = 2 e^s sn c / (c² + e^{2s} sn²) = 2 sn c / q / ... (written out:)
	dyds = 2 * sn * c / (c*c/es + es*sn*sn)
	return
}

func (n *NCP) Forward(p []float64, x float64, _ []float64) (y, logd float64) {
	m := float64(n.Components)
	sum, der := 0.0, 0.0
	for _, s := range p[:n.Components] {
		yi, di, _ := proj(s, x)
		sum += yi
		der += di
	}
	return wrap(sum/m + p[n.Components]), math.Log(der / m)
}

func (n *NCP) VJP(p []float64, x, gy, gl float64, gp, _ []float64) float64 {
	m := float64(n.Components)
	der := 0.0
	for _, s := range p[:n.Components] {
		_, di, _ := proj(s, x)
		der += di
	}
	gx := 0.0
	for i, s := range p[:n.Components] {
		c, sn := math.Cos(x/2), math.Sin(x/2)
		es := math.Exp(s)
		q := c*c/es + es*sn*sn
		_, di, dyds := proj(s, x)
		// d(h')_i/dx = −q'/q², q' = (e^s − e^{−s}) sin(x/2) cos(x/2)
		dq := (es - 1/es) * sn * c
		dDdx := -dq * di * di
		// d(h')_i/ds = −(∂q/∂s)/q², ∂q/∂s = −c²/e^s + e^s sn²
		dDds := -(-c*c/es + es*sn*sn) / (q * q)
		gp[i] += gy*dyds/m + gl*dDds/der
		gx += gy*di/m + gl*dDdx/der
	}
	gp[n.Components] += gy
	return gx
}

func (n *NCP) Inverse(p []float64, y float64, s []float64) (x, logd float64) {
	target := wrap(y - p[n.Components])
	m := float64(n.Components)
	f := func(x float64) float64 {
		sum := 0.0
		for _, s := range p[:n.Components] {
			yi, _, _ := proj(s, x)
			sum += yi
		}
		return sum / m
	}
	lo, hi := 0.0, twoPi
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if f(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	x = (lo + hi) / 2
	_, logd = n.Forward(p, x, s)
	return x, logd
}
