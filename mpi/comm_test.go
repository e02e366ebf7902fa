package mpi_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

var sizes = []int{1, 2, 3, 4}

// payload is a message that says who sent it, to whom and with which tag.
func payload(src, dst, tag, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(src*31 + dst*7 + tag*3 + i)
	}
	return b
}

func TestSendrecvRing(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				r, p := c.Rank(), c.Size()
				next, prev := (r+1)%p, (r+p-1)%p
				got := make([]byte, 100)
				c.Sendrecv(payload(r, next, 4, 100), next, 4, got, prev, 4)
				if want := payload(prev, r, 4, 100); !bytes.Equal(got, want) {
					return fmt.Errorf("ring message from %d corrupted", prev)
				}
				// A shorter message than the receive buffer is allowed.
				short := make([]byte, 10)
				c.Sendrecv(payload(r, prev, 5, 3), prev, 5, short, next, 5)
				if !bytes.Equal(short[:3], payload(next, r, 5, 3)) {
					return fmt.Errorf("short message from %d corrupted", next)
				}
				return nil
			})
		})
	}
}

// TestExchangeMatching checks MPI's matching rules: receives match sends by
// tag regardless of posting order, and messages with equal (source, tag) are
// received in the order they were sent.
func TestExchangeMatching(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				r, p := c.Rank(), c.Size()
				next, prev := (r+1)%p, (r+p-1)%p
				// Sends, in order: tag 5, tag 7, tag 9 (first), tag 9 (second).
				sends := []mpi.Transfer{
					{Peer: next, Tag: 5, Buf: payload(r, next, 5, 8)},
					{Peer: next, Tag: 7, Buf: payload(r, next, 7, 16)},
					{Peer: next, Tag: 9, Buf: payload(r, next, 9, 4)},
					{Peer: next, Tag: 9, Buf: payload(r, next, 10, 4)},
				}
				// Receives posted in another order.
				recvs := []mpi.Transfer{
					{Peer: prev, Tag: 9, Buf: make([]byte, 4)},
					{Peer: prev, Tag: 7, Buf: make([]byte, 16)},
					{Peer: prev, Tag: 9, Buf: make([]byte, 4)},
					{Peer: prev, Tag: 5, Buf: make([]byte, 8)},
				}
				want := [][]byte{payload(prev, r, 9, 4), payload(prev, r, 7, 16), payload(prev, r, 10, 4), payload(prev, r, 5, 8)}
				ex := c.NewExchange(sends, recvs)
				defer ex.Free()
				var errs []error
				for round := range 3 {
					for i := range recvs {
						clear(recvs[i].Buf)
					}
					ex.Start()
					ex.Wait()
					for i := range recvs {
						if !bytes.Equal(recvs[i].Buf, want[i]) {
							errs = append(errs, fmt.Errorf("round %d: receive %d (tag %d) got %v, want %v", round, i, recvs[i].Tag, recvs[i].Buf, want[i]))
						}
					}
				}
				if len(errs) > 0 {
					return errs[0]
				}
				return nil
			})
		})
	}
}

// rankValues gives each rank numbers whose sum depends on the order of
// addition, so that a test sees whether the rank order is kept.
func rankValues(r int) []float64 {
	big := math.Ldexp(1, 53+r%3)
	return []float64{big, 1 + float64(r), -big / 3, 0.1 * float64(r+1), math.Pi * float64(r), -float64(r * r)}
}

func TestAllreduceSumIsRankOrdered(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				x := rankValues(c.Rank())
				c.Allreduce(mpi.Sum, x)
				want := rankValues(0)
				for r := 1; r < c.Size(); r++ {
					for i, v := range rankValues(r) {
						want[i] += v
					}
				}
				for i := range want {
					if math.Float64bits(x[i]) != math.Float64bits(want[i]) {
						return fmt.Errorf("element %d: got %v, want the rank-ordered sum %v", i, x[i], want[i])
					}
				}
				return nil
			})
		})
	}
}

func TestAllreduceMaxAndHelpers(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				r, p := c.Rank(), c.Size()
				// A long vector exercises the chunked all-to-all path with padding.
				x := make([]float64, 1000+p)
				for i := range x {
					x[i] = float64((i*7+r*13)%101) - 50
				}
				c.Allreduce(mpi.Max, x)
				for i := range x {
					want := math.Inf(-1)
					for q := range p {
						want = max(want, float64((i*7+q*13)%101)-50)
					}
					if x[i] != want {
						return fmt.Errorf("max element %d: got %v, want %v", i, x[i], want)
					}
				}
				if got, want := mpi.SumFloat64(c, float64(r+1)), float64(p*(p+1)/2); got != want {
					return fmt.Errorf("SumFloat64 = %v, want %v", got, want)
				}
				if got := mpi.MaxFloat64(c, float64(r)); got != float64(p-1) {
					return fmt.Errorf("MaxFloat64 = %v, want %v", got, p-1)
				}
				z := []complex128{complex(float64(r), 1), complex(-1, float64(2*r))}
				mpi.AllreduceComplex(c, mpi.Sum, z)
				s := float64(p * (p - 1) / 2)
				if want := []complex128{complex(s, float64(p)), complex(-float64(p), 2*s)}; !slices.Equal(z, want) {
					return fmt.Errorf("complex sum = %v, want %v", z, want)
				}
				return nil
			})
		})
	}
}

func TestBcastGatherScatter(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				r, p := c.Rank(), c.Size()
				for root := range p {
					buf := make([]byte, 33)
					if r == root {
						copy(buf, payload(root, 0, 1, 33))
					}
					c.Bcast(root, buf)
					if !bytes.Equal(buf, payload(root, 0, 1, 33)) {
						return fmt.Errorf("Bcast from %d corrupted", root)
					}
					// Gather then Scatter back: every rank gets its own block.
					mine := payload(r, root, 2, 12)
					var all []byte
					if r == root {
						all = make([]byte, 12*p)
					}
					c.Gather(root, mine, all)
					if r == root {
						for q := range p {
							if !bytes.Equal(all[12*q:12*(q+1)], payload(q, root, 2, 12)) {
								return fmt.Errorf("Gather to %d: block %d corrupted", root, q)
							}
						}
						// Reverse the blocks so that Scatter's destination shows.
						slices.Reverse(all)
					}
					back := make([]byte, 12)
					c.Scatter(root, all, back)
					want := slices.Clone(payload(p-1-r, root, 2, 12))
					slices.Reverse(want)
					if !bytes.Equal(back, want) {
						return fmt.Errorf("Scatter from %d: got %v, want %v", root, back, want)
					}
				}
				c.Barrier()
				return nil
			})
		})
	}
}

func TestSplit(t *testing.T) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mpitest.Run(t, n, func(c mpi.Comm) error {
				r, p := c.Rank(), c.Size()
				// Two colours, keys reversing the order; the last rank opts out
				// when there are at least three.
				color, key := r%2, -r
				if p >= 3 && r == p-1 {
					color = -1
				}
				sub := c.Split(color, key)
				// Replicas × domain: a second split of the same parent.
				dom := c.Split(r/1, 0) // one rank per colour
				defer dom.Free()
				if dom.Size() != 1 || dom.Rank() != 0 {
					return fmt.Errorf("single-rank split: size %d rank %d", dom.Size(), dom.Rank())
				}
				if color < 0 {
					if sub != nil {
						return fmt.Errorf("negative colour returned a communicator")
					}
					return nil
				}
				defer sub.Free()
				var members []int
				for q := range p {
					if q%2 == color && !(p >= 3 && q == p-1) {
						members = append(members, q)
					}
				}
				slices.Reverse(members) // key = -rank orders them descending
				if sub.Size() != len(members) || members[sub.Rank()] != r {
					return fmt.Errorf("rank %d: sub rank %d of %d, want position in %v", r, sub.Rank(), sub.Size(), members)
				}
				// Communication inside the new communicator uses its ranks.
				got := mpi.SumFloat64(sub, float64(r))
				want := 0.0
				for _, q := range members {
					want += float64(q)
				}
				if got != want {
					return fmt.Errorf("sum over colour %d = %v, want %v", color, got, want)
				}
				var buf [8]byte
				if sub.Rank() == 0 {
					binary.LittleEndian.PutUint64(buf[:], uint64(r))
				}
				sub.Bcast(0, buf[:])
				if root := binary.LittleEndian.Uint64(buf[:]); root != uint64(members[0]) {
					return fmt.Errorf("Bcast in colour %d came from %d, want %d", color, root, members[0])
				}
				return nil
			})
		})
	}
}

func TestBytesView(t *testing.T) {
	z := []complex128{complex(1, 2)}
	b := mpi.Bytes(z)
	if len(b) != 16 {
		t.Fatalf("len = %d, want 16", len(b))
	}
	if math.Float64frombits(binary.LittleEndian.Uint64(b[8:])) != 2 {
		t.Fatalf("imaginary part not at bytes 8..16: complex128 layout is (re, im)")
	}
	if mpi.Bytes([]float64(nil)) != nil {
		t.Fatalf("empty slice should give nil bytes")
	}
}

// TestUnfreedExchange: an exchange its owner forgets to free is released with
// its communicator; the garbage collector must not find pinned memory.
func TestUnfreedExchange(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		sub := c.Split(0, c.Rank())
		peer := 1 - sub.Rank()
		buf, got := []float64{float64(c.Rank())}, []float64{-1}
		ex := sub.NewExchange([]mpi.Transfer{{Peer: peer, Tag: 1, Buf: mpi.Bytes(buf)}}, []mpi.Transfer{{Peer: peer, Tag: 1, Buf: mpi.Bytes(got)}})
		ex.Start()
		ex.Wait()
		sub.Free() // frees ex too
		runtime.GC()
		runtime.GC()
		if got[0] != float64(1-c.Rank()) {
			return fmt.Errorf("received %v", got[0])
		}
		return nil
	})
}
