package dslash

import (
	"fmt"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// BenchmarkWilsonM times M on one rank and reports GFLOP/s and GB/s by the
// operator's own count (Cost: no cache reuse).
func BenchmarkWilsonM(b *testing.B) {
	for _, c := range []struct {
		dims []int
		nc   int
	}{
		{[]int{64, 64}, 1}, {[]int{256, 256}, 1}, {[]int{1024, 1024}, 1},
		{[]int{32, 32}, 3}, {[]int{128, 128}, 3}, {[]int{256, 256}, 3},
		{[]int{8, 8, 8, 8}, 3}, {[]int{12, 12, 12, 12}, 3}, {[]int{16, 16, 16, 16}, 3},
	} {
		for _, path := range []kernelPath{pathGenerated, pathSIMD, pathAVX2, pathAVX512} {
			if !path.runs(len(c.dims), c.nc) {
				continue
			}
			name := fmt.Sprintf("Nc%d/%v/%v", c.nc, c.dims, path)
			b.Run(name, func(b *testing.B) {
				mpitest.Run(b, 1, func(comm mpi.Comm) error {
					w, err := setup(comm, c.dims, nil, c.nc, 0.1)
					if err != nil {
						return err
					}
					defer w.Close()
					w.setKernel(path)
					in := randomSpinor(w, rng.New(1, "bench"))
					out := make([]complex128, len(in))
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						w.M(out, in)
					}
					b.StopTimer()
					cost := w.Cost()
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(cost.Flops)/sec/1e9, "GFLOP/s")
					b.ReportMetric(float64(cost.Bytes)/sec/1e9, "GB/s")
					b.ReportMetric(sec*1e9/float64(w.v), "ns/site")
					return nil
				})
			})
		}
	}
}
