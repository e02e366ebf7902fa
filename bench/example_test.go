package bench_test

import (
	"fmt"

	"pfmpi/bench"
	"pfmpi/group"
)

// A CG iteration on a 32⁴ SU(3) lattice over 256 ranks, with compute per
// site as measured on one core and an assumed network: the grid, the block
// per rank, the predicted time and the strong-scaling efficiency.
func ExampleModel_Predict() {
	m := bench.Model{
		Site:       map[string]float64{"cg/su3/4": 543e-9}, // seconds per site, one rank
		Latency:    2e-6,                                   // per message
		Bandwidth:  5e9,                                    // bytes per second per rank
		SumLatency: 3e-6,                                   // per stage of a global sum
	}
	p := m.Predict("cg", group.SU3, []int{32, 32, 32, 32}, 256)
	fmt.Printf("grid %s, %s sites per rank: %.2f ms per iteration, efficiency %.0f %%\n",
		bench.Dims(p.Grid), bench.Dims([]int{32 / p.Grid[0], 32 / p.Grid[1], 32 / p.Grid[2], 32 / p.Grid[3]}),
		p.Seconds*1e3, 100*p.Efficiency)
	// Output: grid 4x4x4x4, 8x8x8x8 sites per rank: 2.62 ms per iteration, efficiency 85 %
}
