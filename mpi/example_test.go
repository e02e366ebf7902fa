package mpi_test

import (
	"fmt"

	"pfmpi/mpi"
)

// Four in-process ranks sum their rank numbers; the sum is the same, bit for
// bit, on every rank.
func ExampleRun() {
	err := mpi.Run(4, func(c mpi.Comm) error {
		total := mpi.SumFloat64(c, float64(c.Rank()))
		if c.Rank() == 0 {
			fmt.Printf("%d ranks, sum of ranks %v\n", c.Size(), total)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: 4 ranks, sum of ranks 6
}

// A persistent exchange is built once and started many times: here each rank
// passes a number around a ring.
func ExampleComm_NewExchange() {
	_ = mpi.Run(3, func(c mpi.Comm) error {
		next, prev := (c.Rank()+1)%c.Size(), (c.Rank()+c.Size()-1)%c.Size()
		out, in := []float64{float64(c.Rank())}, []float64{0}
		ex := c.NewExchange(
			[]mpi.Transfer{{Peer: next, Tag: 0, Buf: mpi.Bytes(out)}},
			[]mpi.Transfer{{Peer: prev, Tag: 0, Buf: mpi.Bytes(in)}})
		defer ex.Free()
		for range c.Size() {
			ex.Start()
			// ... compute here while the messages travel ...
			ex.Wait()
			out[0] = in[0]
		}
		if c.Rank() == 0 {
			fmt.Println("after a full turn rank 0 holds", in[0])
		}
		return nil
	})
	// Output: after a full turn rank 0 holds 0
}
