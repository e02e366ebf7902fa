package dslash

import (
	"fmt"

	"pfmpi/hugemem"
)

// Matrix is an operator with its adjoint on vectors of one length: the full
// operator (Wilson, Reference) or the Schur complement.
type Matrix interface {
	M(out, in []complex128)
	Mdag(out, in []complex128)
}

// Schur is the Schur complement D_sc = 1 − D_eo D_oe on even vectors (Eq. 34).
type Schur struct {
	op  Operator
	odd []complex128
}

// NewSchur returns the Schur complement of op (which must have even global
// extents).
func NewSchur(op Operator) *Schur {
	ly := op.Layout()
	return &Schur{op: op, odd: hugemem.Make[complex128]((ly.Volume() - ly.EvenCount()) * op.PerSite())}
}

// Len is the number of values of an even vector.
func (s *Schur) Len() int { return s.op.Layout().EvenCount() * s.op.PerSite() }

// M sets out = in − D_eo D_oe in.
func (s *Schur) M(out, in []complex128) { s.apply(out, in, false) }

// Mdag sets out = in − (D†)_eo (D†)_oe in = D_sc† in.
func (s *Schur) Mdag(out, in []complex128) { s.apply(out, in, true) }

func (s *Schur) apply(out, in []complex128, dag bool) {
	if len(in) != s.Len() || len(out) != s.Len() {
		panic(fmt.Sprintf("dslash: Schur complement on %d and %d values, want even vectors of %d", len(out), len(in), s.Len()))
	}
	s.op.Moe(s.odd, in, dag)
	if f, ok := s.op.(meoSubtracter); ok {
		f.meoSubtract(out, in, s.odd, dag)
		return
	}
	s.op.Meo(out, s.odd, dag)
	for i := range out {
		out[i] = in[i] - out[i]
	}
}

// meoSubtracter is an operator that computes x − D_eo in (dag: of D†) in
// the pass of the hop, without a pass of its own.
type meoSubtracter interface {
	meoSubtract(out, x, in []complex128, dag bool)
}

// Normal is the Hermitian positive operator A A† + μ (μ ≥ 0): M = DD†,
// M_sc = D_sc D_sc†, and their Hasenbusch shifts.
type Normal struct {
	a   Matrix
	mu  float64
	tmp []complex128
}

// NewNormal returns A A† + μ on vectors of n values.
func NewNormal(a Matrix, mu float64, n int) *Normal {
	return &Normal{a: a, mu: mu, tmp: hugemem.Make[complex128](n)}
}

// Apply sets out = A A† in + μ in.
func (m *Normal) Apply(out, in []complex128) {
	m.a.Mdag(m.tmp, in)
	m.a.M(out, m.tmp)
	if m.mu != 0 {
		mu := complex(m.mu, 0)
		for i := range out {
			out[i] += mu * in[i]
		}
	}
}
