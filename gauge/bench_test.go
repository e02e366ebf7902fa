package gauge_test

import (
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// BenchmarkGauge times the plaquette sum and the force on one rank and
// reports the time per link. Flops: an SU(3) product is 198 real flops
// (27 complex multiplications, 18 additions); the force needs 6(D−1)+1
// products per link, the plaquette sum 3 per plaquette.
func BenchmarkGauge(b *testing.B) {
	for _, c := range []struct {
		name string
		dims []int
		nc   int
	}{
		{"U1-2D-64x64", []int{64, 64}, 1},
		{"SU3-2D-32x32", []int{32, 32}, 3},
		{"SU3-4D-8x8x8x8", []int{8, 8, 8, 8}, 3},
	} {
		mpitest.Run(b, 1, func(comm mpi.Comm) error {
			grid := make([]int, len(c.dims))
			for i := range grid {
				grid[i] = 1
			}
			sp, err := newSpace(comm, c.dims, grid, c.nc)
			if err != nil {
				return err
			}
			defer sp.Close()
			u := sp.NewField()
			u.SetHot(rng.New(1, "bench"))
			f := sp.NewAlgebra()
			links := float64(sp.Layout().Volume() * sp.Nd())
			b.Run(c.name+"/force", func(b *testing.B) {
				for b.Loop() {
					u.Force(1, f)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/links, "ns/link")
				if c.nc == 3 {
					flops := links * float64(6*(sp.Nd()-1)+1) * 198
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				}
			})
			b.Run(c.name+"/plaquette", func(b *testing.B) {
				for b.Loop() {
					u.PlaquetteSum()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/links, "ns/link")
			})
			return nil
		})
	}
}
