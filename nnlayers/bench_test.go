package nnlayers

import (
	"fmt"
	"testing"

	"pfmpi/mpi"
	"pfmpi/rng"
)

// BenchmarkConvForwardBackward times the paper's context-network sizes:
// 4 → 32 → 32 channels, kernel 3, batch 64, on L×L, forward and backward
// (3× the forward flops), on 1 and 2 goroutines, and the reference
// model's gauge context network (6 → 32 → 32 → 18, dilations 1, 2, 3,
// batch 16: a micro-batch) in both precisions.
func BenchmarkConvForwardBackward(b *testing.B) {
	type net struct {
		name      string
		l, batch  int
		ch, dil   []int
		workers   int
		precision Precision
	}
	var nets []net
	for _, l := range []int{8, 16} {
		for _, workers := range []int{1, 2} {
			nets = append(nets, net{fmt.Sprintf("L=%d/workers=%d", l, workers), l, 64, []int{4, 32, 32}, nil, workers, Float64})
		}
	}
	for _, p := range []Precision{Float64, Float32} {
		nets = append(nets, net{"gauge/" + p.String(), 8, 16, []int{6, 32, 32, 18}, []int{1, 2, 3}, 1, p})
	}
	for _, nt := range nets {
		l, workers := nt.l, nt.workers
		{
			b.Run(nt.name, func(b *testing.B) {
				err := mpi.Run(1, func(c mpi.Comm) error {
					geo, err := newGeometry(c, []int{l, l}, []int{1, 1})
					if err != nil {
						return err
					}
					defer geo.Close()
					net, err := ConvNet(geo, "bench", ConvNetSpec{Channels: nt.ch, Kernel: 3, Dilations: nt.dil, Act: ELU, Final: Identity,
						Seed: 1, Precision: nt.precision})
					if err != nil {
						return err
					}
					tape := NewTape(workers)
					defer tape.Close()
					batch := nt.batch
					x := randomTensor(geo, batch, nt.ch[0], 0, rng.New(1, "bench"))
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
