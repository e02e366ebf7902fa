package nnlayers

import "fmt"

// Module is a differentiable map of tensors with parameters.
type Module interface {
	Apply(t *Tape, x *Tensor) *Tensor
	Params() Params
}

// Sequential applies its modules in order.
type Sequential []Module

// Apply returns the composition applied to x.
func (s Sequential) Apply(t *Tape, x *Tensor) *Tensor {
	for _, m := range s {
		x = m.Apply(t, x)
	}
	return x
}

// Params returns the parameters of every module, in order.
func (s Sequential) Params() Params {
	var ps Params
	for _, m := range s {
		ps = append(ps, m.Params()...)
	}
	return ps
}

// ConvNetSpec describes a stack of periodic convolutions: Channels[0] →
// Channels[1] → … with Act after each but the last and Final after the
// last (Identity: none), both fused into the convolutions. Dilations are
// used in turn (nil: 1). Hidden layers start from Xavier normal with Gain
// (0: 1); the last one from zero when ZeroLast (a flow then starts as the
// identity), otherwise like the others. Precision is the arithmetic of the
// matrix products (the zero value: float64).
type ConvNetSpec struct {
	Channels   []int
	Kernel     int
	Dilations  []int
	Act, Final Activation
	Seed       uint64
	Gain       float64
	ZeroLast   bool
	Precision  Precision
	Kind       string // the convolutions' kind in a Profile ("": "convolutions")
}

// Net is a stack of convolutions with fused activations ([ConvNet]).
type Net struct {
	layers []*Conv
	params Params
}

// ConvNet builds the network of spec; its parameters are named
// name+".conv0", ….
func ConvNet(geo *Geometry, name string, spec ConvNetSpec) (*Net, error) {
	ch := spec.Channels
	if len(ch) < 2 {
		return nil, fmt.Errorf("nnlayers: network %s needs input and output channels, got %v", name, ch)
	}
	gain := spec.Gain
	if gain == 0 {
		gain = 1
	}
	n := &Net{}
	for i := 0; i+1 < len(ch); i++ {
		d := 1
		if len(spec.Dilations) > 0 {
			d = spec.Dilations[i%len(spec.Dilations)]
		}
		c, err := NewConv(geo, fmt.Sprintf("%s.conv%d", name, i), ch[i], ch[i+1], spec.Kernel, d)
		if err != nil {
			return nil, err
		}
		last := i+2 == len(ch)
		if last && spec.ZeroLast {
			c.InitZero()
		} else {
			c.InitXavier(spec.Seed, gain)
		}
		c.SetPrecision(spec.Precision)
		if spec.Kind != "" {
			c.SetKind(spec.Kind)
		}
		if last {
			c.SetActivation(spec.Final)
		} else {
			c.SetActivation(spec.Act)
		}
		n.layers = append(n.layers, c)
		n.params = append(n.params, c.Params()...)
	}
	return n, nil
}

// Apply returns the network applied to x.
func (n *Net) Apply(t *Tape, x *Tensor) *Tensor {
	for _, c := range n.layers {
		x = c.Apply(t, x)
	}
	return x
}

// Params returns the parameters of every layer, in order (the same slice
// on every call; do not modify it).
func (n *Net) Params() Params { return n.params[:len(n.params):len(n.params)] }

// Layers returns the convolutions.
func (n *Net) Layers() []*Conv { return n.layers }

// Flops is the number of floating-point operations of one forward pass on
// b batch members.
func (n *Net) Flops(b int) int64 {
	f := int64(0)
	for _, c := range n.layers {
		f += c.Flops(b)
	}
	return f
}
