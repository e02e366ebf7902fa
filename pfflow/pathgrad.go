package pfflow

import (
	"fmt"

	"pfmpi/nnlayers"
)

// InverseAdjoint returns T^{−†}χ, where φ = Tχ is the conditional's map at
// the links and heads of a forward pass (every layer is linear in φ, so at
// fixed U the flow is a linear map T). It is the score of the flow's
// density, ∇_φ log q(φ|U) = −2 T^{−†}χ in the package's gradient
// convention, which the path-gradient estimator of the reverse KL needs
// (package flow). Layer by layer, in forward order, with the layer
// L = [[A, P], [0, 1]] on (active, frozen) components:
//
//	z_a ← A^{−†} z_a,   z_f ← z_f − P† z_a,
//
// P† being the adjoint of the layer's PTCN, run as its backward pass on
// scratch, a tape in gradient mode that nothing else records on meanwhile.
// Call it before the conditional's forward pass on another tape of the same
// pass (the PTCs keep one set of records per pass and tape). With even/odd
// preconditioning the odd sites of the result are zero. The result is
// owned by c and overwritten by the next call.
func (c *Conditional) InverseAdjoint(scratch *nnlayers.Tape, links *nnlayers.Tensor, heads Heads, chi *nnlayers.Tensor) (*nnlayers.Tensor, error) {
	if err := c.check(heads, chi); err != nil {
		return nil, err
	}
	if scratch.NoGrad {
		return nil, fmt.Errorf("pfflow: %s: InverseAdjoint needs a scratch tape in gradient mode", c.name)
	}
	if c.adj == nil || cap(c.adj.Data) < len(chi.Data) {
		c.adj = &nnlayers.Tensor{Data: make([]float64, len(chi.Data))}
	}
	z := c.adj
	z.V, z.B, z.C, z.Data = chi.V, chi.B, chi.C, z.Data[:len(chi.Data)]
	copy(z.Data, chi.Data)
	for i, l := range c.layers {
		if err := l.inverseAdjoint(scratch, links, heads[i], z); err != nil {
			return nil, err
		}
	}
	if c.m.spec.EvenOdd {
		for s := 0; s < z.V; s++ {
			if !c.m.even[s] {
				clear(z.Data[z.At(s, 0, 0) : z.At(s, z.B-1, z.C-1)+1])
			}
		}
	}
	return z, nil
}

// inverseAdjoint applies L^{−†} to z in place (see InverseAdjoint).
func (l *Layer) inverseAdjoint(scratch *nnlayers.Tape, links *nnlayers.Tensor, par []*nnlayers.Tensor, z *nnlayers.Tensor) error {
	l.applyAInverseAdjoint(par[0], z)
	scratch.Reset()
	// The links and matrices enter as constants: views without gradients,
	// so the backward pass computes the field's gradient alone.
	if len(l.adjViews) < 1+len(l.ptcs) {
		l.adjViews = make([]nnlayers.Tensor, 1+len(l.ptcs))
	}
	lc := &l.adjViews[0]
	*lc = nnlayers.Tensor{V: links.V, B: links.B, C: links.C, Data: links.Data}
	x := scratch.Tensor(z.V, z.B, z.C)
	h := x
	for i, p := range l.ptcs {
		m := par[1+i]
		mc := &l.adjViews[1+i]
		*mc = nnlayers.Tensor{V: m.V, B: m.B, C: m.C, Data: m.Data}
		var err error
		if h, err = p.Apply(scratch, lc, h, mc, 0); err != nil {
			return err
		}
	}
	// Seed: z on the active components (the only ones the layer adds h to).
	g, _ := h.GradForWrite()
	clear(g)
	per := l.nc * 2
	for s := 0; s < z.V; s++ {
		for b := 0; b < z.B; b++ {
			base := z.At(s, b, 0)
			for a := range l.ns {
				if l.isActive(s, a) {
					copy(g[base+a*per:base+(a+1)*per], z.Data[base+a*per:base+(a+1)*per])
				}
			}
		}
	}
	if err := scratch.Backward(); err != nil {
		return err
	}
	gx := x.GradForAdd()
	for s := 0; s < z.V; s++ {
		for b := 0; b < z.B; b++ {
			base := z.At(s, b, 0)
			for a := range l.ns {
				if l.isActive(s, a) {
					continue
				}
				for i := base + a*per; i < base+(a+1)*per; i++ {
					z.Data[i] -= gx[i]
				}
			}
		}
	}
	return nil
}

// applyAInverseAdjoint sets z_a ← A^{−†} z_a on the active components, A =
// 1 + a read from the head's output a.
func (l *Layer) applyAInverseAdjoint(a, z *nnlayers.Tensor) {
	k := l.ns
	first := 0
	if l.part == Spin {
		k, first = 1, l.alt
	}
	if len(l.adjBuf) < 4*k*k+k {
		l.adjBuf = make([]complex128, 4*k*k+k)
	}
	A, inv, work, vec := l.adjBuf[:k*k], l.adjBuf[k*k:2*k*k], l.adjBuf[2*k*k:4*k*k], l.adjBuf[4*k*k:4*k*k+k]
	per := l.nc * 2
	for s := 0; s < z.V; s++ {
		if !l.active[s] {
			continue
		}
		for b := 0; b < z.B; b++ {
			ab := a.At(s, b, 0)
			for i := range k * k {
				A[i] = cget(a.Data, ab+2*i)
			}
			for i := range k {
				A[i*k+i]++
			}
			invert(inv, A, work, k)
			base := z.At(s, b, 0)
			for c := range l.nc {
				for i := range k {
					vec[i] = cget(z.Data, base+(first+i)*per+2*c)
				}
				for i := range k {
					var w complex128
					for j := range k {
						w += conj(inv[j*k+i]) * vec[j]
					}
					cset(z.Data, base+(first+i)*per+2*c, w)
				}
			}
		}
	}
}
