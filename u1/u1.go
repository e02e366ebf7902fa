package u1

import (
	"math"
	"math/cmplx"

	"pfmpi/rng"
)

// Exp returns e^x for x in u(1) (purely imaginary): e^{i Im x}.
func Exp(x complex128) complex128 { return cmplx.Rect(1, imag(x)) }

// FromAngle returns e^{iθ}.
func FromAngle(theta float64) complex128 { return cmplx.Rect(1, theta) }

// Angle returns θ ∈ (−π, π] with z = |z| e^{iθ}.
func Angle(z complex128) float64 { return cmplx.Phase(z) }

// WrapAngle maps θ to (−π, π].
func WrapAngle(theta float64) float64 {
	r := math.Remainder(theta, 2*math.Pi) // in [−π, π]
	if r <= -math.Pi {
		r += 2 * math.Pi
	}
	return r
}

// Project returns z/|z|, the nearest element of U(1).
func Project(z complex128) complex128 {
	a := cmplx.Abs(z)
	if a == 0 {
		return 1
	}
	return z / complex(a, 0)
}

// TA returns the anti-Hermitian part i Im z.
func TA(z complex128) complex128 { return complex(0, imag(z)) }

// Components returns x with X = x·i.
func Components(x complex128) float64 { return imag(x) }

// Haar returns a Haar-random element e^{iθ}, θ uniform.
func Haar(s *rng.Stream) complex128 { return s.Phase() }

// NearIdentity returns e^{iεω} with ω standard normal.
func NearIdentity(s *rng.Stream, eps float64) complex128 { return FromAngle(eps * s.Normal()) }
