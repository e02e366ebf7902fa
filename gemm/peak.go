package gemm

import "time"

// PeakFlops measures the floating-point throughput of this core for
// element type T with the kernels of family a: flop/s of independent fused
// multiply–add chains on registers (no memory traffic), run for about d.
// It is the ceiling the achieved rate of a product is compared with.
func PeakFlops[T Float](a Arch, d time.Duration) float64 {
	if !Available(a) {
		return 0
	}
	var z T
	_, f32 := any(z).(float32)
	const rounds = 1 << 14
	peakRounds(a, f32, rounds) // warm up (clock, power state)
	best := 0.0
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		per := peakRounds(a, f32, rounds)
		if s := time.Since(t0).Seconds(); s > 0 {
			best = max(best, float64(per)*rounds/s)
		}
	}
	return best
}

var peakSink float64

// peakGo runs n rounds of 8 independent scalar multiply–add chains.
func peakGo(f32 bool, n int) int {
	x0, x1, x2, x3, x4, x5, x6, x7 := 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7
	const m, s = 0.999, 1e-3
	for range n {
		x0 = x0*m + s
		x1 = x1*m + s
		x2 = x2*m + s
		x3 = x3*m + s
		x4 = x4*m + s
		x5 = x5*m + s
		x6 = x6*m + s
		x7 = x7*m + s
	}
	peakSink = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7
	return 16
}
