// Package gauge holds gauge fields on the decomposed lattice for U(1)
// (Nc = 1) and SU(3) (Nc = 3) in any number of directions: links, random
// starts, gauge transformations, plaquettes, the Wilson action and its force,
// the 2D topological charge and Polyakov loops.
//
// # Storage
//
// A [Field] keeps, for every local site s and direction μ, the link U_μ(x)
// from x to x+μ̂ as an Nc×Nc complex matrix in row-major order: value
// (s·Nd + μ)·Nc² + i·Nc + j is U_μ(x)_ij. Local sites come in the layout's
// parity order, followed by the halo cells of a periodic box zone of depth 1
// (package decomp). Links are periodic in every direction; fermion boundary
// conditions are not the gauge field's business. Random fields draw the links
// of the site with global index g from rng stream g in direction order, so a
// field does not depend on the process grid.
//
// # Conventions (the paper's equation numbers)
//
//	P_μν(x) = U_μ(x) U_ν(x+μ̂) U_μ†(x+ν̂) U_ν†(x)                    (3)
//	S_g     = −(β/Nc) Σ_x Σ_{μ<ν} Re Tr P_μν(x)                         (2)
//	U_μ(x) → Ω(x) U_μ(x) Ω†(x+μ̂)                                      (6)
//
// S_g has no additive constant: the cold field has S_g = −β V D(D−1)/2. The
// average plaquette is (1/Nc) Re Tr P averaged over sites and planes.
//
// The topological charge of a 2D U(1) field is Q = (1/2π) Σ_x arg P_01(x)
// with arg ∈ (−π, π]: an integer on a periodic lattice. The Polyakov loop is
// (1/Nc) Tr Π_{t=0}^{L₀−1} U_0(t, x⃗), the product ordered in increasing t,
// averaged over x⃗.
//
// # Lie algebra and force
//
// Algebra elements are X = Σ_a x_a T_a with generators T = i for U(1) and
// T_a = iλ_a/2 for SU(3) (package su3); an [Algebra] field holds one per link
// as an Nc×Nc matrix, and Algebra.Dot is Σ x_a y_a. A link moves on the group
// by U → exp(εX) U (Field.Update). The force is the gradient of S_g in these
// coordinates,
//
//	F_a(x, μ) = ∂S_g/∂x_a |_{U_μ(x) → exp(x_b T_b) U_μ(x)},   F = Σ_a F_a T_a,
//	F_μ(x)    = −(β/Nc) Σ_a T_a Re Tr(T_a U_μ(x) A_μ(x)),
//
// with A_μ(x) the sum of the 2(D−1) staples. For SU(3),
// Σ_a T_a Re Tr(T_a M) = −TA(M)/2; for U(1) it is −i Im M. A molecular-dynamics
// step with momenta π_a is then dπ_a/dτ = −F_a, dU/dτ = (Σ_a π_a T_a) U.
package gauge
