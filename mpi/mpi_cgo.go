//go:build mpi

package mpi

/*
#include <stdlib.h>
#include <mpi.h>

// Static wrappers hide what differs between MPI libraries: in OpenMPI the
// handles are pointers and the predefined ones are macros over globals, in
// MPICH they are integers. Go only ever sees MPI_Comm and MPI_Request values.

static MPI_Comm pf_comm_world(void) { return MPI_COMM_WORLD; }
static int pf_is_null(MPI_Comm c) { return c == MPI_COMM_NULL; }

static int pf_init_funneled(int *provided) {
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
}
static int pf_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static int pf_finalize(void) { return MPI_Finalize(); }
static int pf_initialized(void) { int f = 0; MPI_Initialized(&f); return f; }
static int pf_finalized(void) { int f = 0; MPI_Finalized(&f); return f; }

static int pf_rank(MPI_Comm c, int *r) { return MPI_Comm_rank(c, r); }
static int pf_size(MPI_Comm c, int *s) { return MPI_Comm_size(c, s); }

static int pf_sendrecv(void *s, int sn, int dest, int stag, void *r, int rn, int src, int rtag, MPI_Comm c) {
	return MPI_Sendrecv(s, sn, MPI_BYTE, dest, stag, r, rn, MPI_BYTE, src, rtag, c, MPI_STATUS_IGNORE);
}
static int pf_send_init(void *b, int n, int peer, int tag, MPI_Comm c, MPI_Request *req) {
	return MPI_Send_init(b, n, MPI_BYTE, peer, tag, c, req);
}
static int pf_recv_init(void *b, int n, int peer, int tag, MPI_Comm c, MPI_Request *req) {
	return MPI_Recv_init(b, n, MPI_BYTE, peer, tag, c, req);
}
static int pf_startall(int n, MPI_Request *r) { return MPI_Startall(n, r); }
// MPICH defines MPI_STATUSES_IGNORE as (MPI_Status *)1, which gcc 12 mistakes
// for a zero-size buffer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
static int pf_waitall(int n, MPI_Request *r) { return MPI_Waitall(n, r, MPI_STATUSES_IGNORE); }
#pragma GCC diagnostic pop
static int pf_request_free(MPI_Request *r) { return MPI_Request_free(r); }
static MPI_Request *pf_new_requests(int n) { return (MPI_Request *)calloc(n > 0 ? n : 1, sizeof(MPI_Request)); }

static int pf_alltoall_double(void *s, void *r, int n, MPI_Comm c) {
	return MPI_Alltoall(s, n, MPI_DOUBLE, r, n, MPI_DOUBLE, c);
}
static int pf_allgather_double(void *s, void *r, int n, MPI_Comm c) {
	return MPI_Allgather(s, n, MPI_DOUBLE, r, n, MPI_DOUBLE, c);
}
static int pf_bcast(void *b, int n, int root, MPI_Comm c) { return MPI_Bcast(b, n, MPI_BYTE, root, c); }
static int pf_gather(void *s, int n, void *r, int root, MPI_Comm c) {
	return MPI_Gather(s, n, MPI_BYTE, r, n, MPI_BYTE, root, c);
}
static int pf_scatter(void *s, int n, void *r, int root, MPI_Comm c) {
	return MPI_Scatter(s, n, MPI_BYTE, r, n, MPI_BYTE, root, c);
}
static int pf_barrier(MPI_Comm c) { return MPI_Barrier(c); }
static int pf_split(MPI_Comm c, int color, int key, MPI_Comm *out) {
	return MPI_Comm_split(c, color < 0 ? MPI_UNDEFINED : color, key, out);
}
static int pf_comm_free(MPI_Comm *c) { return MPI_Comm_free(c); }
static int pf_abort(MPI_Comm c, int code) { return MPI_Abort(c, code); }

static void pf_error_string(int code, char *buf) {
	int n = 0;
	MPI_Error_string(code, buf, &n);
	buf[n < MPI_MAX_ERROR_STRING ? n : MPI_MAX_ERROR_STRING - 1] = 0;
}
static int pf_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static void pf_library_version(char *buf) {
	int n = 0;
	MPI_Get_library_version(buf, &n);
	buf[n < MPI_MAX_LIBRARY_VERSION_STRING ? n : MPI_MAX_LIBRARY_VERSION_STRING - 1] = 0;
}
static int pf_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"
)

// Backend names the communicator backend compiled into this binary.
const Backend = "mpi"

// Init initialises MPI with MPI_THREAD_FUNNELED and returns the world
// communicator. Call it once, from the main goroutine with its OS thread
// locked; every later call on the returned communicator must come from that
// goroutine.
func Init() (Comm, error) {
	if C.pf_initialized() != 0 {
		return nil, errors.New("mpi: Init called twice")
	}
	var provided C.int
	if rc := C.pf_init_funneled(&provided); rc != 0 {
		return nil, fmt.Errorf("mpi: MPI_Init_thread failed: %s", errorString(rc))
	}
	if provided < C.pf_thread_funneled() {
		return nil, fmt.Errorf("mpi: the MPI library provides thread level %d, below MPI_THREAD_FUNNELED", int(provided))
	}
	return newMPIComm(C.pf_comm_world(), true), nil
}

// Finalize shuts MPI down. No communicator may be used afterwards.
func Finalize() error {
	if C.pf_initialized() == 0 || C.pf_finalized() != 0 {
		return nil
	}
	if rc := C.pf_finalize(); rc != 0 {
		return fmt.Errorf("mpi: MPI_Finalize failed: %s", errorString(rc))
	}
	return nil
}

// LibraryVersion is the MPI library's own version string.
func LibraryVersion() string {
	buf := (*C.char)(C.malloc(C.size_t(C.pf_max_library_version_string())))
	defer C.free(unsafe.Pointer(buf))
	C.pf_library_version(buf)
	return strings.TrimSpace(C.GoString(buf))
}

func errorString(rc C.int) string {
	buf := (*C.char)(C.malloc(C.size_t(C.pf_max_error_string())))
	defer C.free(unsafe.Pointer(buf))
	C.pf_error_string(rc, buf)
	return fmt.Sprintf("%s (code %d)", C.GoString(buf), int(rc))
}

func check(what string, rc C.int) {
	if rc != 0 {
		panic(fmt.Sprintf("mpi: %s: %s", what, errorString(rc)))
	}
}

// mpiComm is a communicator of the MPI backend. Rank and size are cached: MPI
// may not be asked after Finalize.
type mpiComm struct {
	c          C.MPI_Comm
	rank, size int
	world      bool
	send, recv []float64 // Allreduce scratch
	// live keeps every exchange reachable until Free: the Go runtime panics
	// if it collects pinned memory, so a forgotten Free leaks instead.
	live map[*mpiExchange]struct{}
}

func newMPIComm(c C.MPI_Comm, world bool) *mpiComm {
	var r, s C.int
	check("MPI_Comm_rank", C.pf_rank(c, &r))
	check("MPI_Comm_size", C.pf_size(c, &s))
	return &mpiComm{c: c, rank: int(r), size: int(s), world: world, live: map[*mpiExchange]struct{}{}}
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

// ptr returns the address of b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func count(what string, n int) C.int {
	if n > math.MaxInt32 {
		panic(fmt.Sprintf("mpi: %s of %d elements exceeds MPI's int count; split the message", what, n))
	}
	return C.int(n)
}

func (c *mpiComm) Sendrecv(send []byte, dest, sendTag int, recv []byte, source, recvTag int) {
	checkRank("Sendrecv destination", dest, c.size)
	checkRank("Sendrecv source", source, c.size)
	checkTag(sendTag)
	checkTag(recvTag)
	check("MPI_Sendrecv", C.pf_sendrecv(ptr(send), count("Sendrecv", len(send)), C.int(dest), C.int(sendTag),
		ptr(recv), count("Sendrecv", len(recv)), C.int(source), C.int(recvTag), c.c))
}

// mpiExchange holds MPI persistent requests; its buffers stay pinned until Free.
type mpiExchange struct {
	comm   *mpiComm
	reqs   *C.MPI_Request
	n      int
	pin    runtime.Pinner
	active bool
}

func (c *mpiComm) NewExchange(sends, recvs []Transfer) Exchange {
	n := len(sends) + len(recvs)
	e := &mpiExchange{comm: c, reqs: C.pf_new_requests(C.int(n)), n: n}
	c.live[e] = struct{}{}
	reqs := unsafe.Slice(e.reqs, max(n, 1))
	i := 0
	for _, t := range recvs {
		checkRank("Exchange receive peer", t.Peer, c.size)
		checkTag(t.Tag)
		if len(t.Buf) > 0 {
			e.pin.Pin(unsafe.SliceData(t.Buf))
		}
		check("MPI_Recv_init", C.pf_recv_init(ptr(t.Buf), count("Exchange receive", len(t.Buf)), C.int(t.Peer), C.int(t.Tag), c.c, &reqs[i]))
		i++
	}
	for _, t := range sends {
		checkRank("Exchange send peer", t.Peer, c.size)
		checkTag(t.Tag)
		if len(t.Buf) > 0 {
			e.pin.Pin(unsafe.SliceData(t.Buf))
		}
		check("MPI_Send_init", C.pf_send_init(ptr(t.Buf), count("Exchange send", len(t.Buf)), C.int(t.Peer), C.int(t.Tag), c.c, &reqs[i]))
		i++
	}
	return e
}

func (e *mpiExchange) Start() {
	if e.active {
		panic("mpi: Exchange started twice without Wait")
	}
	e.active = true
	if e.n > 0 {
		check("MPI_Startall", C.pf_startall(C.int(e.n), e.reqs))
	}
}

func (e *mpiExchange) Wait() {
	if !e.active {
		panic("mpi: Exchange.Wait without Start")
	}
	if e.n > 0 {
		check("MPI_Waitall", C.pf_waitall(C.int(e.n), e.reqs))
	}
	e.active = false
}

func (e *mpiExchange) Free() {
	if e.active {
		panic("mpi: Exchange freed while in flight")
	}
	if e.reqs == nil {
		return
	}
	reqs := unsafe.Slice(e.reqs, max(e.n, 1))
	for i := 0; i < e.n; i++ {
		check("MPI_Request_free", C.pf_request_free(&reqs[i]))
	}
	C.free(unsafe.Pointer(e.reqs))
	e.reqs = nil
	e.pin.Unpin()
	delete(e.comm.live, e)
}

// Allreduce is deterministic: an all-to-all gives rank r the r-th chunk of every
// rank's x, rank r combines them in rank order, and an all-gather assembles the
// chunks. The per-element order, ((x₀ ∘ x₁) ∘ x₂) ∘ …, is the in-process
// backend's.
func (c *mpiComm) Allreduce(op Op, x []float64) {
	if op != Sum && op != Max {
		panic(fmt.Sprintf("mpi: unknown reduction %v", op))
	}
	p := c.size
	if p == 1 || len(x) == 0 {
		return
	}
	chunk := (len(x) + p - 1) / p
	total := chunk * p
	if cap(c.send) < total {
		c.send = make([]float64, total)
		c.recv = make([]float64, total)
	}
	send, recv := c.send[:total], c.recv[:total]
	copy(send, x)
	clear(send[len(x):])
	check("MPI_Alltoall", C.pf_alltoall_double(unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), count("Allreduce chunk", chunk), c.c))
	acc := send[:chunk] // the send buffer is free again; reuse it
	copy(acc, recv[:chunk])
	for r := 1; r < p; r++ {
		reduceInto(op, acc, recv[r*chunk:(r+1)*chunk])
	}
	check("MPI_Allgather", C.pf_allgather_double(unsafe.Pointer(&acc[0]), unsafe.Pointer(&recv[0]), C.int(chunk), c.c))
	copy(x, recv[:len(x)])
}

func (c *mpiComm) Bcast(root int, buf []byte) {
	checkRank("Bcast root", root, c.size)
	check("MPI_Bcast", C.pf_bcast(ptr(buf), count("Bcast", len(buf)), C.int(root), c.c))
}

func (c *mpiComm) Gather(root int, send, recv []byte) {
	checkRank("Gather root", root, c.size)
	if c.rank == root && len(recv) != len(send)*c.size {
		panic(fmt.Sprintf("mpi: Gather receive buffer has %d bytes, want %d ranks × %d", len(recv), c.size, len(send)))
	}
	var r unsafe.Pointer
	if c.rank == root {
		r = ptr(recv)
	}
	check("MPI_Gather", C.pf_gather(ptr(send), count("Gather", len(send)), r, C.int(root), c.c))
}

func (c *mpiComm) Scatter(root int, send, recv []byte) {
	checkRank("Scatter root", root, c.size)
	if c.rank == root && len(send) != len(recv)*c.size {
		panic(fmt.Sprintf("mpi: Scatter send buffer has %d bytes, want %d ranks × %d", len(send), c.size, len(recv)))
	}
	var s unsafe.Pointer
	if c.rank == root {
		s = ptr(send)
	}
	check("MPI_Scatter", C.pf_scatter(s, count("Scatter", len(recv)), ptr(recv), C.int(root), c.c))
}

func (c *mpiComm) Barrier() { check("MPI_Barrier", C.pf_barrier(c.c)) }

func (c *mpiComm) Split(color, key int) Comm {
	var out C.MPI_Comm
	check("MPI_Comm_split", C.pf_split(c.c, C.int(color), C.int(key), &out))
	if C.pf_is_null(out) != 0 {
		return nil
	}
	return newMPIComm(out, false)
}

// Free releases the communicator and the exchanges built on it that were
// not freed yet.
func (c *mpiComm) Free() {
	if c.world || C.pf_is_null(c.c) != 0 {
		return
	}
	for e := range c.live {
		if e.active {
			e.Wait()
		}
		e.Free()
	}
	check("MPI_Comm_free", C.pf_comm_free(&c.c))
}

func (c *mpiComm) Abort(code int) {
	C.pf_abort(c.c, C.int(code))
	select {} // MPI_Abort does not return
}
