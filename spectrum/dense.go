package spectrum

import (
	"fmt"
	"math"
	"math/cmplx"
	"sort"

	"gonum.org/v1/gonum/mat"

	"pfmpi/decomp"
	"pfmpi/mpi"
)

// Dense is an N×N complex matrix, row-major.
type Dense struct {
	N int
	A []complex128
}

// MaxDense is the largest N that Build accepts (a 4096×4096 complex matrix
// takes 256 MiB; its LU about a minute).
const MaxDense = 4096

// Basis is the dense basis of vectors holding the sites of parity p of every
// rank's block, n values per site: the sites in global lexicographic order,
// then the values of each site.
type Basis struct {
	comm     mpi.Comm
	ly       *decomp.Layout
	p        decomp.Parity
	n        int
	globals  []int64      // basis sites
	lo       int          // first local site of parity p
	local    int          // local sites of parity p
	maxLocal int          // the largest local count over ranks
	rowsOf   [][]int      // rank 0: basis positions of each rank's local sites
	in, out  []complex128 // BuildInto's work vectors
}

// NewBasis returns the basis; it is collective.
func NewBasis(comm mpi.Comm, ly *decomp.Layout, p decomp.Parity, n int) (*Basis, error) {
	lat := ly.Lattice()
	b := &Basis{comm: comm, ly: ly, p: p, n: n}
	nd, dims := lat.NumDims(), lat.Dims()
	x := make([]int, nd)
	for g := int64(0); g < lat.GlobalVolume(); g++ {
		k, sum := g, 0
		for mu := nd - 1; mu >= 0; mu-- {
			x[mu] = int(k % int64(dims[mu]))
			k /= int64(dims[mu])
			sum += x[mu]
		}
		if p == decomp.All || decomp.Parity(sum%2) == p {
			b.globals = append(b.globals, g)
		}
	}
	lo, hi := ly.Sites(p)
	b.lo, b.local = lo, hi-lo
	b.maxLocal = int(mpi.MaxFloat64(comm, float64(b.local)))
	if comm.Rank() == 0 {
		pos := make(map[int64]int, len(b.globals))
		for i, g := range b.globals {
			pos[g] = i
		}
		b.rowsOf = make([][]int, comm.Size())
		for r := range b.rowsOf {
			lr, err := lat.Layout(r)
			if err != nil {
				return nil, err
			}
			a, z := lr.Sites(p)
			for s := a; s < z; s++ {
				b.rowsOf[r] = append(b.rowsOf[r], pos[lr.GlobalIndex(s)])
			}
		}
	}
	return b, nil
}

// LocalRows returns the basis position of each local site of the parity
// (in local order) when the lattice is on one rank, nil otherwise. The
// slice is shared: do not modify it.
func (b *Basis) LocalRows() []int {
	if b.comm.Size() != 1 {
		return nil
	}
	return b.rowsOf[0]
}

// N is the dimension: sites of the parity × values per site.
func (b *Basis) N() int { return len(b.globals) * b.n }

// Gather returns on rank 0 the vector x (this rank's share) in basis order,
// nil on the other ranks. It is collective.
func (b *Basis) Gather(x []complex128) []complex128 {
	send := make([]complex128, b.maxLocal*b.n)
	copy(send, x)
	var all []complex128
	if b.comm.Rank() == 0 {
		all = make([]complex128, b.comm.Size()*len(send))
	}
	b.comm.Gather(0, mpi.Bytes(send), mpi.Bytes(all))
	if b.comm.Rank() != 0 {
		return nil
	}
	out := make([]complex128, b.N())
	for r, rows := range b.rowsOf {
		for i, row := range rows {
			copy(out[row*b.n:(row+1)*b.n], all[(r*b.maxLocal+i)*b.n:(r*b.maxLocal+i+1)*b.n])
		}
	}
	return out
}

// Build returns on rank 0 the dense matrix of apply (a linear map of vectors
// in this basis' layout), nil on the other ranks. It applies the operator to
// every basis vector: collective, and only for small lattices.
func (b *Basis) Build(apply func(out, in []complex128)) (*Dense, error) {
	var d *Dense
	if b.comm.Rank() == 0 {
		d = new(Dense)
	}
	return d, b.BuildInto(d, apply)
}

// BuildInto is [Basis.Build] into d (rank 0; nil elsewhere), reusing its
// storage and the basis' work vectors: without allocating when the lattice
// is on one rank and d has the size.
func (b *Basis) BuildInto(d *Dense, apply func(out, in []complex128)) error {
	big := b.N()
	if big > MaxDense {
		return fmt.Errorf("spectrum: a dense matrix of %d × %d exceeds the limit %d; use a smaller lattice", big, big, MaxDense)
	}
	if (d != nil) != (b.comm.Rank() == 0) {
		return fmt.Errorf("spectrum: BuildInto needs the matrix on rank 0 and nil elsewhere")
	}
	lat := b.ly.Lattice()
	nd, dims := lat.NumDims(), lat.Dims()
	if len(b.in) != b.local*b.n {
		b.in = make([]complex128, b.local*b.n)
		b.out = make([]complex128, b.local*b.n)
	}
	in, out := b.in, b.out
	if d != nil {
		d.N = big
		if cap(d.A) < big*big {
			d.A = make([]complex128, big*big)
		}
		d.A = d.A[:big*big]
	}
	single := b.comm.Size() == 1
	coord := make([]int, nd)
	for j, g := range b.globals {
		k := g
		for mu := nd - 1; mu >= 0; mu-- {
			coord[mu] = int(k % int64(dims[mu]))
			k /= int64(dims[mu])
		}
		owner, site := lat.Owner(coord)
		for c := 0; c < b.n; c++ {
			clear(in)
			if owner == b.ly.Rank() {
				in[(site-b.lo)*b.n+c] = 1
			}
			apply(out, in)
			col := j*b.n + c
			if single {
				// One rank: local site i is basis row rowsOf[0][i].
				for i, row := range b.rowsOf[0] {
					for v := 0; v < b.n; v++ {
						d.A[(row*b.n+v)*big+col] = out[i*b.n+v]
					}
				}
				continue
			}
			all := b.Gather(out)
			if d == nil {
				continue
			}
			for i, v := range all {
				d.A[i*big+col] = v
			}
		}
	}
	return nil
}

// Build is NewBasis followed by Basis.Build.
func Build(comm mpi.Comm, ly *decomp.Layout, p decomp.Parity, n int, apply func(out, in []complex128)) (*Dense, error) {
	b, err := NewBasis(comm, ly, p, n)
	if err != nil {
		return nil, err
	}
	return b.Build(apply)
}

// LU is an LU factorisation with partial pivoting, P A = L U, of a [Dense]
// matrix: L below the diagonal (unit diagonal), U on and above, in one
// row-major array. A factorisation can be reused for another matrix of the
// same size ([Dense.FactorInto]) without allocating.
type LU struct {
	n    int
	a    []complex128
	perm []int   // (P b)[i] = b[perm[i]]
	sign float64 // sign of the permutation
}

// Factor returns the LU factorisation of d.
func (d *Dense) Factor() *LU {
	f := new(LU)
	d.FactorInto(f)
	return f
}

// FactorInto factorises d into f, reusing f's storage.
func (d *Dense) FactorInto(f *LU) {
	n := d.N
	f.n, f.sign = n, 1
	if cap(f.a) < n*n {
		f.a = make([]complex128, n*n)
	}
	f.a = f.a[:n*n]
	copy(f.a, d.A)
	if cap(f.perm) < n {
		f.perm = make([]int, n)
	}
	f.perm = f.perm[:n]
	for i := range f.perm {
		f.perm[i] = i
	}
	a := f.a
	for k := 0; k < n; k++ {
		piv, best := k, cmplx.Abs(a[k*n+k])
		for i := k + 1; i < n; i++ {
			if v := cmplx.Abs(a[i*n+k]); v > best {
				piv, best = i, v
			}
		}
		if piv != k {
			for j := 0; j < n; j++ {
				a[k*n+j], a[piv*n+j] = a[piv*n+j], a[k*n+j]
			}
			f.perm[k], f.perm[piv] = f.perm[piv], f.perm[k]
			f.sign = -f.sign
		}
		if a[k*n+k] == 0 {
			continue // singular; the determinant is 0
		}
		inv := 1 / a[k*n+k]
		top := a[k*n+k+1 : k*n+n]
		for i := k + 1; i < n; i++ {
			l := a[i*n+k] * inv
			a[i*n+k] = l
			if l == 0 {
				continue
			}
			axpy(a[i*n+k+1:i*n+n], -l, top)
		}
	}
}

// axpy sets y += a·x.
func axpy(y []complex128, a complex128, x []complex128) {
	x = x[:len(y)]
	for j := range y {
		y[j] += a * x[j]
	}
}

// LogDet returns log|det A| and arg det A ∈ (−π, π]; log|det| is −Inf for a
// singular matrix.
func (d *Dense) LogDet() (logAbs, phase float64) { return d.Factor().LogDet() }

// LogDet returns log|det A| and arg det A ∈ (−π, π] of the factorised
// matrix; log|det| is −Inf for a singular matrix.
func (f *LU) LogDet() (logAbs, phase float64) {
	if f.sign < 0 {
		phase = math.Pi
	}
	for k := 0; k < f.n; k++ {
		u := f.a[k*f.n+k]
		if u == 0 {
			return math.Inf(-1), 0
		}
		logAbs += math.Log(cmplx.Abs(u))
		phase += cmplx.Phase(u)
	}
	return logAbs, math.Remainder(phase, 2*math.Pi)
}

// Solve returns A⁻¹ b.
func (d *Dense) Solve(b []complex128) []complex128 {
	return d.Factor().Solve(b)
}

// Inverse returns A⁻¹ (row-major) from one LU factorisation.
func (d *Dense) Inverse() []complex128 {
	inv := make([]complex128, d.N*d.N)
	d.Factor().InverseInto(inv)
	return inv
}

// InverseInto sets inv (n² values, row-major) to A⁻¹ = U⁻¹ L⁻¹ P: the rows
// of P are reduced by L (forward) and then by U (backward), one row update
// a·x + y over all n columns at a time, so that the work (n³ complex
// multiply–adds) streams through memory instead of forming a dependency
// chain per element.
func (f *LU) InverseInto(inv []complex128) {
	n := f.n
	inv = inv[:n*n]
	clear(inv)
	for i, p := range f.perm {
		inv[i*n+p] = 1
	}
	a := f.a
	for i := 1; i < n; i++ { // L X = P
		row := inv[i*n : i*n+n]
		for k := 0; k < i; k++ {
			if l := a[i*n+k]; l != 0 {
				axpy(row, -l, inv[k*n:k*n+n])
			}
		}
	}
	for i := n - 1; i >= 0; i-- { // U A⁻¹ = X
		row := inv[i*n : i*n+n]
		for k := i + 1; k < n; k++ {
			if u := a[i*n+k]; u != 0 {
				axpy(row, -u, inv[k*n:k*n+n])
			}
		}
		d := 1 / a[i*n+i]
		for j := range row {
			row[j] *= d
		}
	}
}

// Solve returns x with A x = b.
func (f *LU) Solve(b []complex128) []complex128 {
	n := f.n
	x := make([]complex128, n)
	for i := 0; i < n; i++ {
		x[i] = b[f.perm[i]]
	}
	for i := 0; i < n; i++ { // L y = P b
		for k := 0; k < i; k++ {
			x[i] -= f.a[i*n+k] * x[k]
		}
	}
	for i := n - 1; i >= 0; i-- { // U x = y
		for k := i + 1; k < n; k++ {
			x[i] -= f.a[i*n+k] * x[k]
		}
		x[i] /= f.a[i*n+i]
	}
	return x
}

// HermitianEigenvalues returns the eigenvalues of a Hermitian matrix in
// ascending order.
func (d *Dense) HermitianEigenvalues() ([]float64, error) {
	n := d.N
	r := mat.NewSymDense(2*n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			z := d.A[i*n+j]
			r.SetSym(i, j, real(z))
			r.SetSym(n+i, n+j, real(z))
			r.SetSym(i, n+j, -imag(z))
			r.SetSym(j, n+i, imag(z))
		}
	}
	var es mat.EigenSym
	if !es.Factorize(r, false) {
		return nil, fmt.Errorf("spectrum: the symmetric eigensolver did not converge")
	}
	all := es.Values(nil)
	sort.Float64s(all)
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = (all[2*i] + all[2*i+1]) / 2
	}
	return vals, nil
}
