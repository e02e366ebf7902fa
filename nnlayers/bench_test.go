package nnlayers

import (
	"fmt"
	"testing"

	"pfmpi/mpi"
	"pfmpi/rng"
)

// BenchmarkConvForwardBackward times the paper's context-network sizes:
// 4 → 32 → 32 channels, kernel 3, batch 64, on L×L, forward and backward
// (3× the forward flops), on 1 and 2 goroutines.
func BenchmarkConvForwardBackward(b *testing.B) {
	for _, l := range []int{8, 16} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("L=%d/workers=%d", l, workers), func(b *testing.B) {
				err := mpi.Run(1, func(c mpi.Comm) error {
					geo, err := newGeometry(c, []int{l, l}, []int{1, 1})
					if err != nil {
						return err
					}
					defer geo.Close()
					net, err := ConvNet(geo, "bench", ConvNetSpec{Channels: []int{4, 32, 32}, Kernel: 3, Act: ELU, Final: Identity, Seed: 1})
					if err != nil {
						return err
					}
					tape := NewTape(workers)
					defer tape.Close()
					const batch = 64
					x := randomTensor(geo, batch, 4, 0, rng.New(1, "bench"))
					step := func() {
						tape.Reset()
						y := net.Apply(tape, x)
						for i := range y.Grad {
							y.Grad[i] = 1
						}
						tape.Backward()
					}
					step() // size the pools
					flops := 3 * net.Flops(batch)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						step()
					}
					b.ReportMetric(float64(flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkHeads times the reference model's pseudofermion heads: a bank of
// 32 convolutions 16 → 248 (kernel 3, tanh), each cut into slices of 8 and
// 6 × 40 channels, on 8 × 8 with batch 16 (a micro-batch of the training
// step) and 64, forward and backward.
func BenchmarkHeads(b *testing.B) {
	for _, c := range []struct {
		prec  Precision
		batch int
	}{{Float64, 16}, {Float64, 64}, {Float32, 16}, {Float32, 64}} {
		prec, batch := c.prec, c.batch
		b.Run(fmt.Sprintf("%v/batch=%d", prec, batch), func(b *testing.B) {
			err := mpi.Run(1, func(c mpi.Comm) error {
				geo, err := newGeometry(c, []int{8, 8}, []int{1, 1})
				if err != nil {
					return err
				}
				defer geo.Close()
				var banks []*Bank
				var ps Params
				for h := range 32 {
					cv, err := NewConv(geo, fmt.Sprintf("head%d", h), 16, 248, 3, 1)
					if err != nil {
						return err
					}
					cv.InitXavier(1, 0.5)
					cv.SetActivation(Tanh)
					cv.SetPrecision(prec)
					ms := []Outputs{cv.Outputs(0, 8)}
					for j := range 6 {
						ms = append(ms, cv.Outputs(8+40*j, 48+40*j))
					}
					bank, err := NewBank(ms...)
					if err != nil {
						return err
					}
					banks = append(banks, bank)
					ps = append(ps, cv.Params()...)
				}
				tape := NewTape(1)
				defer tape.Close()
				x := randomTensor(geo, batch, 16, 0, rng.New(1, "bench"))
				flops := int64(0)
				for _, bank := range banks {
					flops += 3 * bank.Flops(batch)
				}
				step := func() {
					tape.Reset()
					for _, bank := range banks {
						for _, y := range bank.Apply(tape, x) {
							for i := range y.Grad {
								y.Grad[i] = 1e-3
							}
						}
					}
					ps.ZeroGrad()
					tape.Backward()
				}
				step()
				b.ResetTimer()
				for range b.N {
					step()
				}
				b.ReportMetric(float64(flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
