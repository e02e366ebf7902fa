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

// asmMicro returns the assembly micro-kernel of family a for T and its
// tile.
func asmMicro[T Float](a Arch) (microFunc[T], int, int) {
	var z T
	_, f32 := any(z).(float32)
	var f any
	var mr, nr int
	switch {
	case a == AVX512 && f32:
		f, mr, nr = kernF32AVX512, 12, 32
	case a == AVX512:
		f, mr, nr = kernF64AVX512, 12, 16
	case a == AVX2 && f32:
		f, mr, nr = kernF32AVX2, 6, 16
	default:
		f, mr, nr = kernF64AVX2, 6, 8
	}
	return microFunc[T](f.(func(int, *T, int, *T, *T, int, int))), mr, nr
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
