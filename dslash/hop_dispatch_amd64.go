package dslash

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd ../internal/asmgen && go run ./dslash -out ../../dslash/hop_amd64.s -stubs ../../dslash/hop_amd64.go"

// hopFunc is the signature of the assembly hop kernels (hop_amd64.s).
type hopFunc func(out *complex128, outLo int, sites *int32, nsites int, in *complex128, inLo int, links, halo *complex128, nbr *int32, v int, x *complex128, kappa float64, stream bool, alpha float64, update bool) float64

// packFunc is the signature of the assembly halo packing (hop_amd64.s);
// entries points at the first projEntry of a run.
type packFunc func(dst *complex128, entries *int32, n int, in *complex128, inLo int, links *complex128)

// asmPack returns the assembly packing of path for nd, nc and dag, or nil.
func asmPack(path kernelPath, nd, nc int, dag bool) packFunc {
	if asmKernel(path, nd, nc, dag) == nil {
		return nil
	}
	set := [6]packFunc{pack2D1DAVX2, pack2D1DdagAVX2, pack2D3DAVX2, pack2D3DdagAVX2, pack4D3DAVX2, pack4D3DdagAVX2}
	if path == pathAVX512 {
		set = [6]packFunc{pack2D1DAVX512, pack2D1DdagAVX512, pack2D3DAVX512, pack2D3DdagAVX512, pack4D3DAVX512, pack4D3DdagAVX512}
	}
	i := 0
	switch {
	case nd == 2 && nc == 3:
		i = 2
	case nd == 4:
		i = 4
	}
	if dag {
		i++
	}
	return set[i]
}

// asmKernel returns the assembly kernel of path for nd, nc and dag, or nil
// where there is none or the CPU cannot run it.
func asmKernel(path kernelPath, nd, nc int, dag bool) hopFunc {
	var set [6]hopFunc // 2D U(1), 2D SU(3), 4D SU(3); D, D†
	switch {
	case path == pathAVX2 && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		set = [6]hopFunc{hop2D1DAVX2, hop2D1DdagAVX2, hop2D3DAVX2, hop2D3DdagAVX2, hop4D3DAVX2, hop4D3DdagAVX2}
	case path == pathAVX512 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasFMA:
		set = [6]hopFunc{hop2D1DAVX512, hop2D1DdagAVX512, hop2D3DAVX512, hop2D3DdagAVX512, hop4D3DAVX512, hop4D3DdagAVX512}
	default:
		return nil
	}
	i := 0
	switch {
	case nd == 2 && nc == 1:
	case nd == 2 && nc == 3:
		i = 2
	case nd == 4 && nc == 3:
		i = 4
	default:
		return nil
	}
	if dag {
		i++
	}
	return set[i]
}
