package gemm

import "golang.org/x/sys/cpu"

func hasArch(a Arch) bool {
	switch a {
	case AVX2:
		return cpu.X86.HasAVX2 && cpu.X86.HasFMA
	case AVX512:
		return cpu.X86.HasAVX512F
	}
	return false
}

// asmVariants returns the assembly micro-kernels of family a for T, the
// widest first.
func asmVariants[T Float](a Arch) []variant[T] {
	var z T
	_, f32 := any(z).(float32)
	conv := func(f any) microFunc[T] {
		return microFunc[T](f.(func(int, *T, int, *T, *T, int, int, int)))
	}
	switch {
	case a == AVX512 && f32:
		return []variant[T]{{6, 64, conv(kernF32AVX512)}, {12, 32, conv(kernF32AVX512N)}, {12, 16, conv(kernF32AVX512S)}}
	case a == AVX512:
		return []variant[T]{{6, 32, conv(kernF64AVX512)}, {12, 16, conv(kernF64AVX512N)}}
	case a == AVX2 && f32:
		return []variant[T]{{6, 16, conv(kernF32AVX2)}}
	default:
		return []variant[T]{{6, 8, conv(kernF64AVX2)}}
	}
}

// peakRounds runs n rounds of the register-only FMA kernel of family a and
// returns the flops of one round.
func peakRounds(a Arch, f32 bool, n int) (flopsPerRound int) {
	switch {
	case a == AVX512 && f32:
		peakF32AVX512(n)
		return 24 * 16 * 2
	case a == AVX512:
		peakF64AVX512(n)
		return 24 * 8 * 2
	case a == AVX2 && f32:
		peakF32AVX2(n)
		return 12 * 8 * 2
	case a == AVX2:
		peakF64AVX2(n)
		return 12 * 4 * 2
	}
	return peakGo(f32, n)
}
