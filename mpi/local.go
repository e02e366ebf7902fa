package mpi

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
)

// ErrAborted is the cause reported by ranks that were stopped because another
// rank of an in-process job called Abort, panicked or returned an error.
var ErrAborted = errors.New("mpi: job aborted by another rank")

// AbortError is returned by [Run] when a rank called [Comm.Abort].
type AbortError struct {
	Rank int // world rank that called Abort
	Code int // its exit code
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("mpi: rank %d called Abort(%d)", e.Rank, e.Code)
}

// RankError is a failure of one rank of an in-process job.
type RankError struct {
	Rank int
	Err  error
}

func (e *RankError) Error() string { return fmt.Sprintf("rank %d: %v", e.Rank, e.Err) }
func (e *RankError) Unwrap() error { return e.Err }

// Run starts an in-process job of n ranks. Each rank is a goroutine that calls
// body with its world communicator. Run returns when every rank has returned.
//
// If a rank returns an error, panics or calls Abort, the job is aborted: ranks
// blocked in a communication panic with ErrAborted and are collected, and Run
// returns the first failure: a *RankError, or an *AbortError.
func Run(n int, body func(c Comm) error) error {
	if n < 1 {
		return fmt.Errorf("mpi: Run needs at least one rank, got %d", n)
	}
	w := &world{aborted: make(chan struct{})}
	g := w.newGroup(n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newLocalComm(g, r, r)
			defer func() {
				if p := recover(); p != nil {
					switch p := p.(type) {
					case abortedPanic:
						errs[r] = ErrAborted
					case *AbortError:
						errs[r] = p
					default:
						errs[r] = &RankError{Rank: r, Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
					}
					w.abort(errs[r])
				}
			}()
			if err := body(c); err != nil {
				errs[r] = &RankError{Rank: r, Err: err}
				w.abort(errs[r])
			}
		}()
	}
	wg.Wait()
	if w.cause != nil {
		return w.cause
	}
	return nil
}

// world is the shared state of one in-process job.
type world struct {
	once    sync.Once
	aborted chan struct{} // closed when the job is aborted
	cause   error         // the first failure; written once before aborted is closed
	// exitOnAbort is set for the one-rank world of Init without MPI: there is
	// no Run to report to, so Abort exits the process as MPI_Abort does.
	exitOnAbort bool
}

func (w *world) abort(cause error) {
	w.once.Do(func() {
		w.cause = cause
		close(w.aborted)
	})
}

// abortedPanic is what a rank panics with when it observes an abort.
type abortedPanic struct{}

// group is the shared state of one communicator: a mailbox per rank.
type group struct {
	w     *world
	size  int
	boxes []mailbox // boxes[dst] holds traffic addressed to rank dst
	// split results, written by rank 0 of the parent before it releases the others
	split []splitResult
}

type splitResult struct {
	g    *group
	rank int
}

func (w *world) newGroup(n int) *group {
	return &group{w: w, size: n, boxes: make([]mailbox, n)}
}

// mailbox holds the unmatched sends addressed to one rank and the unmatched
// receives it posted, each in posting order.
type mailbox struct {
	mu    sync.Mutex
	sends []*p2p
	recvs []*p2p
}

// p2p is one posted send or receive.
type p2p struct {
	buf  []byte
	src  int // sending rank (for a send: the poster; for a receive: the expected source)
	dst  int // receiving rank
	tag  int
	n    int           // bytes delivered (receives)
	err  string        // set on the receive when the message did not fit
	done chan struct{} // capacity 1; signalled on completion
}

func newP2P() *p2p { return &p2p{done: make(chan struct{}, 1)} }

// deliver copies the send into the receive and completes both.
func deliver(s, r *p2p) {
	if len(s.buf) > len(r.buf) {
		r.err = fmt.Sprintf("mpi: message truncated: %d bytes from rank %d (tag %d) into a %d-byte receive", len(s.buf), s.src, s.tag, len(r.buf))
		r.n = 0
	} else {
		r.n = copy(r.buf, s.buf)
	}
	r.done <- struct{}{}
	s.done <- struct{}{}
}

func (g *group) postSend(s *p2p) {
	b := &g.boxes[s.dst]
	b.mu.Lock()
	for i, r := range b.recvs {
		if r.src == s.src && r.tag == s.tag {
			b.recvs = slices.Delete(b.recvs, i, i+1)
			b.mu.Unlock()
			deliver(s, r)
			return
		}
	}
	b.sends = append(b.sends, s)
	b.mu.Unlock()
}

func (g *group) postRecv(r *p2p) {
	b := &g.boxes[r.dst]
	b.mu.Lock()
	for i, s := range b.sends {
		if s.src == r.src && s.tag == r.tag {
			b.sends = slices.Delete(b.sends, i, i+1)
			b.mu.Unlock()
			deliver(s, r)
			return
		}
	}
	b.recvs = append(b.recvs, r)
	b.mu.Unlock()
}

func (g *group) wait(o *p2p) {
	// Poll a little before parking: a partner rank usually answers within
	// microseconds, and waking a parked thread costs tens of them (as MPI
	// implementations poll shared memory). Gosched lets an oversubscribed
	// partner run meanwhile.
	for range spinPolls {
		select {
		case <-o.done:
			goto done
		default:
			runtime.Gosched()
		}
	}
	select {
	case <-o.done:
	case <-g.w.aborted:
		panic(abortedPanic{})
	}
done:
	if o.err != "" {
		msg := o.err
		o.err = ""
		panic(msg)
	}
}

// spinPolls is how often wait polls before parking (≈ 10–50 µs).
const spinPolls = 200

// Internal tags of collectives; user tags are ≥ 0, so they never collide.
const (
	tagBarrier = -1 - iota
	tagBcast
	tagGather
	tagScatter
	tagReduce
	tagSplit
)

// localComm is one rank's handle on a group.
type localComm struct {
	g         *group
	rank      int
	worldRank int
	s, r      *p2p      // scratch operations for blocking calls
	scratch   []float64 // reduction scratch (root)
	tmp       []float64
}

func newLocalComm(g *group, rank, worldRank int) *localComm {
	return &localComm{g: g, rank: rank, worldRank: worldRank, s: newP2P(), r: newP2P()}
}

func (c *localComm) Rank() int { return c.rank }
func (c *localComm) Size() int { return c.g.size }

func (c *localComm) send(buf []byte, dest, tag int) {
	c.s.buf, c.s.src, c.s.dst, c.s.tag = buf, c.rank, dest, tag
	c.g.postSend(c.s)
	c.g.wait(c.s)
	c.s.buf = nil
}

func (c *localComm) recv(buf []byte, source, tag int) {
	c.r.buf, c.r.src, c.r.dst, c.r.tag = buf, source, c.rank, tag
	c.g.postRecv(c.r)
	c.g.wait(c.r)
	c.r.buf = nil
}

func (c *localComm) Sendrecv(send []byte, dest, sendTag int, recv []byte, source, recvTag int) {
	checkRank("Sendrecv destination", dest, c.g.size)
	checkRank("Sendrecv source", source, c.g.size)
	checkTag(sendTag)
	checkTag(recvTag)
	c.r.buf, c.r.src, c.r.dst, c.r.tag = recv, source, c.rank, recvTag
	c.g.postRecv(c.r)
	c.s.buf, c.s.src, c.s.dst, c.s.tag = send, c.rank, dest, sendTag
	c.g.postSend(c.s)
	c.g.wait(c.s)
	c.g.wait(c.r)
	c.s.buf, c.r.buf = nil, nil
}

// localExchange is a persistent exchange of the in-process backend.
type localExchange struct {
	c      *localComm
	sends  []*p2p
	recvs  []*p2p
	active bool
}

func (c *localComm) NewExchange(sends, recvs []Transfer) Exchange {
	e := &localExchange{c: c}
	for _, t := range sends {
		checkRank("Exchange send peer", t.Peer, c.g.size)
		checkTag(t.Tag)
		o := newP2P()
		o.buf, o.src, o.dst, o.tag = t.Buf, c.rank, t.Peer, t.Tag
		e.sends = append(e.sends, o)
	}
	for _, t := range recvs {
		checkRank("Exchange receive peer", t.Peer, c.g.size)
		checkTag(t.Tag)
		o := newP2P()
		o.buf, o.src, o.dst, o.tag = t.Buf, t.Peer, c.rank, t.Tag
		e.recvs = append(e.recvs, o)
	}
	return e
}

func (e *localExchange) Start() {
	if e.active {
		panic("mpi: Exchange started twice without Wait")
	}
	e.active = true
	for _, o := range e.recvs {
		e.c.g.postRecv(o)
	}
	for _, o := range e.sends {
		e.c.g.postSend(o)
	}
}

func (e *localExchange) Wait() {
	if !e.active {
		panic("mpi: Exchange.Wait without Start")
	}
	for _, o := range e.sends {
		e.c.g.wait(o)
	}
	for _, o := range e.recvs {
		e.c.g.wait(o)
	}
	e.active = false
}

func (e *localExchange) Free() {
	if e.active {
		panic("mpi: Exchange freed while in flight")
	}
	e.sends, e.recvs = nil, nil
}

func (c *localComm) Barrier() {
	if c.rank == 0 {
		for r := 1; r < c.g.size; r++ {
			c.recv(nil, r, tagBarrier)
		}
		for r := 1; r < c.g.size; r++ {
			c.send(nil, r, tagBarrier)
		}
		return
	}
	c.send(nil, 0, tagBarrier)
	c.recv(nil, 0, tagBarrier)
}

func (c *localComm) Bcast(root int, buf []byte) {
	checkRank("Bcast root", root, c.g.size)
	if c.rank != root {
		c.recv(buf, root, tagBcast)
		return
	}
	for r := range c.g.size {
		if r != root {
			c.send(buf, r, tagBcast)
		}
	}
}

func (c *localComm) Gather(root int, send, recv []byte) {
	checkRank("Gather root", root, c.g.size)
	if c.rank != root {
		c.send(send, root, tagGather)
		return
	}
	n := len(send)
	if len(recv) != n*c.g.size {
		panic(fmt.Sprintf("mpi: Gather receive buffer has %d bytes, want %d ranks × %d", len(recv), c.g.size, n))
	}
	for r := range c.g.size {
		if r == root {
			copy(recv[r*n:(r+1)*n], send)
			continue
		}
		c.recv(recv[r*n:(r+1)*n], r, tagGather)
	}
}

func (c *localComm) Scatter(root int, send, recv []byte) {
	checkRank("Scatter root", root, c.g.size)
	if c.rank != root {
		c.recv(recv, root, tagScatter)
		return
	}
	n := len(recv)
	if len(send) != n*c.g.size {
		panic(fmt.Sprintf("mpi: Scatter send buffer has %d bytes, want %d ranks × %d", len(send), c.g.size, n))
	}
	for r := range c.g.size {
		if r == root {
			copy(recv, send[r*n:(r+1)*n])
			continue
		}
		c.send(send[r*n:(r+1)*n], r, tagScatter)
	}
}

// Allreduce gathers the contributions on rank 0, which combines them in rank
// order and sends the result back.
func (c *localComm) Allreduce(op Op, x []float64) {
	if op != Sum && op != Max {
		panic(fmt.Sprintf("mpi: unknown reduction %v", op))
	}
	if c.g.size == 1 {
		return
	}
	if c.rank != 0 {
		c.send(Bytes(x), 0, tagReduce)
		c.recv(Bytes(x), 0, tagReduce)
		return
	}
	if cap(c.tmp) < len(x) {
		c.tmp = make([]float64, len(x))
	}
	tmp := c.tmp[:len(x)]
	for r := 1; r < c.g.size; r++ {
		c.recv(Bytes(tmp), r, tagReduce)
		reduceInto(op, x, tmp)
	}
	for r := 1; r < c.g.size; r++ {
		c.send(Bytes(x), r, tagReduce)
	}
}

func (c *localComm) Split(color, key int) Comm {
	// Rank 0 collects (color, key) from everyone, builds the new groups and
	// publishes them in g.split; the broadcast that follows orders the write
	// before every read.
	var mine [2]int64
	mine[0], mine[1] = int64(color), int64(key)
	all := make([]int64, 2*c.g.size)
	c.Gather(0, Bytes(mine[:]), Bytes(all))
	if c.rank == 0 {
		res := make([]splitResult, c.g.size)
		colors := map[int64][]int{}
		var order []int64
		for r := range c.g.size {
			col := all[2*r]
			if col < 0 {
				continue
			}
			if _, ok := colors[col]; !ok {
				order = append(order, col)
			}
			colors[col] = append(colors[col], r)
		}
		for _, col := range order {
			members := colors[col]
			slices.SortStableFunc(members, func(a, b int) int {
				if ka, kb := all[2*a+1], all[2*b+1]; ka != kb {
					if ka < kb {
						return -1
					}
					return 1
				}
				return a - b
			})
			ng := c.g.w.newGroup(len(members))
			for i, m := range members {
				res[m] = splitResult{g: ng, rank: i}
			}
		}
		c.g.split = res
	}
	c.Bcast(0, nil)
	// Rank 0 overwrites g.split only in a later Split, after every rank has
	// sent its (color, key) for it, and so after every rank has read this one.
	res := c.g.split[c.rank]
	if res.g == nil {
		return nil
	}
	return newLocalComm(res.g, res.rank, c.worldRank)
}

func (c *localComm) Free() {}

func (c *localComm) Abort(code int) {
	e := &AbortError{Rank: c.worldRank, Code: code}
	if c.g.w.exitOnAbort {
		fmt.Fprintln(os.Stderr, e)
		os.Exit(code)
	}
	c.g.w.abort(e)
	panic(e)
}

// Self returns a new communicator of one rank that never calls MPI, in either
// build: collectives return at once and a halo exchange copies to itself. A
// goroutine may use it to work on a lattice held whole by its rank (a domain
// of one rank) without touching the MPI thread. Abort panics with an
// *AbortError.
func Self() Comm {
	w := &world{aborted: make(chan struct{})}
	return newLocalComm(w.newGroup(1), 0, 0)
}
