package pfflow

import (
	"fmt"
	"testing"

	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// BenchmarkModel times the pseudofermion flow of the reference model (L = 8,
// batch 64, EO, rows, n_PT = 6, H = 2, context 16, 8 layers) for one
// monomial: the heads, the layers forward and backward.
func BenchmarkModel(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			err := mpi.Run(1, func(c mpi.Comm) error {
				w, err := newWorld(c, []int{8, 8}, []int{1, 1}, Spec{Nc: 1, EvenOdd: true, Monomials: 1, Layers: 8,
					Partitions: []Partition{Rows}, NPT: 6, Hidden: 2, ContextHidden: 16, Gain: 0.5})
				if err != nil {
					return err
				}
				defer w.close()
				w.tape.Close()
				w.tape = nnlayers.NewTape(workers)
				const batch = 64
				theta := nnlayers.NewTensor(w.geo.Volume(), batch, 2)
				for i := range theta.Data {
					theta.Data[i] = float64(i%17) * 0.3
				}
				chi := randomField(w, batch, rng.New(1, "chi"), true)
				step := func() error {
					w.tape.Reset()
					w.tape.NoGrad = false
					links := U1Links(w.tape, theta)
					ctx, err := w.model.Context(w.tape, links)
					if err != nil {
						return err
					}
					phi, _, err := w.model.Conditional(0).Forward(w.tape, links, w.model.Heads(w.tape, ctx), chi)
					if err != nil {
						return err
					}
					for i := range phi.Grad {
						phi.Grad[i] = 1
					}
					return w.tape.Backward()
				}
				if err := step(); err != nil {
					return err
				}
				b.ResetTimer()
				for range b.N {
					if err := step(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
