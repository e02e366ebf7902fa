// Package dslash holds the Wilson–Dirac operator on the decomposed lattice in
// 2D and 4D for U(1) and SU(3), its even/odd blocks, the derivative with
// respect to the links, and operators built from it (Schur complement,
// normal operators with shifts).
//
// # The operator (Eq. 5 of the paper)
//
//	(Dψ)(x) = ψ(x) − κ Σ_μ [(1 − γ_μ) U_μ(x) ψ(x+μ̂) + (1 + γ_μ) U_μ†(x−μ̂) ψ(x−μ̂)]
//
// with κ = 1/(2d + 2m₀) (1/(4 + 2m₀) in 2D, 1/(8 + 2m₀) in 4D). Fermions are
// antiperiodic in time (direction 0) and periodic in space: ψ(x + L₀0̂) = −ψ(x).
// D = 1 − κH with the hopping matrix H. D is γ5-Hermitian, γ5 D γ5 = D†, and
// D† = 1 − κ Σ_μ [(1 + γ_μ) U_μ(x) ψ(x+μ̂) + (1 − γ_μ) U_μ†(x−μ̂) ψ(x−μ̂)].
//
// # γ matrices
//
// All γ are Hermitian with the chiral block form γ_μ = [[0, A_μ], [A_μ†, 0]]
// and γ5 = diag(1, …, 1, −1, …, −1):
//
//	2D: γ_0 = σ_x, γ_1 = σ_y (Eq. 5), γ5 = σ_z = −iγ_0γ_1.
//	4D: γ_0 = [[0, 1], [1, 0]] (time), γ_k = [[0, −iσ_k], [iσ_k, 0]] (k = x, y, z),
//	    γ5 = diag(1, 1, −1, −1) = −γ_0γ_1γ_2γ_3.
//
// # Fields
//
// A fermion field holds Ns·Nc complex values per site (Ns = 2 in 2D, 4 in
// 4D), spin-major: value a·Nc + c is spin a, colour c. Full vectors hold the
// V local sites in the layout's parity order; even vectors the V_e even sites,
// odd vectors the odd ones (decomp orders sites parity first).
//
// # Even/odd (Eqs. 33–35)
//
// In the parity basis D = [[1, D_eo], [D_oe, 1]] with D_eo = −κH_eo; the Schur
// complement on the even sites is D_sc = 1 − D_eo D_oe and det D = det D_sc.
// [Schur] applies D_sc and D_sc†; [Normal] applies A A† + μ for any of them
// (M = DD†, M_sc = D_sc D_sc†, shifted for Hasenbusch, Eqs. 36–38).
//
// # Implementation
//
// [Wilson] is the fast operator: each hop projects onto the Ns/2 components
// of (1 ∓ γ_μ), multiplies the half spinor by the link and reconstructs.
// Across ranks only projected half spinors travel; the owner of x−μ̂ also
// multiplies by its own link U_μ†(x−μ̂), so links never cross ranks. Sites
// whose hops stay on the rank are computed while the messages travel. The
// boundary phase is applied by the sender. [Reference] is a plain
// implementation (dense spin matrices, whole spinors through halo/) that the
// tests compare against. Operators count their flops and bytes ([Cost]).
//
// # Derivative
//
// MDeriv gives ∂ Re⟨χ, Dψ⟩ in the gauge package's algebra coordinates
// (U → exp(x_a T_a) U). For S = φ†(DD† + μ)⁻¹φ with X = (DD† + μ)⁻¹φ,
// dS = −2 Re⟨X, dD D†X⟩, so the force is −2·MDeriv(X, D†X).
package dslash
