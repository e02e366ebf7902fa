//go:build !amd64

package dslash

// hopFunc is the signature of the assembly hop kernels (amd64 only).
type hopFunc func(out *complex128, outLo int, sites *int32, nsites int, in *complex128, inLo int, links, halo *complex128, nbr *int32, v int, x *complex128, kappa float64, stream bool, alpha float64, update bool) float64

// asmKernel returns nil: this architecture has no assembly kernels.
func asmKernel(path kernelPath, nd, nc int, dag bool) hopFunc { return nil }

// packFunc is the signature of the assembly halo packing (amd64 only).
type packFunc func(dst *complex128, entries *int32, n int, in *complex128, inLo int, links *complex128)

// asmPack returns nil: this architecture has no assembly kernels.
func asmPack(path kernelPath, nd, nc int, dag bool) packFunc { return nil }
