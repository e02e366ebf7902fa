package mpi

import (
	"errors"
	"fmt"
	"unsafe"
)

// Comm is a communicator: a group of Size ranks, numbered 0..Size-1, that
// exchange messages. See the package documentation for the rules every
// backend follows.
type Comm interface {
	// Rank is this process's number in the communicator.
	Rank() int
	// Size is the number of ranks in the communicator.
	Size() int

	// Sendrecv sends send to rank dest with tag sendTag and receives a message
	// from rank source with tag recvTag into recv, blocking until both are done.
	// The received message may be shorter than recv but not longer.
	Sendrecv(send []byte, dest, sendTag int, recv []byte, source, recvTag int)

	// NewExchange builds a persistent set of transfers (MPI persistent requests):
	// each send transfers its Buf to Peer, each receive fills its Buf from Peer.
	// The buffers are fixed for the exchange's lifetime.
	NewExchange(sends, recvs []Transfer) Exchange

	// Allreduce combines x element-wise over all ranks with op and leaves the
	// result in x on every rank.
	Allreduce(op Op, x []float64)
	// Bcast copies buf on rank root to buf on every rank.
	Bcast(root int, buf []byte)
	// Gather concatenates send from every rank, in rank order, into recv on rank
	// root; len(recv) must be Size()*len(send) on root and is ignored elsewhere.
	Gather(root int, send, recv []byte)
	// Scatter sends the r-th block of len(recv) bytes of send on rank root to
	// rank r. len(send) must be Size()*len(recv) on root; send is ignored elsewhere.
	Scatter(root int, send, recv []byte)
	// Barrier returns on each rank once every rank has entered it.
	Barrier()

	// Split partitions the communicator: ranks that pass the same non-negative
	// color form a new communicator in which they are ordered by (key, old rank).
	// A rank that passes a negative color takes part in no new communicator and
	// gets nil.
	Split(color, key int) Comm
	// Free releases a communicator made by Split, with every exchange built
	// on it that was not freed yet. The world communicator is not freed; Free
	// on it does nothing.
	Free()

	// Abort stops every rank of the job with the given exit code. It does not
	// return.
	Abort(code int)
}

// Transfer is one message of a persistent [Exchange].
type Transfer struct {
	Peer int    // the rank sent to or received from
	Tag  int    // message tag, ≥ 0
	Buf  []byte // the message: read when sending, written when receiving
}

// Exchange is a persistent set of point-to-point transfers. Start begins all of
// them without blocking; Wait blocks until all are complete. Between Start and
// Wait the caller may compute but must not touch the buffers.
type Exchange interface {
	Start()
	Wait()
	// Free releases the exchange; it must not be in flight. The MPI backend
	// holds MPI requests and pins the buffers until Free; an exchange never
	// freed stays allocated until its communicator is freed (the
	// communicator keeps it reachable).
	Free()
}

// Op is a reduction operation.
type Op int

const (
	// Sum adds the contributions in rank order (deterministic).
	Sum Op = iota
	// Max takes the largest contribution.
	Max
)

func (op Op) String() string {
	switch op {
	case Sum:
		return "sum"
	case Max:
		return "max"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Number is the element type of the slices the helpers below view as bytes.
type Number interface {
	~float64 | ~complex128 | ~float32 | ~int64 | ~uint64 | ~int32 | ~uint32 | ~byte
}

// Bytes views s as a byte slice sharing its memory (no copy).
func Bytes[T Number](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// AllreduceComplex combines x element-wise over all ranks. Sum is the complex
// sum, in rank order; Max takes the maximum of the real and imaginary parts
// separately.
func AllreduceComplex(c Comm, op Op, x []complex128) {
	if len(x) == 0 {
		c.Allreduce(op, nil)
		return
	}
	c.Allreduce(op, unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(x))), 2*len(x)))
}

// SumFloat64 returns the sum of v over all ranks (rank order, deterministic).
// On one rank it returns v without a collective (and without allocating).
func SumFloat64(c Comm, v float64) float64 {
	if c.Size() == 1 {
		return v
	}
	x := [1]float64{v}
	c.Allreduce(Sum, x[:])
	return x[0]
}

// MaxFloat64 returns the maximum of v over all ranks.
func MaxFloat64(c Comm, v float64) float64 {
	if c.Size() == 1 {
		return v
	}
	x := [1]float64{v}
	c.Allreduce(Max, x[:])
	return x[0]
}

// reduceInto combines src into dst element-wise (dst = dst op src).
func reduceInto(op Op, dst, src []float64) {
	src = src[:len(dst)]
	switch op {
	case Sum:
		for i := range dst {
			dst[i] += src[i]
		}
	case Max:
		for i := range dst {
			// NaN propagates, as in MPI_MAX on IEEE doubles in practice.
			if src[i] > dst[i] || src[i] != src[i] {
				dst[i] = src[i]
			}
		}
	default:
		panic(fmt.Sprintf("mpi: unknown reduction %v", op))
	}
}

func checkRank(what string, r, size int) {
	if r < 0 || r >= size {
		panic(fmt.Sprintf("mpi: %s rank %d out of range [0, %d)", what, r, size))
	}
}

func checkTag(tag int) {
	if tag < 0 {
		panic(fmt.Sprintf("mpi: tag %d is negative; tags are ≥ 0", tag))
	}
}

// SharedError is an error every rank of a communicator returned alike
// (from [RootError]): the ranks can end together without Abort.
type SharedError struct{ Err error }

func (e *SharedError) Error() string { return e.Err.Error() }
func (e *SharedError) Unwrap() error { return e.Err }

// IsShared reports whether err is, or wraps, a [SharedError].
func IsShared(err error) bool {
	var s *SharedError
	return errors.As(err, &s)
}

// RootError returns rank 0's error on every rank of c, as a [SharedError]:
// rank 0's wraps err itself, the others' an error with its message (nil if
// rank 0's is nil). Use it where rank 0 alone does file work, so that all
// ranks take the same branch. It is collective.
func RootError(c Comm, err error) error {
	var msg []byte
	if c.Rank() == 0 && err != nil {
		msg = []byte(err.Error())
	}
	n := []float64{float64(len(msg))}
	c.Bcast(0, Bytes(n))
	if n[0] == 0 {
		return nil
	}
	if c.Rank() != 0 {
		msg = make([]byte, int(n[0]))
	}
	c.Bcast(0, msg)
	if c.Rank() == 0 {
		return &SharedError{Err: err}
	}
	return &SharedError{Err: errors.New(string(msg))}
}
