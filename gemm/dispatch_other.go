//go:build !amd64

package gemm

func hasArch(Arch) bool { return false }

func asmVariants[T Float](Arch) []variant[T] {
	panic("gemm: no assembly kernels on this architecture")
}

func peakRounds(_ Arch, f32 bool, n int) int { return peakGo(f32, n) }
