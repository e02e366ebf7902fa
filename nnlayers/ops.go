package nnlayers

import (
	"fmt"
	"math"
)

// Activation is an element-wise nonlinearity.
type Activation int

const (
	ELU       Activation = iota // x > 0 ? x : eˣ − 1
	Tanh                        // tanh x
	LeakyReLU                   // x > 0 ? x : 0.01 x (see LeakySlope)
	Softplus                    // log(1 + eˣ)
	Identity                    // x
)

// LeakySlope is the negative-side slope of LeakyReLU.
const LeakySlope = 0.01

// ParseActivation returns the activation named "elu", "tanh", "leaky_relu",
// "softplus" or "identity".
func ParseActivation(name string) (Activation, error) {
	for a, n := range activationNames {
		if n == name {
			return Activation(a), nil
		}
	}
	return 0, fmt.Errorf("nnlayers: unknown activation %q (elu, tanh, leaky_relu, softplus, identity)", name)
}

var activationNames = [...]string{"elu", "tanh", "leaky_relu", "softplus", "identity"}

func (a Activation) String() string { return activationNames[a] }

// value returns f(x); deriv returns f'(x) given x and y = f(x).
func (a Activation) value(x float64) float64 {
	switch a {
	case ELU:
		if x > 0 {
			return x
		}
		return math.Expm1(x)
	case Tanh:
		return math.Tanh(x)
	case LeakyReLU:
		if x > 0 {
			return x
		}
		return LeakySlope * x
	case Softplus:
		return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
	}
	return x
}

func (a Activation) deriv(x, y float64) float64 {
	switch a {
	case ELU:
		if x > 0 {
			return 1
		}
		return y + 1
	case Tanh:
		return 1 - y*y
	case LeakyReLU:
		if x > 0 {
			return 1
		}
		return LeakySlope
	case Softplus:
		if x >= 0 {
			return 1 / (1 + math.Exp(-x))
		}
		e := math.Exp(x)
		return e / (1 + e)
	}
	return 1
}

// Apply returns a(x) element-wise.
func (a Activation) Apply(t *Tape, x *Tensor) *Tensor {
	y := t.Tensor(x.V, x.B, x.C)
	t.elementwise(elementwise{kind: kindActivation, act: a, x: x, y: y})
	t.record(node{op: a, in: [2]*Tensor{x}, out: y})
	return y
}

func (a Activation) backward(t *Tape, n *node) {
	x, y := n.in[0], n.out
	if x.Grad == nil {
		return
	}
	t.elementwise(elementwise{kind: kindActivationBack, act: a, x: x, y: y})
}

// Params is empty: activations have no parameters.
func (a Activation) Params() Params { return nil }

type elementKind int

const (
	kindActivation elementKind = iota
	kindActivationBack
	kindAdd
	kindMul
	kindMulBack
	kindScale
	kindAccumulate // y.Grad += z.Grad over y's length
)

// elementwise is one element-wise pass over blocks of the flat data.
type elementwise struct {
	kind elementKind
	act  Activation
	x, y *Tensor // input(s) and output
	z    *Tensor // second input
	f    float64
}

func (e *elementwise) run(_, item int) {
	lo, hi := blockRange(item, e.y.Len())
	switch e.kind {
	case kindActivation:
		for i := lo; i < hi; i++ {
			e.y.Data[i] = e.act.value(e.x.Data[i])
		}
	case kindActivationBack:
		for i := lo; i < hi; i++ {
			e.x.Grad[i] += e.y.Grad[i] * e.act.deriv(e.x.Data[i], e.y.Data[i])
		}
	case kindAdd:
		for i := lo; i < hi; i++ {
			e.y.Data[i] = e.x.Data[i] + e.z.Data[i]
		}
	case kindMul:
		for i := lo; i < hi; i++ {
			e.y.Data[i] = e.x.Data[i] * e.z.Data[i]
		}
	case kindMulBack:
		for i := lo; i < hi; i++ {
			g := e.y.Grad[i]
			if e.x.Grad != nil {
				e.x.Grad[i] += g * e.z.Data[i]
			}
			if e.z.Grad != nil {
				e.z.Grad[i] += g * e.x.Data[i]
			}
		}
	case kindScale:
		for i := lo; i < hi; i++ {
			e.y.Data[i] = e.f * e.x.Data[i]
		}
	case kindAccumulate:
		g, d := e.y.Grad[lo:hi], e.z.Grad[lo:hi]
		for i := range g {
			g[i] += d[i]
		}
	}
}

// elementwise runs e over blocks of the data on the pool (the tape keeps
// the task, so that nothing is allocated).
func (t *Tape) elementwise(e elementwise) {
	t.ew = e
	t.workers.run(blocks(e.y.Len()), &t.ew)
	t.ew = elementwise{}
}

// arith is the recorded element-wise arithmetic.
type arith struct{ kind elementKind }

var (
	addOp   = arith{kindAdd}
	mulOp   = arith{kindMul}
	scaleOp = arith{kindScale}
)

// Add returns a + b.
func Add(t *Tape, a, b *Tensor) *Tensor {
	sameShape("Add", a, b)
	y := t.Tensor(a.V, a.B, a.C)
	t.elementwise(elementwise{kind: kindAdd, x: a, z: b, y: y})
	t.record(node{op: addOp, in: [2]*Tensor{a, b}, out: y})
	return y
}

// Mul returns a ⊙ b (element-wise).
func Mul(t *Tape, a, b *Tensor) *Tensor {
	sameShape("Mul", a, b)
	y := t.Tensor(a.V, a.B, a.C)
	t.elementwise(elementwise{kind: kindMul, x: a, z: b, y: y})
	t.record(node{op: mulOp, in: [2]*Tensor{a, b}, out: y})
	return y
}

// Scale returns f·a.
func Scale(t *Tape, a *Tensor, f float64) *Tensor {
	y := t.Tensor(a.V, a.B, a.C)
	t.elementwise(elementwise{kind: kindScale, x: a, y: y, f: f})
	t.record(node{op: scaleOp, in: [2]*Tensor{a}, out: y, f: f})
	return y
}

func (o arith) backward(t *Tape, n *node) {
	a, b, y := n.in[0], n.in[1], n.out
	switch o.kind {
	case kindAdd:
		for _, x := range [2]*Tensor{a, b} {
			if x.Grad != nil {
				for i, g := range y.Grad {
					x.Grad[i] += g
				}
			}
		}
	case kindMul:
		t.elementwise(elementwise{kind: kindMulBack, x: a, z: b, y: y})
	case kindScale:
		if a.Grad != nil {
			for i, g := range y.Grad {
				a.Grad[i] += n.f * g
			}
		}
	}
}

// maskOp multiplies by a fixed per-site mask (node.vec).
type maskOp struct{}

// MaskSites returns x with site s multiplied by mask[s] (all batch members
// and channels): the frozen/active masks of coupling layers. mask must stay
// unchanged until Backward.
func MaskSites(t *Tape, x *Tensor, mask []float64) *Tensor {
	if len(mask) != x.V {
		panic(fmt.Sprintf("nnlayers: mask of %d sites for %s", len(mask), x.shape()))
	}
	y := t.Tensor(x.V, x.B, x.C)
	per := x.B * x.C
	for s, m := range mask {
		for i := s * per; i < (s+1)*per; i++ {
			y.Data[i] = m * x.Data[i]
		}
	}
	t.record(node{op: maskOp{}, in: [2]*Tensor{x}, out: y, vec: mask})
	return y
}

func (maskOp) backward(t *Tape, n *node) {
	x, y := n.in[0], n.out
	if x.Grad == nil {
		return
	}
	per := x.B * x.C
	for s, v := range n.vec {
		for i := s * per; i < (s+1)*per; i++ {
			x.Grad[i] += v * y.Grad[i]
		}
	}
}

// channelOp copies channel ranges: concatenation and slicing.
type channelOp struct{ concat bool }

var (
	concatOp = channelOp{concat: true}
	sliceOp  = channelOp{}
)

// Concat returns the channels of a followed by those of b.
func Concat(t *Tape, a, b *Tensor) *Tensor {
	if a.V != b.V || a.B != b.B {
		panic(fmt.Sprintf("nnlayers: Concat of %s and %s", a.shape(), b.shape()))
	}
	y := t.Tensor(a.V, a.B, a.C+b.C)
	for r := 0; r < a.V*a.B; r++ {
		copy(y.Data[r*y.C:], a.Data[r*a.C:(r+1)*a.C])
		copy(y.Data[r*y.C+a.C:], b.Data[r*b.C:(r+1)*b.C])
	}
	t.record(node{op: concatOp, in: [2]*Tensor{a, b}, out: y})
	return y
}

// Slice returns channels [lo, hi) of x.
func Slice(t *Tape, x *Tensor, lo, hi int) *Tensor {
	if lo < 0 || hi > x.C || lo >= hi {
		panic(fmt.Sprintf("nnlayers: channels [%d, %d) of %s", lo, hi, x.shape()))
	}
	y := t.Tensor(x.V, x.B, hi-lo)
	for r := 0; r < x.V*x.B; r++ {
		copy(y.Data[r*y.C:(r+1)*y.C], x.Data[r*x.C+lo:r*x.C+hi])
	}
	t.record(node{op: sliceOp, in: [2]*Tensor{x}, out: y, i: lo})
	return y
}

func (o channelOp) backward(t *Tape, n *node) {
	y := n.out
	if o.concat {
		a, b := n.in[0], n.in[1]
		for r := 0; r < y.V*y.B; r++ {
			if a.Grad != nil {
				for i := range a.C {
					a.Grad[r*a.C+i] += y.Grad[r*y.C+i]
				}
			}
			if b.Grad != nil {
				for i := range b.C {
					b.Grad[r*b.C+i] += y.Grad[r*y.C+a.C+i]
				}
			}
		}
		return
	}
	x, lo := n.in[0], n.i
	if x.Grad == nil {
		return
	}
	for r := 0; r < y.V*y.B; r++ {
		for i := range y.C {
			x.Grad[r*x.C+lo+i] += y.Grad[r*y.C+i]
		}
	}
}

// softmaxOp is the softmax over channels.
type softmaxOp struct{}

// Softmax returns exp(x_c)/Σ_c' exp(x_c') over the channels of every site
// and batch member.
func Softmax(t *Tape, x *Tensor) *Tensor {
	y := t.Tensor(x.V, x.B, x.C)
	c := x.C
	for r := 0; r < x.V*x.B; r++ {
		in, out := x.Data[r*c:(r+1)*c], y.Data[r*c:(r+1)*c]
		m := math.Inf(-1)
		for _, v := range in {
			m = max(m, v)
		}
		sum := 0.0
		for i, v := range in {
			out[i] = math.Exp(v - m)
			sum += out[i]
		}
		for i := range out {
			out[i] /= sum
		}
	}
	t.record(node{op: softmaxOp{}, in: [2]*Tensor{x}, out: y})
	return y
}

func (softmaxOp) backward(t *Tape, n *node) {
	x, y := n.in[0], n.out
	if x.Grad == nil {
		return
	}
	c := x.C
	for r := 0; r < x.V*x.B; r++ {
		p, g := y.Data[r*c:(r+1)*c], y.Grad[r*c:(r+1)*c]
		dot := 0.0
		for i := range p {
			dot += p[i] * g[i]
		}
		for i := range p {
			x.Grad[r*c+i] += p[i] * (g[i] - dot)
		}
	}
}

// Constant returns a tensor whose channels are functions of the global
// coordinate of the site (e.g. x_μ mod 4, Appendix B 2 of the paper), the
// same for every batch member; it has no gradient. f writes the c channels
// of the site with global coordinate x.
func Constant(geo *Geometry, b, c int, f func(x []int, channels []float64)) *Tensor {
	ly := geo.ly
	v := ly.Volume()
	x := &Tensor{V: v, B: b, C: c, Data: make([]float64, v*b*c)}
	coord := make([]int, ly.Lattice().NumDims())
	ch := make([]float64, c)
	for s := range v {
		ly.GlobalCoord(s, coord)
		f(coord, ch)
		for k := range b {
			copy(x.Data[(s*b+k)*c:], ch)
		}
	}
	return x
}

// phaseOp maps angles to unit complex numbers.
type phaseOp struct{}

// Phase returns e^{iθ} for every channel θ of x: 2·C channels, the real
// and imaginary parts of channel c at 2c and 2c+1 (the links of a U(1)
// gauge field from its angles). Backward: θ̄ = Re(conj(Ḡ) · i e^{iθ}).
func Phase(t *Tape, x *Tensor) *Tensor {
	y := t.Tensor(x.V, x.B, 2*x.C)
	for i, th := range x.Data {
		y.Data[2*i], y.Data[2*i+1] = math.Cos(th), math.Sin(th)
	}
	t.record(node{op: phaseOp{}, in: [2]*Tensor{x}, out: y})
	return y
}

func (phaseOp) backward(t *Tape, n *node) {
	x, y := n.in[0], n.out
	if x.Grad == nil {
		return
	}
	for i := range x.Grad {
		c, s := y.Data[2*i], y.Data[2*i+1]
		x.Grad[i] += -y.Grad[2*i]*s + y.Grad[2*i+1]*c
	}
}
