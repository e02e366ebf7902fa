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
// "marginal" target of the flows and a reference for HMC.
//
// With even global extents it factorises the Schur complement (Eq. 34),
//
//	det D = det D_oo · det(D_ee − D_eo D_oo⁻¹ D_oe) = det(1 − D_eo D_oe) = det D_sc,
//
// a dense matrix of N/2 rows (N = V·Ns·Nc ≤ 2·spectrum.MaxDense), an eighth
// of the work of D itself; otherwise D. Its force,
//
//	F = −2 ∂ Re Tr(D⁻¹ dD),
//
// reads D⁻¹ only where dD is non-zero, on the hops between neighbouring
// sites of opposite parity: with S = D_sc⁻¹ the block inverse gives
// (D⁻¹)_oe = −D_oe S and (D⁻¹)_eo = −S D_eo, N/2 half-lattice hops each,
// assembled by [dslash.Operator.TraceDeriv]. The force needs the whole
// lattice on one rank. When the operator tells its gauge field (a
// Gauge() *gauge.Field method, as [dslash.Wilson]), the factorisation of
// Action is reused by AddForce on the same links (compared value by value).
type ExactDeterminant struct {
	comm  mpi.Comm
	op    dslash.Operator
	per   int           // values per site
	n     int           // rows of the dense matrix
	schur *dslash.Schur // nil: the dense matrix is D
	basis *spectrum.Basis
	d     *spectrum.Dense // rank 0: the last matrix built (nil elsewhere)
	lu    spectrum.LU     // rank 0: its factorisation
	inv   []complex128    // AddForce: the inverse of the dense matrix
	// AddForce with the Schur complement: D_oe S (odd rows × even columns)
	// and S D_eo (even rows × odd columns), local order; work vectors.
	oe, eo   []complex128
	vin, out []complex128
	field    *gauge.Field // the operator's gauge field (nil: unknown)
	links    []complex128 // its local links when d was built (valid: factored)
	valid    bool
}

// NewExactDeterminant returns the monomial of op (comm: op's domain); it is
// collective.
func NewExactDeterminant(comm mpi.Comm, op dslash.Operator) (*ExactDeterminant, error) {
	return newExactDeterminant(comm, op, true)
}

// newExactDeterminant is NewExactDeterminant; without useSchur it factorises
// D even where the Schur complement exists (the reference route of tests).
func newExactDeterminant(comm mpi.Comm, op dslash.Operator, useSchur bool) (*ExactDeterminant, error) {
	ly := op.Layout()
	per := op.PerSite()
	e := &ExactDeterminant{comm: comm, op: op, per: per}
	parity := decomp.All
	if useSchur && evenExtents(ly.Lattice().Dims()) {
		e.schur = dslash.NewSchur(op)
		parity = decomp.Even
	}
	basis, err := spectrum.NewBasis(comm, ly, parity, per)
	if err != nil {
		return nil, err
	}
	e.basis, e.n = basis, basis.N()
	if e.n > spectrum.MaxDense {
		return nil, fmt.Errorf("action: the exact determinant of a %d × %d matrix is beyond the dense limit %d; use pseudofermions", e.n, e.n, spectrum.MaxDense)
	}
	if comm.Rank() == 0 {
		e.d = new(spectrum.Dense)
	}
	if g, ok := op.(interface{ Gauge() *gauge.Field }); ok && comm.Size() == 1 {
		e.field = g.Gauge()
	}
	return e, nil
}

func evenExtents(dims []int) bool {
	for _, l := range dims {
		if l%2 != 0 {
			return false
		}
	}
	return true
}

func (e *ExactDeterminant) Name() string          { return "det" }
func (e *ExactDeterminant) Refresh(rng.Key) error { return nil }
func (e *ExactDeterminant) Iterations() int       { return 0 }

// Rows is the dimension of the dense matrix factorised: N/2 with the Schur
// complement, else N.
func (e *ExactDeterminant) Rows() int { return e.n }

// factor builds the dense matrix and factorises it on rank 0 (collective),
// unless the factorisation at hand is of the same links.
func (e *ExactDeterminant) factor() error {
	var local []complex128
	if e.field != nil {
		local = e.field.Data().Local()
		if e.valid && slices.Equal(local, e.links) {
			return nil
		}
	}
	e.valid = false
	apply := e.op.M
	if e.schur != nil {
		apply = e.schur.M
	}
	if err := e.basis.BuildInto(e.d, apply); err != nil {
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
	n, per := e.n, e.per
	if len(e.inv) != n*n {
		e.inv = make([]complex128, n*n)
	}
	inv := e.inv
	e.lu.InverseInto(inv) // row-major, basis order
	rows := e.basis.LocalRows()
	if e.schur == nil {
		e.op.TraceDeriv(f, func(dst []complex128, y, x int) {
			for a := range per {
				r := inv[(rows[y]*per+a)*n+rows[x]*per:]
				copy(dst[a*per:(a+1)*per], r[:per])
			}
		}, -2)
		return nil
	}
	ne := n // even values
	no := e.op.Layout().Volume()*per - ne
	if len(e.oe) != no*ne {
		e.oe = make([]complex128, no*ne)
		e.eo = make([]complex128, ne*no)
		e.vin = make([]complex128, ne)
		e.out = make([]complex128, no)
	}
	oe, eo, vin, out := e.oe, e.eo, e.vin, e.out
	// S = inv in basis order; local even value k·per+a is basis row rows[k]·per+a.
	for i := range ne / per {
		for c := range per {
			col := rows[i]*per + c
			// Column (i, c) of D_oe S: D_oe applied to column (i, c) of S.
			for k, r := range rows {
				for a := range per {
					vin[k*per+a] = inv[(r*per+a)*n+col]
				}
			}
			e.op.Moe(out, vin, false)
			for r, v := range out {
				oe[r*ne+i*per+c] = v
			}
			// Row (i, c) of S D_eo: (S D_eo)† = (D†)_oe S†, whose column
			// (i, c) is (D†)_oe applied to the conjugated row (i, c) of S.
			srow := inv[col*n:]
			for k, r := range rows {
				for a := range per {
					vin[k*per+a] = cmplx.Conj(srow[r*per+a])
				}
			}
			e.op.Moe(out, vin, true)
			dst := eo[(i*per+c)*no:]
			for r, v := range out {
				dst[r] = cmplx.Conj(v)
			}
		}
	}
	vol := e.op.Layout().Volume()
	evens := ne / per
	e.op.TraceDeriv(f, func(dst []complex128, y, x int) {
		// (D⁻¹)_oe = −D_oe S, (D⁻¹)_eo = −S D_eo; the −1 goes into the coefficient.
		switch {
		case y >= evens && x < evens:
			for a := range per {
				copy(dst[a*per:(a+1)*per], oe[((y-evens)*per+a)*ne+x*per:])
			}
		case y < evens && x >= evens && x < vol:
			for a := range per {
				copy(dst[a*per:(a+1)*per], eo[(y*per+a)*no+(x-evens)*per:])
			}
		default:
			panic(fmt.Sprintf("action: exact-determinant force at sites %d, %d of one parity", y, x))
		}
	}, 2)
	return nil
}
