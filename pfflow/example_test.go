package pfflow_test

import (
	"fmt"
	"math"

	"pfmpi/decomp"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
)

// A conditional flow for an even/odd preconditioned pseudofermion on a 4×4
// U(1) lattice: draw χ, map it to φ given the links, and read off
// log q(φ|U) = log r(χ) − Σ log J.
func ExampleConditional() {
	err := mpi.Run(1, func(c mpi.Comm) error {
		lat, err := decomp.NewLattice([]int{4, 4}, []int{1, 1}, true)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(0)
		geo := nnlayers.NewGeometry(c, ly)
		defer geo.Close()
		m, err := pfflow.New(geo, pfflow.Spec{Nc: 1, EvenOdd: true, Monomials: 1, Layers: 4,
			Partitions: []pfflow.Partition{pfflow.Rows}, NPT: 6, Hidden: 2, ContextHidden: 8, Seed: 1, Gain: 0.5})
		if err != nil {
			return err
		}
		defer m.Close()
		t := nnlayers.NewTape(1)
		defer t.Close()
		t.NoGrad = true
		// Links from angles θ_μ(x) (here all zero: the free field).
		theta := nnlayers.NewTensor(ly.Volume(), 1, 2)
		links := pfflow.U1Links(t, theta)
		ctx, err := m.Context(t, links)
		if err != nil {
			return err
		}
		flow := m.Conditional(0)
		chi := flow.Prior(1, 0, rng.New(7, "example"))
		_, logJ, err := flow.Forward(t, links, ctx, chi)
		if err != nil {
			return err
		}
		logq := []float64{0}
		flow.LogPrior(chi, logq)
		for _, v := range logJ.Data {
			logq[0] -= v
		}
		fmt.Printf("%d complex components, %d layers, log q finite: %v\n", m.Dof(), len(flow.Layers()), !math.IsInf(logq[0], 0) && !math.IsNaN(logq[0]))
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: 16 complex components, 4 layers, log q finite: true
}
