package action

import (
	"fmt"
	"math/cmplx"

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
// dense matrix (N = V·Ns·Nc ≤ spectrum.MaxDense) and factorised on every
// call. Its force,
//
//	F = −2 ∂ Re Tr(D⁻¹ dD) = −2 Σ_j ∂ Re⟨D^{−†} e_j, dD e_j⟩,
//
// is assembled from MDeriv with the columns of D^{−†}; it needs the whole
// lattice on one rank.
type ExactDeterminant struct {
	comm mpi.Comm
	op   dslash.Operator
	n    int
	pos  []int // local vector index → basis index
	chi  []complex128
	psi  []complex128
}

// NewExactDeterminant returns the monomial of op (comm: op's domain).
func NewExactDeterminant(comm mpi.Comm, op dslash.Operator) (*ExactDeterminant, error) {
	ly := op.Layout()
	per := op.PerSite()
	n := int(ly.Lattice().GlobalVolume()) * per
	if n > spectrum.MaxDense {
		return nil, fmt.Errorf("action: the exact determinant of a %d × %d matrix is beyond the dense limit %d; use pseudofermions", n, n, spectrum.MaxDense)
	}
	e := &ExactDeterminant{comm: comm, op: op, n: n}
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

func (e *ExactDeterminant) dense() (*spectrum.Dense, error) {
	return spectrum.Build(e.comm, e.op.Layout(), decomp.All, e.op.PerSite(), e.op.M)
}

// Action returns −2 log|det D| (collective; every rank gets the value).
func (e *ExactDeterminant) Action() (float64, error) {
	d, err := e.dense()
	if err != nil {
		return 0, err
	}
	s := []float64{0}
	if d != nil {
		ld, _ := d.LogDet()
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
	d, err := e.dense()
	if err != nil {
		return err
	}
	n := e.n
	inv := d.Inverse() // (D⁻¹)_ij at i·n + j, from one factorisation
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
