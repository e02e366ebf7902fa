package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMul times the products of the reference model's context
// networks (L = 8, batch 64: 4096 rows): a pseudofermion head forward
// (4096 × 144 · 144 × 248) and with the 32 heads fused (× 7936), the
// input gradient of the fused heads (4096 × 7936 · 7936 × 144), a head's
// weight gradient (144 × 4096 · 4096 × 248) and a gauge context layer
// (4096 × 288 · 288 × 32), with B packed once as a layer packs its weights.
func BenchmarkMul(b *testing.B) {
	shapes := []struct {
		name    string
		m, n, k int
		tA      bool
	}{
		{"head", 4096, 248, 144, false},
		{"heads-fused", 4096, 7936, 144, false},
		{"heads-fused-96rows", 96, 7936, 144, false},
		{"heads-dx-96rows", 96, 144, 7936, false},
		{"head-dw-64cols", 144, 64, 4096, true},
		{"heads-dx", 4096, 144, 7936, false},
		{"head-dw", 144, 248, 4096, true},
		{"gauge", 4096, 32, 288, false},
	}
	for _, a := range Archs() {
		for _, f32 := range []bool{false, true} {
			for _, sh := range shapes {
				name := fmt.Sprintf("%s/f32=%v/%s", a, f32, sh.name)
				if f32 {
					b.Run(name, func(b *testing.B) { benchMul[float32](b, a, sh.m, sh.n, sh.k, sh.tA) })
				} else {
					b.Run(name, func(b *testing.B) { benchMul[float64](b, a, sh.m, sh.n, sh.k, sh.tA) })
				}
			}
		}
	}
}

func benchMul[T Float](b *testing.B, a Arch, m, n, kk int, tA bool) {
	k := MustNew[T](a)
	r := rand.New(rand.NewPCG(1, 2))
	A := randomDense[T](r, m, kk, 0, tA)
	B := randomDense[T](r, kk, n, 0, false)
	c := make([]T, m*n)
	pb := new(Packed[T])
	k.PackB(pb, &B, kk, n)
	var w Workspace[T]
	var as ASource[T] = &A
	for b.Loop() {
		k.Mul(&w, m, n, kk, as, pb, c, n, false, nil)
	}
	b.ReportMetric(float64(Flops(m, n, kk))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
