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
					phi, _, err := w.model.Conditional(0).Forward(w.tape, links, ctx, chi)
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

// BenchmarkPTC times one PTC (2 → 2 features, one colour, 8 × 8) forward and
// backward at batch 16 (data in cache): ns per (site, member) row.
func BenchmarkPTC(b *testing.B) {
	err := mpi.Run(1, func(c mpi.Comm) error {
		w, err := newWorld(c, []int{8, 8}, []int{1, 1}, Spec{Nc: 1, EvenOdd: true, Monomials: 1, Layers: 1,
			Partitions: []Partition{Rows}, NPT: 2, Hidden: 2, ContextHidden: 4, Gain: 0.5})
		if err != nil {
			return err
		}
		defer w.close()
		w.tape.Close()
		w.tape = nnlayers.NewTape(1)
		const batch = 16
		v := w.geo.Volume()
		p := NewPTC(w.model.tr, 2, 2)
		links := nnlayers.NewTensor(v, batch, LinkChannels(2, 1))
		phi := nnlayers.NewTensor(v, batch, 4)
		m := nnlayers.NewTensor(v, batch, p.Params())
		for i := range links.Data {
			links.Data[i] = float64(i%7) * 0.1
		}
		for i := range phi.Data {
			phi.Data[i] = float64(i%5) * 0.1
		}
		for i := range m.Data {
			m.Data[i] = float64(i%3) * 0.1
		}
		step := func() error {
			w.tape.Reset()
			out, err := p.Apply(w.tape, links, phi, m, 0)
			if err != nil {
				return err
			}
			for i := range out.Grad {
				out.Grad[i] = 1
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
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*v*batch), "ns/row")
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
