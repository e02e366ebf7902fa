package gemm

import (
	"fmt"
	"testing"
)

// BenchmarkMicro times the micro-kernels alone on panels in L1 (kc = 256):
// the ceiling of the products.
func BenchmarkMicro(b *testing.B) {
	for _, a := range Archs() {
		for i := range MustNew[float64](a).vars {
			b.Run(fmt.Sprintf("%s/f64/%d", a, i), func(b *testing.B) { benchMicro[float64](b, a, i) })
		}
		for i := range MustNew[float32](a).vars {
			b.Run(fmt.Sprintf("%s/f32/%d", a, i), func(b *testing.B) { benchMicro[float32](b, a, i) })
		}
	}
}

func benchMicro[T Float](b *testing.B, a Arch, i int) {
	k := MustNew[T](a).vars[i]
	const kc = 256
	ap := make([]T, k.mr*kc)
	bp := make([]T, k.nr*kc)
	c := make([]T, k.mr*k.nr)
	for i := range ap {
		ap[i] = T(i%7) * 0.01
	}
	for i := range bp {
		bp[i] = T(i%5) * 0.01
	}
	for b.Loop() {
		k.micro(kc, &ap[0], kc, &bp[0], &c[0], k.nr, 1, 1)
	}
	b.ReportMetric(float64(2*k.mr*k.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
