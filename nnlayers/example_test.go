package nnlayers_test

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
)

// A context network on an 8×8 lattice split over two ranks: constant input
// channels (x mod 4), a 2 → 8 → 2 convolution stack, one backward pass and
// the gradient all-reduce.
func Example() {
	err := mpi.Run(2, func(comm mpi.Comm) error {
		lat, err := decomp.NewLattice([]int{8, 8}, []int{2, 1}, false)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(comm.Rank())
		geo := nnlayers.NewGeometry(comm, ly)
		defer geo.Close()
		net, err := nnlayers.ConvNet(geo, "ctx", nnlayers.ConvNetSpec{
			Channels: []int{2, 8, 2}, Kernel: 3, Act: nnlayers.ELU, Final: nnlayers.Tanh, Seed: 1})
		if err != nil {
			return err
		}
		const batch = 4
		x := nnlayers.Constant(geo, batch, 2, func(x []int, ch []float64) {
			ch[0], ch[1] = float64(x[0]%4), float64(x[1]%4)
		})
		tape := nnlayers.NewTape(0)
		defer tape.Close()
		y := net.Apply(tape, x)
		for i := range y.Grad {
			y.Grad[i] = 1 // L = Σ y
		}
		tape.Backward()
		nnlayers.AllreduceGrads(comm, net.Params(), nil)
		if comm.Rank() == 0 {
			fmt.Printf("%d parameters, output %d×%d×%d per rank, gradient norm > 0: %v\n",
				net.Params().Size(), y.V, y.B, y.C, net.Params().GradNorm() > 0)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 298 parameters, output 32×4×2 per rank, gradient norm > 0: true
}
