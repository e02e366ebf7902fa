package halo_test

import (
	"fmt"
	"testing"
	"time"

	"pfmpi/decomp"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

// BenchmarkHalo times, in one run, the depth-1 halo exchange of a fermion
// field (Ns·Nc complex values per site, Nc = 3) on 2 ranks and a raw Sendrecv
// of the same bytes between the same ranks, and reports both and their ratio.
// start-ns/op is the part spent in Start: packing, posting and on-rank copies.
//
// Default build: the in-process backend (2 goroutine ranks). MPI backend:
//
//	go test -tags mpi -run '^$' -bench Halo -benchtime 2000x -exec 'mpirun -n 2' ./halo
//
// Under mpirun every rank must run the same number of iterations, so give
// -benchtime as an iteration count (Nx); the benchmark fails otherwise.
func BenchmarkHalo(b *testing.B) {
	for _, c := range []struct {
		name       string
		dims, grid []int
		perSite    int
	}{
		{"2D-256x256-Nc3", []int{256, 256}, []int{2, 1}, 2 * 3},
		{"4D-16x16x16x16-Nc3", []int{16, 16, 16, 16}, []int{2, 1, 1, 1}, 4 * 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			mpitest.Run(b, 2, func(comm mpi.Comm) error {
				phases := make([]complex128, len(c.dims))
				for mu := range phases {
					phases[mu] = 1
				}
				phases[0] = -1
				_, z, h, err := setup[complex128](comm, c.dims, c.grid, 1, decomp.Faces, c.perSite, phases)
				if err != nil {
					return err
				}
				defer h.Close()
				f := make([]complex128, z.Len()*c.perSite)
				for i := range f {
					f[i] = complex(float64(i), 1)
				}
				remote, local := h.Bytes(decomp.All)
				send, recv := make([]byte, remote), make([]byte, remote)
				peer := 1 - comm.Rank()
				if lo, hi := mpi.MaxFloat64(comm, float64(b.N)), -mpi.MaxFloat64(comm, -float64(b.N)); lo != hi {
					return fmt.Errorf("ranks run different iteration counts (%v, %v): use -benchtime Nx under mpirun", lo, hi)
				}
				// Warm up both paths, then start the clock together.
				h.Exchange(f, decomp.All)
				comm.Sendrecv(send, peer, 1, recv, peer, 1)
				comm.Barrier()
				if comm.Rank() == 0 {
					b.ResetTimer()
				}
				var tHalo, tRaw, tStart time.Duration
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					h.Start(f, decomp.All)
					ta := time.Now()
					h.Finish(f, decomp.All)
					tStart += ta.Sub(t0)
					t1 := time.Now()
					comm.Sendrecv(send, peer, 1, recv, peer, 1)
					tRaw += time.Since(t1)
					tHalo += t1.Sub(t0)
				}
				comm.Barrier()
				if comm.Rank() == 0 {
					b.StopTimer()
					n := float64(b.N)
					b.ReportMetric(float64(tHalo.Nanoseconds())/n, "halo-ns/op")
					b.ReportMetric(float64(tRaw.Nanoseconds())/n, "raw-ns/op")
					b.ReportMetric(float64(tHalo)/float64(tRaw), "halo/raw")
					b.ReportMetric(float64(remote)*n/tHalo.Seconds()/1e9, "halo-GB/s")
					b.ReportMetric(float64(remote)*n/tRaw.Seconds()/1e9, "raw-GB/s")
					b.ReportMetric(float64(tStart.Nanoseconds())/n, "start-ns/op")
					b.ReportMetric(float64(local), "local-B")
				}
				return nil
			})
		})
	}
}
