package action

import (
	"fmt"
	"math/cmplx"
	"slices"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/spectrum"
)

// ExactDeterminant is the two-flavour fermion action with the determinant
// itself, S = −log det DD† = −2 log|det D|, for small lattices: the
// "marginal" target of the flows and a reference for HMC. D is built as a
// dense matrix (N = V·Ns·Nc ≤ spectrum.MaxDense) and factorised. Its force,
//
//	F = −2 ∂ Re Tr(D⁻¹ dD) = −2 Σ_j ∂ Re⟨D^{−†} e_j, dD e_j⟩,
//
// is assembled from MDeriv with the columns of D^{−†}; it needs the whole
// lattice on one rank. When the operator tells its gauge field (a
// Gauge() *gauge.Field method, as [dslash.Wilson]), the factorisation of
// Action is reused by AddForce on the same links (compared value by value).
type ExactDeterminant struct {
	comm  mpi.Comm
	op    dslash.Operator
	n     int
	pos   []int // local vector index → basis index
	chi   []complex128
	psi   []complex128
	basis *spectrum.Basis
	d     *spectrum.Dense // rank 0: the last matrix built (nil elsewhere)
	lu    spectrum.LU     // rank 0: its factorisation
	inv   []complex128    // AddForce: D⁻¹
	field *gauge.Field    // the operator's gauge field (nil: unknown)
	links []complex128    // its local links when d was built (valid: factored)
	valid bool
}

// NewExactDeterminant returns the monomial of op (comm: op's domain); it is
// collective.
func NewExactDeterminant(comm mpi.Comm, op dslash.Operator) (*ExactDeterminant, error) {
	ly := op.Layout()
	per := op.PerSite()
	n := int(ly.Lattice().GlobalVolume()) * per
	if n > spectrum.MaxDense {
		return nil, fmt.Errorf("action: the exact determinant of a %d × %d matrix is beyond the dense limit %d; use pseudofermions", n, n, spectrum.MaxDense)
	}
	basis, err := spectrum.NewBasis(comm, ly, decomp.All, per)
	if err != nil {
		return nil, err
	}
	e := &ExactDeterminant{comm: comm, op: op, n: n, basis: basis}
	if comm.Rank() == 0 {
		e.d = new(spectrum.Dense)
	}
	if g, ok := op.(interface{ Gauge() *gauge.Field }); ok && comm.Size() == 1 {
		e.field = g.Gauge()
	}
	if comm.Size() == 1 {
		v := ly.Volume()
		e.pos = make([]int, v*per)
		for s := 0; s < v; s++ {
			for c := 0; c < per; c++ {
				e.pos[s*per+c] = int(ly.GlobalIndex(s))*per + c
			}
		}
		e.chi = make([]complex128, v*per)
		e.psi = make([]complex128, v*per)
	}
	return e, nil
}

func (e *ExactDeterminant) Name() string          { return "det" }
func (e *ExactDeterminant) Refresh(rng.Key) error { return nil }
func (e *ExactDeterminant) Iterations() int       { return 0 }

// factor builds D and factorises it on rank 0 (collective), unless the
// factorisation at hand is of the same links.
func (e *ExactDeterminant) factor() error {
	var local []complex128
	if e.field != nil {
		local = e.field.Data().Local()
		if e.valid && slices.Equal(local, e.links) {
			return nil
		}
	}
	e.valid = false
	if err := e.basis.BuildInto(e.d, e.op.M); err != nil {
		return err
	}
	if e.d != nil {
		e.d.FactorInto(&e.lu)
	}
	if e.field != nil {
		e.links = append(e.links[:0], local...)
		e.valid = true
	}
	return nil
}

// Action returns −2 log|det D| (collective; every rank gets the value).
func (e *ExactDeterminant) Action() (float64, error) {
	if err := e.factor(); err != nil {
		return 0, err
	}
	s := []float64{0}
	if e.d != nil {
		ld, _ := e.lu.LogDet()
		s[0] = -2 * ld
	}
	e.comm.Bcast(0, mpi.Bytes(s))
	return s[0], nil
}

// AddForce adds ∂S/∂x_a (one rank only).
func (e *ExactDeterminant) AddForce(f *gauge.Algebra) error {
	if e.comm.Size() != 1 {
		return fmt.Errorf("action: the exact-determinant force needs the lattice on one rank (grid 1×1); parallelise over replicas")
	}
	if err := e.factor(); err != nil {
		return err
	}
	n := e.n
	if len(e.inv) != n*n {
		e.inv = make([]complex128, n*n)
	}
	inv := e.inv
	e.lu.InverseInto(inv) // (D⁻¹)_ij at i·n + j
	for j := 0; j < n; j++ {
		// χ_j = D^{−†} e_j: χ_j[i] = conj((D⁻¹)_{ji}); ψ_j = e_j.
		for l, p := range e.pos {
			e.chi[l] = cmplx.Conj(inv[j*n+p])
			e.psi[l] = 0
			if p == j {
				e.psi[l] = 1
			}
		}
		e.op.MDeriv(f, e.chi, e.psi, -2)
	}
	return nil
}
