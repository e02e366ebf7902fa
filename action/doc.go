// Package action holds the terms of the lattice action that HMC integrates
// and the flow is trained against: the Wilson gauge action and the
// two-flavour pseudofermion monomials of Wilson fermions, unpreconditioned,
// even/odd preconditioned and Hasenbusch factorised. Every term gives its
// value, its force with respect to the links and, for pseudofermions, an
// exact heat-bath draw.
//
// # Monomials
//
// A [Monomial] is bound to a gauge field that changes in place (the HMC
// integrator updates its links); it is evaluated at the current links. The
// force is the gradient in the gauge package's algebra coordinates,
//
//	F_a(x, μ) = ∂S/∂x_a  at  U_μ(x) → exp(Σ_b x_b T_b) U_μ(x),
//
// so that d/dε S(exp(εX) U) = F·X and the molecular-dynamics equations are
// dπ/dτ = −F, dU/dτ = π U.
//
// # Pseudofermions (Eqs. 10–12, 33–38)
//
// Let A be the Wilson operator D (precondition "none") or its Schur
// complement D_sc = 1 − D_eo D_oe on the even sites ("eo", Eq. 34), and
// M = A A† (Hermitian, positive). With Hasenbusch shifts 0 = μ_0 < μ_1 < …
// < μ_N (Eq. 38) the determinant det M splits into N ratio monomials and one
// shifted monomial, each with its own pseudofermion φ_i:
//
//	S_i  = φ_i† (1 + (μ_{i+1} − μ_i)(M + μ_i)⁻¹) φ_i,   i = 0 … N−1   (37, 38)
//	S_N  = φ_N† (M + μ_N)⁻¹ φ_N                                      (12, 35)
//
// and ∫dφ exp(−φ†Kφ) ∝ 1/det K, so Π_i det K_i⁻¹ = det M (N = 0 is the
// single monomial φ†M⁻¹φ of Eqs. 12 and 35). Every monomial is therefore
//
//	S = c₀ φ†φ + c₁ φ†(M + σ)⁻¹φ
//
// with (c₀, c₁, σ) = (1, μ_{i+1} − μ_i, μ_i) for a ratio and (0, 1, μ_N)
// for the last one. Its gradient with respect to φ† is the kernel
// Kφ = c₀φ + c₁(M + σ)⁻¹φ; its link force follows from
// dS = −c₁ X† dM X with X = (M + σ)⁻¹φ:
//
//	none: F = −2c₁ ∂Re⟨X, dD Y⟩,                      Y = D†X
//	eo:   F = +2c₁ ∂Re⟨χ, dD ψ⟩,  χ = (X, (D†)_oe X),  ψ = (Y, D_oe Y),  Y = D_sc†X
//
// (dD_sc = −dD_eo D_oe − D_eo dD_oe; the derivatives are dslash's MDeriv).
//
// # Heat bath
//
// D and D_sc are γ5-Hermitian, so A_μ = A + i√μ γ5 satisfies
// A_μ A_μ† = A A† + μ and A_μ† A_μ = A† A + μ. A complex normal η
// (density exp(−η†η)) then gives an exact draw from exp(−S):
//
//	last:  φ = A_{μ_N} η                                  ⟨φφ†⟩ = M + μ_N
//	ratio: φ = A_{μ_i} A_{μ_{i+1}}† (M + μ_{i+1})⁻¹ η      ⟨φφ†⟩ = (M + μ_i)(M + μ_{i+1})⁻¹
//
// the second by the push-through identity A†(AA† + δ)⁻¹ = (A†A + δ)⁻¹A†.
// In both cases S(φ) = η†η exactly, which the tests use. No rational
// approximation is needed, and each monomial, having its own pseudofermion,
// solves with one shift: multi-shift CG would only pay where one right-hand
// side meets several shifts, which this factorisation never asks for.
//
// # Solves
//
// All inversions are CG on M + σ from a zero initial guess (reversible
// molecular dynamics), to the relative residual [Solves].MD inside the
// force and [Solves].Action for the action and the heat bath.
package action
