package nnlayers

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"pfmpi/gemm"
	"pfmpi/vmath"
)

// ChunkSize is the number of batch members one task of the worker pool
// handles.
const ChunkSize = 4

// Tensor is C channels for each of B batch members on V sites, stored
// [site][batch][channel] (see the package documentation).
type Tensor struct {
	V, B, C    int
	Data, Grad []float64
	// gradPending: Grad holds stale values that count as zero until the
	// first operation of the backward pass takes it (GradForAdd,
	// GradForWrite); see Bank.SetUnclearedGrads.
	gradPending bool
}

// GradForAdd returns the gradient for an operation that adds its share to
// it, first clearing a gradient left uncleared ([Bank.SetUnclearedGrads]).
// Not safe for concurrent use: call it before the work is split.
func (x *Tensor) GradForAdd() []float64 {
	if x.gradPending {
		clear(x.Grad)
		x.gradPending = false
	}
	return x.Grad
}

// GradForWrite returns the gradient for an operation that will write or add
// to every value of it, and assign: true when the gradient holds no share
// yet (it was left uncleared), so the operation must store its values
// rather than add them. Not safe for concurrent use.
func (x *Tensor) GradForWrite() (g []float64, assign bool) {
	assign = x.gradPending
	x.gradPending = false
	return x.Grad, assign
}

// NewTensor returns a zero tensor with a gradient buffer.
func NewTensor(v, b, c int) *Tensor {
	return &Tensor{V: v, B: b, C: c, Data: make([]float64, v*b*c), Grad: make([]float64, v*b*c)}
}

// At returns the index of (site, batch, channel) in Data.
func (t *Tensor) At(s, b, c int) int { return (s*t.B+b)*t.C + c }

// Len is V·B·C.
func (t *Tensor) Len() int { return t.V * t.B * t.C }

func (t *Tensor) shape() string {
	return fmt.Sprintf("%d sites × %d batch × %d channels", t.V, t.B, t.C)
}

// sameShape panics unless a and b have the same shape.
func sameShape(op string, a, b *Tensor) {
	if a.V != b.V || a.B != b.B || a.C != b.C {
		panic(fmt.Sprintf("nnlayers: %s of %s and %s", op, a.shape(), b.shape()))
	}
}

// op is an operation recorded on a tape.
type op interface {
	backward(t *Tape, n *node)
}

// node is one recorded operation.
type node struct {
	op      op
	in      [2]*Tensor
	out     *Tensor
	scratch *Tensor
	f       float64
	i       int
	vec     []float64
	custom  Custom
	bank    *bankRec
}

// Tape records operations for the backward pass and owns their output
// tensors (see the package documentation). A tape is used by one goroutine.
type Tape struct {
	pool     []*Tensor
	next     int
	nodes    []node
	workers  *workers
	ew       elementwise // the running element-wise task
	ext      external    // the running Task of Run
	fillTask fillTask    // the running clear or copy
	arch     gemm.Arch   // the kernel family of the convolutions
	s64      *scratch[float64]
	s32      *scratch[float32]
	// NoGrad switches recording off (inference): operations still compute,
	// Backward has nothing to do.
	NoGrad bool
	pass   uint64   // counts Reset calls
	prof   *Profile // nil: no profiling
}

// NewTape returns a tape whose operations run on n goroutines (n ≤ 0:
// GOMAXPROCS), with the fastest kernels this CPU runs ([gemm.Best]).
func NewTape(n int) *Tape {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Tape{workers: newWorkers(n), arch: gemm.Best()}
}

// SetKernels makes the tape's convolutions use the kernels of family a
// (tests and benchmarks compare them); it fails if this CPU does not run
// them.
func (t *Tape) SetKernels(a gemm.Arch) error {
	if !gemm.Available(a) {
		return fmt.Errorf("nnlayers: this CPU does not run the %s kernels", a)
	}
	t.arch, t.s64, t.s32 = a, nil, nil
	return nil
}

// Kernels is the kernel family of the tape's convolutions.
func (t *Tape) Kernels() gemm.Arch { return t.arch }

// scratch is what the convolutions of one compute precision share on a
// tape: the kernels, per-goroutine workspaces and the buffers of the
// running operation (operations run one at a time).
type scratch[C gemm.Float] struct {
	mm     *gemm.Kernel[C]
	vm     *vmath.Funcs[C]
	ws     []gemm.Workspace[C]
	blk    [][]C          // per goroutine: an output block
	pa, pb gemm.Packed[C] // operands shared by the tasks
	bias   []C            // the convolution's bias
	xc     packedInput[C] // the last packed X (forward)
	xtc    packedInput[C] // the last packed Xᵀ (weight gradient)
	z      []C            // Z of a convolution being differentiated
	p      []C            // P = Z Wᵀ of a convolution being differentiated
	ztmp   [][]float64    // per goroutine: a row of Z in float64
	tasks  convTasks[C]
}

// scratchOf returns the tape's scratch for compute precision C.
func scratchOf[C gemm.Float](t *Tape) *scratch[C] {
	var z C
	var s *scratch[C]
	switch any(z).(type) {
	case float64:
		if t.s64 == nil {
			t.s64 = newScratch[float64](t.arch, t.workers.n)
		}
		s = any(t.s64).(*scratch[C])
	default:
		if t.s32 == nil {
			t.s32 = newScratch[float32](t.arch, t.workers.n)
		}
		s = any(t.s32).(*scratch[C])
	}
	return s
}

func newScratch[C gemm.Float](a gemm.Arch, workers int) *scratch[C] {
	return &scratch[C]{mm: gemm.MustNew[C](a), vm: vmath.MustNew[C](a),
		ws: make([]gemm.Workspace[C], workers), blk: make([][]C, workers)}
}

// Close stops the tape's goroutines.
func (t *Tape) Close() { t.workers.close() }

// Workers is the number of goroutines.
func (t *Tape) Workers() int { return t.workers.n }

// Reset forgets the recorded operations and makes the tape's tensors
// available again, in the order they were handed out.
func (t *Tape) Reset() {
	t.pass++
	t.next = 0
	clear(t.nodes)
	t.nodes = t.nodes[:0]
}

// Tensor returns a zero tensor (data and gradient) owned by the tape, valid
// until the next Reset.
func (t *Tape) Tensor(v, b, c int) *Tensor { return t.tensor(v, b, c, true, true) }

// Uncleared returns a tensor owned by the tape, valid until the next Reset,
// whose gradient is zero and whose values are whatever an earlier pass left
// in them: for an operation that writes every value before any is read (a
// halo-padded copy of its input, its output).
func (t *Tape) Uncleared(v, b, c int) *Tensor { return t.tensor(v, b, c, false, true) }

// Poison sets every value and gradient the tape holds in its pool to NaN,
// for tests: a pass after it that reads a value of an Uncleared tensor (or
// an uncleared gradient) before writing it yields NaN instead of silently
// reusing the last pass's value.
func (t *Tape) Poison() {
	for _, x := range t.pool {
		for i := range x.Data {
			x.Data[i] = math.NaN()
		}
		for i := range x.Grad {
			x.Grad[i] = math.NaN()
		}
	}
}

// tensor is Tensor; clearData false leaves the values as the last pass
// left them, for an operation that writes every one; clearGrad false
// leaves the gradient pending (see Tensor.GradForAdd).
func (t *Tape) tensor(v, b, c int, clearData, clearGrad bool) *Tensor {
	// The pool is handed out in order; when the sequence of shapes differs
	// from the last pass (training and sampling share a tape, say), a
	// tensor of the right shape further on is swapped into place, so
	// alternating sequences reuse memory instead of reallocating it.
	for j := t.next; j < len(t.pool); j++ {
		if x := t.pool[j]; x.V == v && x.B == b && x.C == c {
			t.pool[t.next], t.pool[j] = x, t.pool[t.next]
			t.next++
			var f fillTask
			if clearGrad {
				f.dst[0] = x.Grad
			}
			if clearData {
				f.dst[1] = x.Data
			}
			t.fill(f)
			x.gradPending = !clearGrad
			return x
		}
	}
	x := NewTensor(v, b, c)
	x.gradPending = !clearGrad
	t.pool = append(t.pool, x)
	last := len(t.pool) - 1
	t.pool[t.next], t.pool[last] = x, t.pool[t.next]
	t.next++
	return x
}

func (t *Tape) record(n node) {
	if !t.NoGrad {
		t.nodes = append(t.nodes, n)
	}
}

// Custom is an operation defined outside this package (a coupling layer, a
// parallel-transport convolution): it computed its outputs when it was
// applied (its forward kernels) and Backward (its backward kernels) adds
// the vector–Jacobian product to the Grad of its inputs and parameters.
// Everything Backward needs — tensors, halo exchanges, scratch — is
// captured when the operation is applied, so Backward fails only on a
// broken invariant; Tape.Backward returns its error.
type Custom interface {
	Backward(t *Tape) error
}

// RecordCustom appends a custom operation (nothing in inference mode).
func (t *Tape) RecordCustom(c Custom) { t.record(node{custom: c}) }

// Records hands out the per-application records of a custom operation:
// Next returns a record for one more application in the tape's current
// pass (record i of the pass is reused in every later pass), so an
// operation applied several times before a backward pass keeps the state of
// each application, without allocating once the pool is sized.
type Records[T any] struct {
	tape *Tape
	pass uint64
	used int
	recs []*T
}

// Next returns the record of the next application on t (its fields as the
// previous pass left them).
func (r *Records[T]) Next(t *Tape) *T {
	if r.tape != t || r.pass != t.pass {
		r.tape, r.pass, r.used = t, t.pass, 0
	}
	if r.used == len(r.recs) {
		r.recs = append(r.recs, new(T))
	}
	r.used++
	return r.recs[r.used-1]
}

// Task is work split into items that Run hands to the tape's goroutines.
type Task interface {
	// Run handles item on goroutine w ∈ [0, Workers()), which may index
	// per-goroutine scratch.
	Run(w, item int)
}

// Run runs task on items [0, items) on the tape's goroutines and returns
// when all are done. Items must write disjoint outputs.
func (t *Tape) Run(items int, task Task) {
	t.ext.t = task
	t.workers.run(items, &t.ext)
	t.ext.t = nil
}

type external struct{ t Task }

func (e *external) run(w, item int) { e.t.Run(w, item) }

// Chunks is the number of batch chunks of a batch of b; ChunkRange is the
// batch members [lo, hi) of chunk c.
func Chunks(b int) int { return chunks(b) }

func ChunkRange(c, b int) (lo, hi int) { return chunkRange(c, b) }

// Backward runs the vector–Jacobian products of the recorded operations in
// reverse order. The caller has set the Grad of the outputs it
// differentiates (dL/d output); Backward adds dL/d input to every tensor
// with a gradient buffer and dL/d θ to the parameters' Grad. It stops at the
// first error of a custom operation.
func (t *Tape) Backward() error {
	for i := len(t.nodes) - 1; i >= 0; i-- {
		n := &t.nodes[i]
		start := t.Begin()
		if n.custom != nil {
			if err := n.custom.Backward(t); err != nil {
				return err
			}
			if t.prof != nil {
				kind, flops := "custom", int64(0)
				if k, ok := n.custom.(Kinded); ok {
					kind = k.Kind()
				}
				if f, ok := n.custom.(backwardFlops); ok {
					flops = f.BackwardFlops()
				}
				t.End(kind, start, flops, true)
			}
			continue
		}
		for _, x := range n.in {
			if x != nil {
				x.GradForAdd()
			}
		}
		n.op.backward(t, n)
		if t.prof != nil {
			if b, ok := n.op.(*Bank); ok {
				flops := b.Flops(n.bank.outs[0].B)
				if n.in[0].Grad != nil {
					flops *= 2
				}
				t.endProducts(b.kind, start, flops, true)
			} else {
				t.End("element-wise", start, 0, true)
			}
		}
	}
	return nil
}

// task is work split into items (chunks of the batch, or blocks of a flat
// range): run handles item on goroutine w (for per-goroutine scratch).
type task interface {
	run(w, item int)
}

// workers is a fixed pool of goroutines. A run publishes its task by
// advancing a generation counter; idle goroutines spin on it for a while
// (a training step launches thousands of short tasks, and waking a parked
// goroutine costs more than many of them) and then park until the next run.
// Items are taken with an atomic counter.
type workers struct {
	n        int
	gen      atomic.Uint64 // one more per run
	next     atomic.Int64  // the next item of the running task
	end      int64
	t        task
	finished atomic.Int32 // helpers done with the running task
	stop     atomic.Bool
	mu       sync.Mutex
	cond     *sync.Cond
	sleepers int // helpers parked on cond (under mu)
}

// spinRounds is how long an idle helper polls for the next task before
// parking (about 50 µs).
const spinRounds = 1 << 12

func newWorkers(n int) *workers {
	w := &workers{n: n}
	w.cond = sync.NewCond(&w.mu)
	for id := 1; id < n; id++ {
		go w.helper(id)
	}
	return w
}

func (w *workers) close() {
	w.stop.Store(true)
	w.mu.Lock()
	w.cond.Broadcast()
	w.mu.Unlock()
}

// helper takes items of every run until the pool closes.
func (w *workers) helper(id int) {
	seen := uint64(0)
	for {
		for spin := 0; w.gen.Load() == seen; spin++ {
			if w.stop.Load() {
				return
			}
			if spin < spinRounds {
				if spin&63 == 63 {
					runtime.Gosched()
				}
				continue
			}
			w.mu.Lock()
			w.sleepers++
			for w.gen.Load() == seen && !w.stop.Load() {
				w.cond.Wait()
			}
			w.sleepers--
			w.mu.Unlock()
		}
		if w.stop.Load() {
			return
		}
		seen = w.gen.Load()
		w.drain(id)
		w.finished.Add(1)
	}
}

// drain takes items until none is left.
func (w *workers) drain(id int) {
	t := w.t
	for {
		item := w.next.Add(1) - 1
		if item >= w.end {
			return
		}
		t.run(id, int(item))
	}
}

// run runs t on items [0, items) on the pool; the calling goroutine works
// as worker 0. Items write disjoint outputs, so the result does not depend
// on which goroutine ran which item.
func (w *workers) run(items int, t task) {
	if items <= 0 {
		return
	}
	if items == 1 || w.n == 1 {
		for i := range items {
			t.run(0, i)
		}
		return
	}
	w.t, w.end = t, int64(items)
	w.next.Store(0)
	w.finished.Store(0)
	w.gen.Add(1) // publishes the task
	w.mu.Lock()
	if w.sleepers > 0 {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	w.drain(0)
	// The helpers still at work run on other threads: poll without
	// yielding at first. The caller is often the main goroutine, locked to
	// its OS thread (MPI), for which a yield hands the processor to another
	// thread and back; yield only when helpers are late (more goroutines
	// than cores).
	for spin := 0; w.finished.Load() < int32(w.n-1); spin++ {
		if spin >= spinRounds && spin&63 == 63 {
			runtime.Gosched()
		}
	}
	w.t = nil
}

// chunks is the number of batch chunks of a batch of b; chunk c holds
// members [c·ChunkSize, min((c+1)·ChunkSize, b)).
func chunks(b int) int { return (b + ChunkSize - 1) / ChunkSize }

func chunkRange(c, b int) (lo, hi int) { return c * ChunkSize, min((c+1)*ChunkSize, b) }

// blockSize is the number of values of one item of an element-wise task.
const blockSize = 1 << 14

func blocks(n int) int { return (n + blockSize - 1) / blockSize }

func blockRange(i, n int) (lo, hi int) { return i * blockSize, min((i+1)*blockSize, n) }

// fillTask clears (src nil) or copies into up to two slices block by
// block: the tape clears the tensors it hands out and copies inputs into
// their padded tensors with every goroutine, as they are large.
type fillTask struct {
	dst [2][]float64
	src [2][]float64
}

func (f *fillTask) run(_, item int) {
	for i := range f.dst {
		nb := blocks(len(f.dst[i]))
		if item >= nb {
			item -= nb
			continue
		}
		lo, hi := blockRange(item, len(f.dst[i]))
		if f.src[i] == nil {
			clear(f.dst[i][lo:hi])
		} else {
			copy(f.dst[i][lo:hi], f.src[i][lo:hi])
		}
		return
	}
}

// fill runs f with the tape's goroutines when it is large.
func (t *Tape) fill(f fillTask) {
	items := blocks(len(f.dst[0])) + blocks(len(f.dst[1]))
	if items <= 2 || t.workers.n == 1 {
		for i := range f.dst {
			if f.src[i] == nil {
				clear(f.dst[i])
			} else {
				copy(f.dst[i], f.src[i])
			}
		}
		return
	}
	t.fillTask = f
	t.workers.run(items, &t.fillTask)
	t.fillTask = fillTask{}
}

// copyData copies src into the front of dst (len(dst) ≥ len(src)).
func (t *Tape) copyData(dst, src []float64) {
	t.fill(fillTask{dst: [2][]float64{dst[:len(src)]}, src: [2][]float64{src}})
}
