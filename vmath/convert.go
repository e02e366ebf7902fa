package vmath

// Conversions between the precisions of the float32 networks (their
// tensors are float64). They are exact or correctly rounded (to nearest,
// ties to even) whatever the instructions, so the assembly gives the Go
// results bit for bit and is used wherever the CPU has AVX2.

// Narrow sets dst[i] = float32(src[i]) for i < len(dst) (src at least as
// long).
func Narrow(dst []float32, src []float64) {
	src = src[:len(dst)]
	k := 0
	if convAVX2 && len(dst) >= 4 {
		k = len(dst) &^ 3
		narrowAVX2(&dst[0], &src[0], k)
	}
	for i := k; i < len(dst); i++ {
		dst[i] = float32(src[i])
	}
}

// Widen sets dst[i] = float64(src[i]) for i < len(dst) (src at least as
// long).
func Widen(dst []float64, src []float32) {
	src = src[:len(dst)]
	k := 0
	if convAVX2 && len(dst) >= 4 {
		k = len(dst) &^ 3
		widenAVX2(&dst[0], &src[0], k)
	}
	for i := k; i < len(dst); i++ {
		dst[i] = float64(src[i])
	}
}

// AddWiden adds float64(src[i]) to dst[i] for i < len(dst) (src at least
// as long).
func AddWiden(dst []float64, src []float32) {
	src = src[:len(dst)]
	k := 0
	if convAVX2 && len(dst) >= 4 {
		k = len(dst) &^ 3
		addWidenAVX2(&dst[0], &src[0], k)
	}
	for i := k; i < len(dst); i++ {
		dst[i] += float64(src[i])
	}
}

// Add adds src[i] to dst[i] for i < len(dst) (src at least as long).
func Add(dst, src []float64) {
	src = src[:len(dst)]
	k := 0
	if convAVX2 && len(dst) >= 4 {
		k = len(dst) &^ 3
		addAVX2(&dst[0], &src[0], k)
	}
	for i := k; i < len(dst); i++ {
		dst[i] += src[i]
	}
}
