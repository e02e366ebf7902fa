package dslash

//go:generate go run ./internal/genkernels

// Specialised hop kernels for the common cases (2D U(1), 2D SU(3), 4D SU(3))
// are generated into kernels_gen.go: the same arithmetic as the generic hop,
// written out with the γ matrices of gamma.go as constants and the projector
// signs as additions and subtractions. They are tested against the generic
// kernel and the reference. This file holds their helpers.

// kernelPath selects an implementation of the hop; every path computes the
// same operator and the tests run each one the CPU and build allow.
type kernelPath int

const (
	pathAuto      kernelPath = iota // the fastest this CPU and build run
	pathGeneric                     // the generic Go hop (any Nd, Nc)
	pathGenerated                   // straight-line Go from internal/genkernels (kernels_gen.go)
	pathSIMD                        // simd/archsimd, 4D SU(3), GOEXPERIMENT=simd builds only
	pathAVX2                        // assembly, AVX2 + FMA (hop_amd64.s)
	pathAVX512                      // assembly, AVX-512 VL with embedded broadcasts (hop_amd64.s)
)

func (p kernelPath) String() string {
	return [...]string{"auto", "generic", "generated", "simd", "avx2", "avx512"}[p]
}

// runs reports whether path has a kernel for nd, nc on this CPU and build.
func (p kernelPath) runs(nd, nc int) bool {
	switch p {
	case pathAuto, pathGeneric:
		return true
	case pathGenerated:
		return (nd == 2 && (nc == 1 || nc == 3)) || (nd == 4 && nc == 3)
	case pathSIMD:
		return simdKernels && nd == 4 && nc == 3
	default:
		return asmKernel(p, nd, nc, false) != nil
	}
}

// bestPath is the path auto takes: the assembly where the CPU runs it
// (AVX-512 first), then the archsimd kernel, the generated Go, the generic Go.
func bestPath(nd, nc int) kernelPath {
	for _, p := range []kernelPath{pathAVX512, pathAVX2, pathSIMD, pathGenerated} {
		if p.runs(nd, nc) {
			return p
		}
	}
	return pathGeneric
}

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

// Kernel names the implementation of the hop this CPU and build run for
// the common cases (2D U(1), 2D SU(3), 4D SU(3)): avx512, avx2 (assembly),
// simd (archsimd, 4D SU(3) only), generated (Go) — results differ between
// them in the last bits (fused multiply–adds, order of sums).
func Kernel() string { return bestPath(2, 1).String() }
