package measure

import (
	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
	"pfmpi/spectrum"
)

// Extremes estimates the extreme eigenvalues of a Hermitian positive
// operator on vectors of the sites of parity p (All or Even), perSite values
// per site, by Lanczos from a random start drawn from key (one stream per
// global site: the start does not depend on the process grid). tol is the
// relative Ritz residual.
func Extremes(comm mpi.Comm, ly *decomp.Layout, p decomp.Parity, perSite int, a solver.Linear, key rng.Key, tol float64, maxIter int) (spectrum.Extremal, error) {
	lo, hi := ly.Sites(p)
	start := make([]complex128, (hi-lo)*perSite)
	field.FillComplexNormalSites(start, ly, p, perSite, key)
	return spectrum.Extremes(comm, a, start, tol, maxIter)
}
