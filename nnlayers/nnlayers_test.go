package nnlayers

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"

	"pfmpi/decomp"
	"pfmpi/gemm"
	"pfmpi/internal/allocstest"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

// newGeometry returns rank c's geometry of dims over grid.
func newGeometry(c mpi.Comm, dims, grid []int) (*Geometry, error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	return NewGeometry(c, ly), nil
}

// randomTensor fills a tensor keyed by global site and global batch index
// (b0 + b), so that it does not depend on the process grid or the replica.
func randomTensor(geo *Geometry, b, c, b0 int, key rng.Key) *Tensor {
	x := NewTensor(geo.Volume(), b, c)
	for s := 0; s < x.V; s++ {
		g := uint64(geo.ly.GlobalIndex(s))
		for k := 0; k < b; k++ {
			st := key.Derive(uint64(b0 + k)).Stream(g)
			for i := 0; i < c; i++ {
				x.Data[x.At(s, k, i)] = st.Normal()
			}
		}
	}
	return x
}

func dot(c mpi.Comm, a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return mpi.SumFloat64(c, s)
}

// layerCase is one operation under test: build returns the output of the
// operation on the inputs, and its parameters.
type layerCase struct {
	name   string
	in     []int // channels of each input (one or two)
	params func(geo *Geometry) (Module, error)
	apply  func(t *Tape, m Module, x []*Tensor) *Tensor
}

func single(m Module) func(t *Tape, _ Module, x []*Tensor) *Tensor {
	return func(t *Tape, mm Module, x []*Tensor) *Tensor { return mm.Apply(t, x[0]) }
}

func convCase(name string, in, out, k, d int) layerCase {
	return layerCase{
		name: name, in: []int{in},
		params: func(geo *Geometry) (Module, error) {
			c, err := NewConv(geo, name, in, out, k, d)
			if err != nil {
				return nil, err
			}
			c.InitXavier(3, 1)
			for i := range c.B.Value {
				c.B.Value[i] = 0.1 * float64(i+1)
			}
			return c, nil
		},
		apply: func(t *Tape, m Module, x []*Tensor) *Tensor { return m.Apply(t, x[0]) },
	}
}

// bankModule is a convolution cut into slices of the given widths, their
// tensors concatenated again (a Module for the tests).
type bankModule struct {
	conv   *Conv
	widths []int
}

func (b bankModule) Apply(t *Tape, x *Tensor) *Tensor {
	var ms []Outputs
	lo := 0
	for _, w := range b.widths {
		ms = append(ms, b.conv.Outputs(lo, lo+w))
		lo += w
	}
	bank, err := NewBank(ms...)
	if err != nil {
		panic(err)
	}
	ys := bank.Apply(t, x)
	y := ys[0]
	for _, z := range ys[1:] {
		y = Concat(t, y, z)
	}
	return y
}

func (b bankModule) Params() Params { return b.conv.Params() }

// bankCase is a 3-tap convolution cut into slices of the given widths.
func bankCase(name string, in, out, d int, seed uint64, a Activation, widths []int) layerCase {
	return layerCase{name: name, in: []int{in}, params: func(geo *Geometry) (Module, error) {
		c, err := NewConv(geo, name, in, out, 3, d)
		if err != nil {
			return nil, err
		}
		c.InitXavier(seed, 1)
		c.SetActivation(a)
		return bankModule{c, widths}, nil
	}, apply: func(t *Tape, m Module, x []*Tensor) *Tensor { return m.Apply(t, x[0]) }}
}

// fusedCase is a convolution with a fused activation.
func fusedCase(name string, in, out, k, d int, a Activation) layerCase {
	lc := convCase(name, in, out, k, d)
	build := lc.params
	lc.params = func(geo *Geometry) (Module, error) {
		m, err := build(geo)
		if err != nil {
			return nil, err
		}
		m.(*Conv).SetActivation(a)
		return m, nil
	}
	return lc
}

func opCase(name string, in []int, f func(t *Tape, x []*Tensor) *Tensor) layerCase {
	return layerCase{name: name, in: in, apply: func(t *Tape, _ Module, x []*Tensor) *Tensor { return f(t, x) }}
}

func layerCases(geo *Geometry) []layerCase {
	mask := make([]float64, geo.Volume())
	coord := make([]int, geo.ly.Lattice().NumDims())
	for s := range mask {
		geo.ly.GlobalCoord(s, coord)
		mask[s] = float64((coord[0] + 2*coord[1]) % 3)
	}
	cases := []layerCase{
		convCase("conv3", 2, 3, 3, 1),
		convCase("conv3-dilated", 2, 2, 3, 2),
		convCase("conv1", 3, 2, 1, 1),
		convCase("conv5", 1, 2, 5, 1),
		fusedCase("conv3-tanh", 2, 3, 3, 1, Tanh),
		fusedCase("conv3-dilated-elu", 3, 2, 3, 2, ELU),
		fusedCase("conv1-softplus", 2, 3, 1, 1, Softplus),
		bankCase("bank", 3, 6, 1, 7, Tanh, []int{2, 3, 1}),
		// Many outputs per input channel, like the pseudofermion heads: the
		// input gradient goes through P = Z Wᵀ instead of tap by tap.
		bankCase("bank-wide", 2, 7, 2, 5, ELU, []int{3, 4}),
	}
	for _, a := range []Activation{ELU, Tanh, LeakyReLU, Softplus} {
		cases = append(cases, opCase(a.String(), []int{2}, func(t *Tape, x []*Tensor) *Tensor { return a.Apply(t, x[0]) }))
	}
	cases = append(cases,
		opCase("add", []int{2, 2}, func(t *Tape, x []*Tensor) *Tensor { return Add(t, x[0], x[1]) }),
		opCase("mul", []int{2, 2}, func(t *Tape, x []*Tensor) *Tensor { return Mul(t, x[0], x[1]) }),
		opCase("scale", []int{2}, func(t *Tape, x []*Tensor) *Tensor { return Scale(t, x[0], -1.7) }),
		opCase("mask", []int{2}, func(t *Tape, x []*Tensor) *Tensor { return MaskSites(t, x[0], mask) }),
		opCase("concat", []int{2, 3}, func(t *Tape, x []*Tensor) *Tensor { return Concat(t, x[0], x[1]) }),
		opCase("slice", []int{4}, func(t *Tape, x []*Tensor) *Tensor { return Slice(t, x[0], 1, 3) }),
		opCase("softmax", []int{3}, func(t *Tape, x []*Tensor) *Tensor { return Softmax(t, x[0]) }),
		// A composition with a shared module: gradients of both uses add up.
		opCase("shared", []int{2}, func(t *Tape, x []*Tensor) *Tensor {
			y := Tanh.Apply(t, x[0])
			return Mul(t, y, ELU.Apply(t, y))
		}),
	)
	return cases
}

// TestVJPFiniteDifferences compares every operation's vector–Jacobian
// product with central differences, for inputs and parameters, on several
// process grids (2D, and 4D for the convolutions).
func TestVJPFiniteDifferences(t *testing.T) {
	for _, g := range []struct{ dims, grid []int }{
		{[]int{8, 8}, []int{1, 1}},
		{[]int{8, 8}, []int{2, 1}},
		{[]int{8, 8}, []int{2, 2}},
		{[]int{8, 8}, []int{1, 4}},
		{[]int{4, 4, 4, 4}, []int{2, 1, 1, 2}},
	} {
		ranks := 1
		for _, n := range g.grid {
			ranks *= n
		}
		mpitest.Run(t, ranks, func(c mpi.Comm) error {
			geo, err := newGeometry(c, g.dims, g.grid)
			if err != nil {
				return err
			}
			defer geo.Close()
			tape := NewTape(2)
			defer tape.Close()
			for _, lc := range layerCases(geo) {
				if len(g.dims) == 4 && (lc.params == nil || lc.name == "conv5") {
					continue // element-wise ops are dimension-blind; 5⁴ taps are slow
				}
				if err := checkVJP(c, geo, tape, lc); err != nil {
					return fmt.Errorf("%v grid %v: %s: %w", g.dims, g.grid, lc.name, err)
				}
			}
			return nil
		})
	}
}

func checkVJP(c mpi.Comm, geo *Geometry, tape *Tape, lc layerCase) error {
	const b = 3
	var m Module
	var ps Params
	if lc.params != nil {
		var err error
		if m, err = lc.params(geo); err != nil {
			return err
		}
		ps = m.Params()
	}
	xs := make([]*Tensor, len(lc.in))
	for i, ch := range lc.in {
		xs[i] = randomTensor(geo, b, ch, 0, rng.New(uint64(10+i), "x"))
	}
	tape.Reset()
	y := lc.apply(tape, m, xs)
	w := randomTensor(geo, b, y.C, 0, rng.New(20, "w"))
	copy(y.Grad, w.Data)
	tape.Backward()
	loss := func() float64 {
		tape.Reset()
		return dot(c, w.Data, lc.apply(tape, m, xs).Data)
	}
	fd := func(v []float64, dir []float64) float64 {
		const eps = 1e-5
		saved := append([]float64(nil), v...)
		for i := range v {
			v[i] = saved[i] + eps*dir[i]
		}
		plus := loss()
		for i := range v {
			v[i] = saved[i] - eps*dir[i]
		}
		minus := loss()
		copy(v, saved)
		return (plus - minus) / (2 * eps)
	}
	for i, x := range xs {
		dir := randomTensor(geo, b, x.C, 0, rng.New(uint64(30+i), "dir")).Data
		want := dot(c, dir, x.Grad)
		got := fd(x.Data, dir)
		if math.Abs(got-want) > 1e-7*(1+math.Abs(want)) {
			return fmt.Errorf("input %d: ⟨dir, ∂L/∂x⟩ = %.12g, central difference %.12g", i, want, got)
		}
	}
	for _, p := range ps {
		st := rng.New(40, p.Name).Stream(0)
		dir := make([]float64, p.Size())
		for i := range dir {
			dir[i] = st.Normal()
		}
		want := 0.0
		for i := range dir {
			want += dir[i] * p.Grad[i]
		}
		want = mpi.SumFloat64(c, want) // each rank holds its sites' share
		got := fd(p.Value, dir)
		if math.Abs(got-want) > 1e-7*(1+math.Abs(want)) {
			return fmt.Errorf("parameter %s: ⟨dir, ∂L/∂θ⟩ = %.12g, central difference %.12g", p.Name, want, got)
		}
	}
	return nil
}

// network is the context network used by the distributed and training
// tests: 4 → 16 → 16 → 3 channels, kernel 3 (the middle one dilated).
func network(geo *Geometry) (Sequential, error) {
	a, err := NewConv(geo, "net.a", 4, 16, 3, 1)
	if err != nil {
		return nil, err
	}
	b, err := NewConv(geo, "net.b", 16, 16, 3, 2)
	if err != nil {
		return nil, err
	}
	c, err := NewConv(geo, "net.c", 16, 3, 1, 1)
	if err != nil {
		return nil, err
	}
	a.InitXavier(1, 1)
	b.InitXavier(1, 1)
	c.InitXavier(1, 1)
	return Sequential{a, ELU, b, Tanh, c}, nil
}

// forwardBackward runs the network on this replica's share of a batch of
// total members and returns the output, with the gradients of
// L = Σ w·y (over all ranks and replicas) summed over the world.
func forwardBackward(world, domain mpi.Comm, geo *Geometry, tape *Tape, net Sequential, total, replicas, replica int) *Tensor {
	b := total / replicas
	b0 := replica * b
	x := randomTensor(geo, b, 4, b0, rng.New(1, "input"))
	x.Grad = nil
	tape.Reset()
	y := net.Apply(tape, x)
	w := randomTensor(geo, b, 3, b0, rng.New(2, "weights"))
	copy(y.Grad, w.Data)
	net.Params().ZeroGrad()
	tape.Backward()
	AllreduceGrads(world, net.Params(), nil)
	return y
}

// TestDistributedNetwork requires the network's outputs and parameter
// gradients on grids 1×1, 2×1, 2×2 and with two replicas splitting the
// batch to equal the one-rank values to rounding.
func TestDistributedNetwork(t *testing.T) {
	dims := []int{8, 8}
	const total = 8
	type result struct {
		out   []float64 // [global site][global batch][channel]
		grads map[string][]float64
	}
	run := func(grid []int, replicas int) result {
		ranks := grid[0] * grid[1] * replicas
		var res result
		mpitest.Run(t, ranks, func(world mpi.Comm) error {
			lat, err := decomp.NewLattice(dims, grid, false)
			if err != nil {
				return err
			}
			domain, replica, err := decomp.SplitWorld(world, lat)
			if err != nil {
				return err
			}
			defer domain.Free()
			defer replica.Free()
			ly, err := lat.Layout(domain.Rank())
			if err != nil {
				return err
			}
			geo := NewGeometry(domain, ly)
			defer geo.Close()
			tape := NewTape(2)
			defer tape.Close()
			net, err := network(geo)
			if err != nil {
				return err
			}
			r := world.Rank() / domain.Size()
			y := forwardBackward(world, domain, geo, tape, net, total, replicas, r)
			// Every rank places its outputs in the global array; the sum
			// over the world assembles it on every rank.
			out := make([]float64, 64*total*y.C)
			for s := 0; s < y.V; s++ {
				g := int(ly.GlobalIndex(s))
				for k := 0; k < y.B; k++ {
					copy(out[(g*total+r*y.B+k)*y.C:], y.Data[y.At(s, k, 0):y.At(s, k, 0)+y.C])
				}
			}
			world.Allreduce(mpi.Sum, out)
			grads := map[string][]float64{}
			for _, p := range net.Params() {
				grads[p.Name] = append([]float64(nil), p.Grad...)
			}
			if world.Rank() == 0 {
				res = result{out: out, grads: grads}
			}
			return nil
		})
		return res
	}
	ref := run([]int{1, 1}, 1)
	if ref.out == nil {
		return // under mpirun, a process outside the first group
	}
	for _, c := range []struct {
		grid     []int
		replicas int
	}{{[]int{2, 1}, 1}, {[]int{2, 2}, 1}, {[]int{1, 1}, 2}, {[]int{2, 1}, 2}} {
		got := run(c.grid, c.replicas)
		if got.out == nil {
			continue
		}
		worstOut, worstGrad := 0.0, 0.0
		for i, v := range ref.out {
			worstOut = max(worstOut, math.Abs(got.out[i]-v))
		}
		for name, g := range ref.grads {
			for i := range g {
				worstGrad = max(worstGrad, math.Abs(got.grads[name][i]-g[i])/(1+math.Abs(g[i])))
			}
		}
		t.Logf("grid %v × %d replicas: max |Δoutput| %.2g, max relative |Δgradient| %.2g", c.grid, c.replicas, worstOut, worstGrad)
		if worstOut > 1e-13 || worstGrad > 1e-12 {
			t.Errorf("grid %v × %d replicas: max output difference %g, max gradient difference %g",
				c.grid, c.replicas, worstOut, worstGrad)
		}
	}
}

// TestWorkerCountDoesNotMatter requires bitwise equal results with 1 and 3
// goroutines.
func TestWorkerCountDoesNotMatter(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		geo, err := newGeometry(c, []int{8, 8}, []int{1, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		var outs [2][]float64
		var grads [2][]float64
		for i, n := range []int{1, 3} {
			tape := NewTape(n)
			net, err := network(geo)
			if err != nil {
				return err
			}
			y := forwardBackward(c, c, geo, tape, net, 10, 1, 0)
			outs[i] = append([]float64(nil), y.Data...)
			for _, p := range net.Params() {
				grads[i] = append(grads[i], p.Grad...)
			}
			tape.Close()
		}
		for i := range outs[0] {
			if outs[0][i] != outs[1][i] {
				return fmt.Errorf("output %d differs between 1 and 3 goroutines", i)
			}
		}
		for i := range grads[0] {
			if grads[0][i] != grads[1][i] {
				return fmt.Errorf("gradient %d differs between 1 and 3 goroutines", i)
			}
		}
		return nil
	})
}

// TestAdamReference follows Adam, AdamW (with clipping and a decaying
// learning rate) for three steps on L = ½ Σ a θ² against trajectories
// computed independently (Python, written from the update formulas).
// TestAdamShares: the update applied in shares (Begin, then Update on
// every share, in any order) is the update of Step, bit for bit, with
// shares that cut parameters and shares that are empty.
func TestAdamShares(t *testing.T) {
	newSet := func() Params {
		ps := Params{NewParam("a", 5), NewParam("b", 7), NewParam("c", 1)}
		for k, p := range ps {
			for i := range p.Value {
				p.Value[i] = float64(k) - 0.3*float64(i)
			}
		}
		return ps
	}
	cfg := AdamConfig{LR: 0.05, Eps: 0.02, WeightDecay: 0.1, Decoupled: true, ClipNorm: 0.7}
	for _, shares := range []int{2, 3, 20} {
		ps1, ps2 := newSet(), newSet()
		a1, err := NewAdam(ps1, cfg)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := NewAdam(ps2, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for step := range 3 {
			for k := range ps1 {
				for i := range ps1[k].Grad {
					g := math.Sin(float64(7*step+3*k+i)) * 0.4
					ps1[k].Grad[i], ps2[k].Grad[i] = g, g
				}
			}
			n1 := a1.Step()
			n2 := a2.Begin()
			for w := shares - 1; w >= 0; w-- {
				a2.Update(w, shares)
			}
			if n1 != n2 {
				t.Fatalf("%d shares, step %d: gradient norm %v, want %v", shares, step, n2, n1)
			}
			moved := 0
			for k := range ps1 {
				for i, v := range ps1[k].Value {
					if ps2[k].Value[i] != v {
						t.Fatalf("%d shares, step %d: %s[%d] = %v, Step gives %v", shares, step, ps1[k].Name, i, ps2[k].Value[i], v)
					}
					if v != float64(k)-0.3*float64(i) {
						moved++
					}
				}
			}
			if moved < 12 {
				t.Fatalf("%d shares, step %d: only %d of 13 parameters moved", shares, step, moved)
			}
		}
	}
}

func TestAdamReference(t *testing.T) {
	cases := []struct {
		name string
		cfg  AdamConfig
		want [3][2]float64 // θ after each step
	}{
		{"adam", AdamConfig{LR: 0.1, Eps: 1e-8},
			[3][2]float64{{0.9000000005, -1.900000001}, {0.8004122286917928, -1.8001664876318761}, {0.7015862729460303, -1.7006233943434113}}},
		{"adamw-clip-decay", AdamConfig{LR: 0.1, Eps: 0.02, WeightDecay: 0.1, Decoupled: true, ClipNorm: 1, DecayEvery: 2, DecayFactor: 0.5},
			[3][2]float64{{0.8921871615582789, -1.884280697349699}, {0.7854951901590583, -1.7695438938316006}, {0.7327219646161547, -1.7126224220841966}}},
		{"adam-warmup", AdamConfig{LR: 0.1, Eps: 1e-8, Warmup: 2},
			[3][2]float64{{0.95000000025, -1.9500000005}, {0.8501664863710928, -1.8500739963399004}, {0.7509479199890805, -1.7503966474570098}}},
		{"adam-l2", AdamConfig{LR: 0.05, Eps: 0.01, WeightDecay: 0.5},
			[3][2]float64{{0.950199203187251, -1.9502487562189055}, {0.9004859065632824, -1.90053721697405}, {0.8509216563718991, -1.850891083608443}}},
	}
	a := []float64{2, 0.5}
	for _, c := range cases {
		p := NewParam("theta", 2)
		p.Value[0], p.Value[1] = 1, -2
		opt, err := NewAdam(Params{p}, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for step := range 3 {
			for i := range p.Value {
				p.Grad[i] = a[i] * p.Value[i]
			}
			opt.Step()
			for i := range p.Value {
				if math.Abs(p.Value[i]-c.want[step][i]) > 1e-13 {
					t.Errorf("%s step %d: θ = %v, want %v", c.name, step+1, p.Value, c.want[step])
					break
				}
			}
		}
	}
}

// TestCheckpointContinuesBitIdentically trains, saves parameters and
// optimizer state, and requires a restored copy to continue exactly like the
// original.
func TestCheckpointContinuesBitIdentically(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		geo, err := newGeometry(c, []int{8, 8}, []int{2, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		tape := NewTape(2)
		defer tape.Close()
		cfg := AdamConfig{LR: 0.01, Eps: 0.02, WeightDecay: 0.01, Decoupled: true, ClipNorm: 5, DecayEvery: 3, DecayFactor: 0.5}
		build := func() (Sequential, *Adam, error) {
			net, err := network(geo)
			if err != nil {
				return nil, nil, err
			}
			opt, err := NewAdam(net.Params(), cfg)
			return net, opt, err
		}
		train := func(net Sequential, opt *Adam, steps int) {
			for range steps {
				forwardBackward(c, c, geo, tape, net, 4, 1, 0)
				opt.Step()
			}
		}
		net, opt, err := build()
		if err != nil {
			return err
		}
		train(net, opt, 4)
		var params, state bytes.Buffer
		if err := WriteParams(&params, net.Params()); err != nil {
			return err
		}
		if err := opt.WriteState(&state); err != nil {
			return err
		}
		train(net, opt, 3)
		net2, opt2, err := build()
		if err != nil {
			return err
		}
		if err := ReadParams(bytes.NewReader(params.Bytes()), net2.Params()); err != nil {
			return err
		}
		if err := opt2.ReadState(bytes.NewReader(state.Bytes())); err != nil {
			return err
		}
		train(net2, opt2, 3)
		for i, p := range net.Params() {
			q := net2.Params()[i]
			for j := range p.Value {
				if p.Value[j] != q.Value[j] {
					return fmt.Errorf("%s[%d]: %v continued, %v restored", p.Name, j, p.Value[j], q.Value[j])
				}
			}
		}
		if opt.Steps() != 7 || opt2.Steps() != 7 {
			return fmt.Errorf("steps %d and %d", opt.Steps(), opt2.Steps())
		}
		// A damaged record is refused.
		bad := bytes.Clone(params.Bytes())
		bad[len(bad)/2] ^= 1
		if err := ReadParams(bytes.NewReader(bad), net2.Params()); err == nil {
			return fmt.Errorf("a damaged parameter record was accepted")
		}
		return nil
	})
}

// TestTrainingSmoke fits a network to a known nonlinear lattice function of
// its input and requires the loss to fall tenfold.
func TestTrainingSmoke(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		geo, err := newGeometry(c, []int{8, 8}, []int{1, 2})
		if err != nil {
			return err
		}
		defer geo.Close()
		tape := NewTape(2)
		defer tape.Close()
		a, _ := NewConv(geo, "fit.a", 1, 16, 3, 1)
		b, _ := NewConv(geo, "fit.b", 16, 1, 3, 1)
		a.InitXavier(5, 1)
		b.InitXavier(5, 1)
		net := Sequential{a, Tanh, b}
		opt, err := NewAdam(net.Params(), AdamConfig{LR: 0.01, Eps: 1e-8})
		if err != nil {
			return err
		}
		// Target: t(x) = tanh(u(x + ê_0) − u(x)) + 0.3 u(x).
		const batch = 8
		up, err := func() ([]int32, error) {
			z, err := geo.zone(1)
			if err != nil {
				return nil, err
			}
			return z.Shift([]int{1, 0})
		}()
		if err != nil {
			return err
		}
		var first, last float64
		for step := range 300 {
			x := randomTensor(geo, batch, 1, batch*step, rng.New(6, "smoke"))
			z, _ := geo.zone(1)
			padded := make([]float64, z.Len()*batch)
			copy(padded, x.Data)
			geo.halo(1, batch).Exchange(padded, decomp.All)
			tape.Reset()
			y := net.Apply(tape, x)
			loss := 0.0
			for s := 0; s < y.V; s++ {
				for k := 0; k < batch; k++ {
					u := x.Data[s*batch+k]
					target := math.Tanh(padded[int(up[s])*batch+k]-u) + 0.3*u
					d := y.Data[s*batch+k] - target
					loss += d * d
					y.Grad[s*batch+k] = 2 * d
				}
			}
			loss = mpi.SumFloat64(c, loss) / float64(64*batch)
			net.Params().ZeroGrad()
			tape.Backward()
			AllreduceGrads(c, net.Params(), nil)
			opt.Step()
			if step < 10 {
				first += loss / 10
			}
			if step >= 290 {
				last += loss / 10
			}
		}
		if c.Rank() == 0 {
			t.Logf("loss: %.4g over the first 10 steps, %.4g over the last 10 (÷%.0f)", first, last, first/last)
		}
		if !(last < first/10) {
			return fmt.Errorf("loss %g over the first 10 steps, %g over the last 10: not tenfold lower", first, last)
		}
		return nil
	})
}

// TestNoAllocationInSteadyState repeats a training step that uses every
// kind of operation and requires it not to allocate once the pools are
// sized.
func TestNoAllocationInSteadyState(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		geo, err := newGeometry(c, []int{8, 8}, []int{2, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		tape := NewTape(2)
		defer tape.Close()
		net, err := network(geo)
		if err != nil {
			return err
		}
		x := randomTensor(geo, 8, 4, 0, rng.New(1, "x"))
		mask := make([]float64, geo.Volume())
		for i := range mask {
			mask[i] = float64(i % 2)
		}
		ps := net.Params() // built once: Params assembles a new slice
		buf := make([]float64, ps.Size())
		step := func() {
			tape.Reset()
			y := net.Apply(tape, x)
			z := Concat(tape, Softmax(tape, y), Slice(tape, y, 0, 1))
			z = Add(tape, Mul(tape, z, z), Scale(tape, MaskSites(tape, z, mask), 0.5))
			z = Softplus.Apply(tape, LeakyReLU.Apply(tape, z))
			for i := range z.Grad {
				z.Grad[i] = 1
			}
			ps.ZeroGrad()
			tape.Backward()
			AllreduceGrads(c, ps, buf)
		}
		step()
		// Both ranks run the same number of steps (the step communicates).
		allocs := allocstest.PerRun(5, step)
		if allocs > 0 {
			return fmt.Errorf("%v allocations per step", allocs)
		}
		return nil
	})
}

// TestKernelsAgree runs a network with fused activations (and a bank of
// two convolutions) with every kernel family this CPU runs and both
// precisions, and compares outputs and gradients with the generic float64
// kernels: to rounding in float64, to float32 accuracy in float32.
func TestKernelsAgree(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		geo, err := newGeometry(c, []int{8, 8}, []int{1, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		run := func(arch gemm.Arch, prec Precision) ([]float64, []float64, error) {
			tape := NewTape(2)
			defer tape.Close()
			if err := tape.SetKernels(arch); err != nil {
				return nil, nil, err
			}
			net, err := ConvNet(geo, "k", ConvNetSpec{Channels: []int{4, 13, 17}, Kernel: 3, Dilations: []int{1, 2},
				Act: ELU, Final: Tanh, Seed: 3, Precision: prec})
			if err != nil {
				return nil, nil, err
			}
			h, err := NewConv(geo, "head", 17, 35, 3, 1)
			if err != nil {
				return nil, nil, err
			}
			h.InitXavier(4, 1)
			h.SetActivation(Tanh)
			h.SetPrecision(prec)
			bank := bankModule{h, []int{5, 30}}
			x := randomTensor(geo, 7, 4, 0, rng.New(1, "input"))
			tape.Reset()
			y := bank.Apply(tape, net.Apply(tape, x))
			copy(y.Grad, randomTensor(geo, 7, y.C, 0, rng.New(2, "w")).Data)
			ps := append(append(Params(nil), net.Params()...), bank.Params()...)
			ps.ZeroGrad()
			tape.Backward()
			grads := append([]float64(nil), x.Grad...)
			for _, p := range ps {
				grads = append(grads, p.Grad...)
			}
			return append([]float64(nil), y.Data...), grads, nil
		}
		refOut, refGrad, err := run(gemm.Generic, Float64)
		if err != nil {
			return err
		}
		for _, arch := range gemm.Archs() {
			for _, prec := range []Precision{Float64, Float32} {
				out, grad, err := run(arch, prec)
				if err != nil {
					return err
				}
				tol := 1e-12
				if prec == Float32 {
					tol = 2e-4
				}
				for k, pair := range [][2][]float64{{out, refOut}, {grad, refGrad}} {
					scale := 0.0
					for _, v := range pair[1] {
						scale = max(scale, math.Abs(v))
					}
					for i := range pair[0] {
						if d := math.Abs(pair[0][i] - pair[1][i]); d > tol*scale {
							return fmt.Errorf("%s %s: %s %d is %v, generic float64 %v", arch, prec, []string{"output", "gradient"}[k], i, pair[0][i], pair[1][i])
						}
					}
				}
			}
		}
		return nil
	})
}

// TestTapeReusesAcrossAlternatingPasses: two passes that ask for the same
// shapes in different orders (training, then an evaluation) share the
// tape's tensors — after both have run once, alternating them allocates
// nothing — and every tensor handed out is zero.
func TestTapeReusesAcrossAlternatingPasses(t *testing.T) {
	tape := NewTape(1)
	defer tape.Close()
	shapes := [][3]int{{4, 2, 3}, {4, 2, 5}, {4, 1, 3}}
	pass := func(order []int) {
		tape.Reset()
		for _, i := range order {
			x := tape.Tensor(shapes[i][0], shapes[i][1], shapes[i][2])
			for k := range x.Data {
				if x.Data[k] != 0 || x.Grad[k] != 0 {
					t.Fatalf("tensor %v handed out non-zero", shapes[i])
				}
				x.Data[k], x.Grad[k] = 1, 1
			}
		}
	}
	train, eval := []int{0, 1, 2, 0}, []int{2, 0, 1}
	pass(train)
	pass(eval)
	if allocs := allocstest.PerRun(10, func() { pass(train); pass(eval) }); allocs > 0 {
		t.Errorf("%v allocations per pair of alternating passes", allocs)
	}
	if len(tape.pool) != 4 {
		t.Errorf("pool holds %d tensors, want 4 (the larger pass)", len(tape.pool))
	}
}

// TestAdamHold: a held parameter keeps its value for the held steps and then
// takes exactly the steps of a fresh optimizer (its own bias corrections and
// warm-up), while the others train as without the hold; a parameter the
// optimizer does not hold is refused.
func TestAdamHold(t *testing.T) {
	for _, cfg := range []AdamConfig{
		{LR: 0.1, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true},
		{LR: 0.1, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true, Warmup: 4}, // warm-up beyond the hold
	} {
		grad := func(ps ...*Param) {
			for _, p := range ps {
				for i := range p.Value {
					p.Grad[i] = (2 + float64(i)) * p.Value[i]
				}
			}
		}
		newP := func(name string) *Param {
			p := NewParam(name, 2)
			p.Value[0], p.Value[1] = 1, -2
			return p
		}
		p, q := newP("p"), newP("q")
		opt, err := NewAdam(Params{p, q}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := opt.Hold(Params{q}, 2); err != nil {
			t.Fatal(err)
		}
		if err := opt.Hold(Params{newP("other")}, 2); err == nil {
			t.Fatal("Hold accepted a parameter the optimizer does not hold")
		}
		pRef, qRef := newP("p"), newP("q")
		optP, _ := NewAdam(Params{pRef}, cfg)
		optQ, _ := NewAdam(Params{qRef}, cfg)
		for step := 1; step <= 8; step++ {
			grad(p, q, pRef, qRef)
			opt.Step()
			optP.Step()
			if step > 2 {
				optQ.Step()
			}
			for i := range 2 {
				if p.Value[i] != pRef.Value[i] || q.Value[i] != qRef.Value[i] {
					t.Fatalf("warm-up %d, step %d: p = %v, q = %v; want %v, %v", cfg.Warmup, step, p.Value, q.Value, pRef.Value, qRef.Value)
				}
			}
			if step == 2 && (q.Value[0] != 1 || q.Value[1] != -2) {
				t.Fatalf("held q moved: %v", q.Value)
			}
		}
	}
}

// TestAdamCosineSchedule: the cosine schedule rises linearly over the
// warm-up to LR, passes the midpoint (LR + MinLR)/2 halfway through the
// decay, ends at MinLR on step CosineSteps and stays there; invalid settings
// are refused.
func TestAdamCosineSchedule(t *testing.T) {
	const lr, minLR, warm, steps = 0.1, 0.004, 2, 12
	p := NewParam("theta", 1)
	opt, err := NewAdam(Params{p}, AdamConfig{LR: lr, Eps: 1e-8, Warmup: warm, CosineSteps: steps, MinLR: minLR, DecayEvery: 3, DecayFactor: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]float64{1: lr / 2, 2: lr, 7: (lr + minLR) / 2, 12: minLR, 15: minLR}
	prev := math.Inf(1)
	for step := 1; step <= 15; step++ {
		got := opt.LR()
		if w, ok := want[step]; ok && math.Abs(got-w) > 1e-15 {
			t.Errorf("step %d: lr %.17g, want %.17g", step, got, w)
		}
		if step > warm && got > prev {
			t.Errorf("step %d: lr %g rose after the warm-up (from %g)", step, got, prev)
		}
		prev = got
		p.Grad[0] = 1
		opt.Step()
	}
	for _, bad := range []AdamConfig{
		{LR: lr, Eps: 1e-8, CosineSteps: -1},
		{LR: lr, Eps: 1e-8, CosineSteps: 10, MinLR: 2 * lr},
		{LR: lr, Eps: 1e-8, CosineSteps: 10, MinLR: -1e-3},
	} {
		if _, err := NewAdam(Params{p}, bad); err == nil {
			t.Errorf("NewAdam accepted %+v", bad)
		}
	}
}

// TestAdamClipMedian: with ClipMedian = k the optimizer takes the steps of
// one clipping to k times the median of the last norms (checked step by
// step against an optimizer told that bound by ClipNorm), clips nothing
// before clipMinHistory norms, keeps the norms across WriteState/ReadState,
// and reads a state written without them.
func TestAdamClipMedian(t *testing.T) {
	const k = 4.0
	newP := func() *Param {
		p := NewParam("p", 3)
		p.Value[0], p.Value[1], p.Value[2] = 1, -2, 0.5
		return p
	}
	// Step i's gradient: norms scattered around 1, a spike of 10⁶ at steps 10 and 40.
	grad := func(p *Param, step int) {
		s := 1 + 0.3*math.Sin(float64(step))
		if step == 10 || step == 40 {
			s = 1e6
		}
		for i := range p.Value {
			p.Grad[i] = s * float64(i+1) / math.Sqrt(14)
		}
	}
	p := newP()
	opt, err := NewAdam(Params{p}, AdamConfig{LR: 0.01, Eps: 1e-8, ClipMedian: k})
	if err != nil {
		t.Fatal(err)
	}
	q := newP() // the reference: ClipNorm set to the bound each step
	ref, _ := NewAdam(Params{q}, AdamConfig{LR: 0.01, Eps: 1e-8})
	var history []float64
	var state bytes.Buffer
	clipped := 0
	for step := 1; step <= 60; step++ {
		grad(p, step)
		grad(q, step)
		bound := math.Inf(1)
		if n := len(history); n >= clipMinHistory {
			h := slices.Sorted(slices.Values(history[max(n-clipWindow, 0):]))
			bound = k * (h[(len(h)-1)/2] + h[len(h)/2]) / 2
		}
		ref.cfg.ClipNorm = 0
		if !math.IsInf(bound, 1) {
			ref.cfg.ClipNorm = bound
		}
		norm := opt.Step()
		ref.Step()
		history = append(history, norm)
		if norm > bound {
			clipped++
		}
		for i := range p.Value {
			if p.Value[i] != q.Value[i] {
				t.Fatalf("step %d: %v, want %v", step, p.Value, q.Value)
			}
		}
		if step == 30 {
			if err := opt.WriteState(&state); err != nil {
				t.Fatal(err)
			}
		}
	}
	if clipped != 1 { // the spike at step 10 comes before 20 norms are known
		t.Fatalf("%d steps clipped, want 1 (step 40)", clipped)
	}
	// Restored at step 30, the optimizer knows the norms and clips step 40.
	r := newP()
	copy(r.Value, p.Value) // values do not matter for the history
	opt2, _ := NewAdam(Params{r}, AdamConfig{LR: 0.01, Eps: 1e-8, ClipMedian: k})
	if err := opt2.ReadState(bytes.NewReader(state.Bytes())); err != nil {
		t.Fatal(err)
	}
	if opt2.Steps() != 30 || !slices.Equal(opt2.norms, history[:30]) {
		t.Fatalf("restored %d steps and norms %v, want 30 and %v", opt2.Steps(), opt2.norms, history[:30])
	}
	if b := opt2.clipBound(); math.IsInf(b, 1) || b > 10 {
		t.Fatalf("restored bound %g", b)
	}
	// A state without the norms (the old format): the step count and no history.
	var old bytes.Buffer
	opt2.norms = nil
	if err := writeChecked(&old, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(30)); err != nil {
			return err
		}
		if err := writeSet(w, adamMagic, opt2.params, func(*Param) []float64 { return opt2.m[0] }); err != nil {
			return err
		}
		return writeSet(w, adamMagic, opt2.params, func(*Param) []float64 { return opt2.v[0] })
	}); err != nil {
		t.Fatal(err)
	}
	opt3, _ := NewAdam(Params{newP()}, AdamConfig{LR: 0.01, Eps: 1e-8, ClipMedian: k})
	if err := opt3.ReadState(bytes.NewReader(old.Bytes())); err != nil {
		t.Fatal(err)
	}
	if opt3.Steps() != 30 || len(opt3.norms) != 0 {
		t.Fatalf("old state: %d steps, %d norms", opt3.Steps(), len(opt3.norms))
	}
}

// TestReadParamsSubset reads part of a record: the parameters asked for get
// the record's values whatever their order, the others are skipped, and a
// missing parameter, a wrong shape or a damaged record is refused.
func TestReadParamsSubset(t *testing.T) {
	all := Params{NewParam("gauge.a", 2, 3), NewParam("pf.b", 4), NewParam("gauge.c", 5)}
	for i, p := range all {
		for j := range p.Value {
			p.Value[j] = float64(100*i + j + 1)
		}
	}
	var rec bytes.Buffer
	if err := WriteParams(&rec, all); err != nil {
		t.Fatal(err)
	}
	sub := Params{NewParam("gauge.c", 5), NewParam("gauge.a", 2, 3)}
	if err := ReadParamsSubset(bytes.NewReader(rec.Bytes()), sub); err != nil {
		t.Fatal(err)
	}
	for _, p := range sub {
		want := all.Get(p.Name)
		if !slices.Equal(p.Value, want.Value) {
			t.Errorf("%s: read %v, written %v", p.Name, p.Value, want.Value)
		}
	}
	if err := ReadParams(bytes.NewReader(rec.Bytes()), sub); err == nil {
		t.Error("ReadParams accepted a record with more parameters than the network")
	}
	if err := ReadParamsSubset(bytes.NewReader(rec.Bytes()), Params{NewParam("gauge.a", 2, 3), NewParam("gauge.d", 1)}); err == nil {
		t.Error("a parameter missing from the record was accepted")
	}
	if err := ReadParamsSubset(bytes.NewReader(rec.Bytes()), Params{NewParam("gauge.a", 3, 2)}); err == nil {
		t.Error("a parameter of another shape was accepted")
	}
	bad := bytes.Clone(rec.Bytes())
	bad[len(bad)-10] ^= 1
	if err := ReadParamsSubset(bytes.NewReader(bad), sub); err == nil {
		t.Error("a damaged record was accepted")
	}
}
