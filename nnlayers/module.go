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
// Channels[1] → … with Act between them and Final after the last
// (Identity: none). Dilations are used in turn (nil: 1). Hidden layers
// start from Xavier normal with Gain (0: 1); the last one from zero when
// ZeroLast (a flow then starts as the identity), otherwise like the others.
type ConvNetSpec struct {
	Channels   []int
	Kernel     int
	Dilations  []int
	Act, Final Activation
	Seed       uint64
	Gain       float64
	ZeroLast   bool
}

// ConvNet builds the network of spec; its parameters are named
// name+".conv0", ….
func ConvNet(geo *Geometry, name string, spec ConvNetSpec) (Sequential, error) {
	ch := spec.Channels
	if len(ch) < 2 {
		return nil, fmt.Errorf("nnlayers: network %s needs input and output channels, got %v", name, ch)
	}
	gain := spec.Gain
	if gain == 0 {
		gain = 1
	}
	var s Sequential
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
		s = append(s, c)
		switch {
		case !last:
			s = append(s, spec.Act)
		case spec.Final != Identity:
			s = append(s, spec.Final)
		}
	}
	return s, nil
}
