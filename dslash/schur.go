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
	buf []complex128 // D_eo D_oe in for a fused update without a fused operator
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
	s.applyFused(out, in, dag, fusion{})
}

// MdagNorm sets out = D_sc† in and returns |out|² on this rank.
func (s *Schur) MdagNorm(out, in []complex128) float64 {
	return s.applyFused(out, in, true, fusion{on: true})
}

// MUpdate sets r −= α D_sc in and returns |r|² on this rank (D_sc in is
// not stored).
func (s *Schur) MUpdate(r, in []complex128, alpha float64) float64 {
	return s.applyFused(r, in, false, fusion{on: true, alpha: alpha, update: true})
}

// applyFused computes D_sc in (dag: D_sc† in) into out, or with fu the
// fused step of fu, and returns Σ |out|² on this rank when fu is on.
func (s *Schur) applyFused(out, in []complex128, dag bool, fu fusion) float64 {
	if len(in) != s.Len() || len(out) != s.Len() {
		panic(fmt.Sprintf("dslash: Schur complement on %d and %d values, want even vectors of %d", len(out), len(in), s.Len()))
	}
	s.op.Moe(s.odd, in, dag)
	if f, ok := s.op.(meoSubtracter); ok {
		return f.meoSubtract(out, in, s.odd, dag, fu)
	}
	if fu.update {
		if len(s.buf) != len(out) {
			s.buf = make([]complex128, len(out))
		}
		s.op.Meo(s.buf, s.odd, dag)
		for i := range out {
			out[i] -= complex(fu.alpha, 0) * (in[i] - s.buf[i])
		}
		return norm2(out)
	}
	s.op.Meo(out, s.odd, dag)
	for i := range out {
		out[i] = in[i] - out[i]
	}
	if !fu.on {
		return 0
	}
	return norm2(out)
}

// meoSubtracter is an operator that computes x − D_eo in (dag: of D†) in
// the pass of the hop, without a pass of its own, optionally fusing a step
// of CG.
type meoSubtracter interface {
	meoSubtract(out, x, in []complex128, dag bool, fu fusion) float64
}

// Normal is the Hermitian positive operator A A† + μ (μ ≥ 0): M = DD†,
// M_sc = D_sc D_sc†, and their Hasenbusch shifts.
type Normal struct {
	a   Matrix
	mu  float64
	tmp []complex128
	buf []complex128 // A t in Update when A has no fused application
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

// fusedMatrix is a Matrix whose applications fold in CG's reductions and
// update ([Wilson], [Schur]).
type fusedMatrix interface {
	MdagNorm(out, in []complex128) float64
	MUpdate(r, in []complex128, alpha float64) float64
}

// Shift is μ.
func (m *Normal) Shift() float64 { return m.mu }

// Scratch is the vector AdjointNorm and Update pass between them.
func (m *Normal) Scratch() []complex128 { return m.tmp }

// AdjointNorm sets t = A† p and returns |t|² on this rank: ⟨p, (AA† + μ)p⟩
// = |A†p|² + μ|p|².
func (m *Normal) AdjointNorm(t, p []complex128) float64 {
	if f, ok := m.a.(fusedMatrix); ok {
		return f.MdagNorm(t, p)
	}
	m.a.Mdag(t, p)
	return norm2(t)
}

// Update sets r −= α (A t + μ p) for t = A† p and returns |r|² on this
// rank; A t is not stored.
func (m *Normal) Update(r, t, p []complex128, alpha float64) float64 {
	if m.mu != 0 {
		c := complex(alpha*m.mu, 0)
		for i := range r {
			r[i] -= c * p[i]
		}
	}
	if f, ok := m.a.(fusedMatrix); ok {
		return f.MUpdate(r, t, alpha)
	}
	if len(m.buf) != len(r) {
		m.buf = make([]complex128, len(r))
	}
	m.a.M(m.buf, t)
	for i := range r {
		r[i] -= complex(alpha, 0) * m.buf[i]
	}
	return norm2(r)
}

func norm2(x []complex128) float64 {
	s := 0.0
	for _, z := range x {
		s += real(z)*real(z) + imag(z)*imag(z)
	}
	return s
}
