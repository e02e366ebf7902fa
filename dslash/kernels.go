package dslash

//go:generate go run ./internal/genkernels

// Specialised hop kernels for the common cases (2D U(1), 2D SU(3), 4D SU(3))
// are generated into kernels_gen.go: the same arithmetic as the generic hop,
// written out with the γ matrices of gamma.go as constants and the projector
// signs as additions and subtractions. They are tested against the generic
// kernel and the reference. This file holds their helpers.

// sc returns s·z for real s.
func sc(z complex128, s float64) complex128 { return complex(s*real(z), s*imag(z)) }

// mi returns i·z.
func mi(z complex128) complex128 { return complex(-imag(z), real(z)) }

// c3 is a colour vector; a struct (not an array) so that the compiler keeps
// it in registers.
type c3 struct{ x, y, z complex128 }

func mv(u *[9]complex128, h c3) c3 {
	return c3{
		u[0]*h.x + u[1]*h.y + u[2]*h.z,
		u[3]*h.x + u[4]*h.y + u[5]*h.z,
		u[6]*h.x + u[7]*h.y + u[8]*h.z,
	}
}

// amv returns U† h.
func amv(u *[9]complex128, h c3) c3 {
	return c3{
		conjMul(u[0], h.x) + conjMul(u[3], h.y) + conjMul(u[6], h.z),
		conjMul(u[1], h.x) + conjMul(u[4], h.y) + conjMul(u[7], h.z),
		conjMul(u[2], h.x) + conjMul(u[5], h.y) + conjMul(u[8], h.z),
	}
}

// conjMul returns conj(a)·b.
func conjMul(a, b complex128) complex128 {
	return complex(real(a)*real(b)+imag(a)*imag(b), real(a)*imag(b)-imag(a)*real(b))
}
