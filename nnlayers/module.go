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

// ConvNet returns the context network of the flows: convolutions through
// the channel counts channels[0] → channels[1] → … with act between them
// and final after the last (Identity for none). Hidden layers start from
// Xavier normal (gain 1), the last from zero when zeroLast (the flow starts
// as the identity), otherwise from Xavier too. Parameters are named
// name+".conv0", ….
func ConvNet(geo *Geometry, name string, channels []int, kernel, dilation int, act, final Activation, seed uint64, zeroLast bool) (Sequential, error) {
	if len(channels) < 2 {
		return nil, fmt.Errorf("nnlayers: network %s needs input and output channels, got %v", name, channels)
	}
	var s Sequential
	for i := 0; i+1 < len(channels); i++ {
		c, err := NewConv(geo, fmt.Sprintf("%s.conv%d", name, i), channels[i], channels[i+1], kernel, dilation)
		if err != nil {
			return nil, err
		}
		last := i+2 == len(channels)
		if last && zeroLast {
			c.InitZero()
		} else {
			c.InitXavier(seed, 1)
		}
		s = append(s, c)
		switch {
		case !last:
			s = append(s, act)
		case final != Identity:
			s = append(s, final)
		}
	}
	return s, nil
}
