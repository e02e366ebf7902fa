package mpi_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"pfmpi/mpi"
)

// The tests in this file exercise behaviour specific to the in-process
// backend (failure handling, shared memory); they run in every build.

func TestRunAbort(t *testing.T) {
	err := mpi.Run(3, func(c mpi.Comm) error {
		if c.Rank() == 1 {
			c.Abort(7)
		}
		// The others block in a collective that rank 1 never reaches.
		c.Barrier()
		return nil
	})
	var ae *mpi.AbortError
	if !errors.As(err, &ae) || ae.Rank != 1 || ae.Code != 7 {
		t.Fatalf("Run = %v, want rank 1's Abort(7)", err)
	}
}

func TestRunErrorAndPanic(t *testing.T) {
	err := mpi.Run(2, func(c mpi.Comm) error {
		if c.Rank() == 0 {
			return errors.New("bad input")
		}
		c.Sendrecv(nil, 0, 0, nil, 0, 0) // would wait forever without the abort
		return nil
	})
	var re *mpi.RankError
	if !errors.As(err, &re) || re.Rank != 0 || re.Err.Error() != "bad input" {
		t.Fatalf("Run = %v, want rank 0's error", err)
	}
	err = mpi.Run(2, func(c mpi.Comm) error {
		if c.Rank() == 1 {
			var m map[int]int
			m[0] = 1
		}
		c.Barrier()
		return nil
	})
	if !errors.As(err, &re) || re.Rank != 1 || !strings.Contains(err.Error(), "rank 1: panic: assignment to entry in nil map") {
		t.Fatalf("Run = %v, want rank 1's panic", err)
	}
}

func TestTruncationPanics(t *testing.T) {
	err := mpi.Run(2, func(c mpi.Comm) error {
		peer := 1 - c.Rank()
		c.Sendrecv(make([]byte, 8), peer, 0, make([]byte, 4), peer, 0)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Run = %v, want a truncation error", err)
	}
}

func TestBarrierOrders(t *testing.T) {
	const n = 5
	var arrived atomic.Int32
	err := mpi.Run(n, func(c mpi.Comm) error {
		for round := int32(1); round <= 3; round++ {
			arrived.Add(1)
			c.Barrier()
			if got := arrived.Load(); got < round*n {
				return errors.New("left the barrier before every rank arrived")
			}
			c.Barrier()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalNoAllocation(t *testing.T) {
	err := mpi.Run(1, func(c mpi.Comm) error {
		send, recv := make([]byte, 64), make([]byte, 64)
		x := make([]float64, 16)
		ex := c.NewExchange([]mpi.Transfer{{Peer: 0, Tag: 1, Buf: send}}, []mpi.Transfer{{Peer: 0, Tag: 1, Buf: recv}})
		allocs := testing.AllocsPerRun(100, func() {
			c.Sendrecv(send, 0, 3, recv, 0, 3)
			ex.Start()
			ex.Wait()
			c.Allreduce(mpi.Sum, x)
		})
		if allocs != 0 {
			return errors.New("steady-state communication allocates")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInitWithoutMPI(t *testing.T) {
	if mpi.Backend != "in-process" {
		t.Skip("MPI backend: Init belongs to TestMain")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	if _, err := mpi.Init(); err == nil || !strings.Contains(err.Error(), "-tags mpi") {
		t.Fatalf("Init under a 4-copy mpirun = %v, want advice to rebuild with -tags mpi", err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "1")
	c, err := mpi.Init()
	if err != nil || c.Size() != 1 || c.Rank() != 0 {
		t.Fatalf("Init = %v, %v; want a one-rank world", c, err)
	}
}

// TestSelf: collectives of a one-rank communicator are identities, and
// several may be used from goroutines at once.
func TestSelf(t *testing.T) {
	done := make(chan error, 4)
	for range 4 {
		go func() {
			c := mpi.Self()
			x := []float64{1, 2}
			c.Allreduce(mpi.Sum, x)
			b := []byte{7}
			c.Bcast(0, b)
			if c.Rank() != 0 || c.Size() != 1 || x[0] != 1 || x[1] != 2 || b[0] != 7 {
				done <- fmt.Errorf("Self: rank %d size %d, %v %v", c.Rank(), c.Size(), x, b)
				return
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkLocalAllreduce times a one-value global sum between in-process
// ranks: the latency every CG iteration pays a few times.
func BenchmarkLocalAllreduce(b *testing.B) {
	for _, n := range []int{2, 4} {
		b.Run(fmt.Sprintf("ranks%d", n), func(b *testing.B) {
			err := mpi.Run(n, func(c mpi.Comm) error {
				x := []float64{1}
				for i := 0; i < b.N; i++ {
					c.Allreduce(mpi.Sum, x)
					x[0] = 1
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
