// Package spectrum gives exact dense references for small lattices and
// Krylov estimates of extremal eigenvalues for any lattice.
//
// [Build] turns a linear operator on one rank's share of a field (all sites or
// one parity) into the dense N×N matrix on rank 0, in a fixed global basis:
// sites of the parity in global lexicographic order, then the values of the
// site. From it, [Dense.LogDet] (complex LU with partial pivoting: log|det| and
// the phase), [Dense.Solve] and [Dense.HermitianEigenvalues] (through the real
// embedding [[Re A, −Im A], [Im A, Re A]], whose eigenvalues are those of A,
// each twice, computed by gonum's symmetric eigensolver) give the exact
// quantities the iterative methods are tested against: log|det D|²,
// log det D_sc D_sc† = 2 log|det D_sc|, φ†M⁻¹φ, the spectrum of M.
//
// Where the dense matrix is built over and over (the exact determinant of
// every gauge field a flow proposes), [Basis.BuildInto] reuses the matrix
// and the work vectors, [Dense.FactorInto] the factorisation [LU], and
// [LU.InverseInto] forms A⁻¹ = U⁻¹L⁻¹P by row updates (n³ complex
// multiply–adds streamed through memory) for the force Tr(D⁻¹ dD).
//
// [Extremes] runs the Lanczos iteration on a Hermitian positive operator and
// returns its smallest and largest eigenvalues once the Ritz residuals of both
// fall below the tolerance; the condition number is their ratio. No
// reorthogonalisation is done: spurious copies of converged Ritz values do not
// move the extremes.
package spectrum
