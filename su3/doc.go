// Package su3 is the arithmetic of SU(3) and its Lie algebra su(3) on 3×3
// complex matrices held by value.
//
// # Storage
//
// A [Matrix] is [9]complex128 in row-major order: element (i, j) is m[3i+j].
// Matrices are values: operations return new matrices and never allocate.
// The same type holds group elements and algebra elements.
//
// # Algebra
//
// su(3) is the space of traceless anti-Hermitian matrices. Its basis is
// T_a = i λ_a / 2 (a = 1…8, indexed 0…7 here), with λ_a the Gell-Mann
// matrices, so that
//
//	Tr(T_a T_b) = −δ_ab / 2,   X = Σ_a x_a T_a,   x_a = −2 Re Tr(T_a X).
//
// [TA] is the traceless anti-Hermitian part (M − M†)/2 − Tr(M − M†)/6, the
// projection of any matrix onto su(3): for every a, Re Tr(T_a M) = Re Tr(T_a TA(M)).
//
// # Exponential
//
// [Exp] maps su(3) to SU(3) exactly by the Cayley–Hamilton theorem (Morningstar
// and Peardon, Phys. Rev. D 69 (2004) 054501): with Q = −iX Hermitian and
// traceless, exp(iQ) = f₀ + f₁Q + f₂Q², where f_j are closed-form functions of
// c₀ = det Q and c₁ = Tr Q²/2. It agrees with the Taylor series to rounding.
//
// # Projection
//
// [Matrix.Unitarize] projects a matrix that has drifted from SU(3) back onto it:
// Gram–Schmidt on the first two rows, and the third row the complex conjugate
// of their cross product, which makes the determinant exactly 1.
//
// # Eigen-decomposition
//
// [Eigen] returns U = V diag(λ) V† for a unitary U with V unitary, robustly also
// for nearly degenerate eigenvalues: V comes from Jacobi rotations of the
// Hermitian matrices (U + U†)/2 and, within its nearly degenerate eigenspaces,
// (U − U†)/2i, which commute with U. The eigenvalue order and the eigenvector
// phases are arbitrary; use phase-invariant combinations.
//
// # Random elements
//
// [Haar] draws from the Haar measure: a Haar-random U(3) matrix (rng) divided
// by a cube root of its determinant. [NearIdentity] is exp(ε Σ_a ω_a T_a) with
// ω_a standard normal.
package su3
