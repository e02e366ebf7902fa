// Package flow trains normalizing flows for lattice gauge fields and samples
// from them: the model, reverse-KL self-training, the effective sample size
// and the independence Metropolis sampler.
//
// # Model
//
// [U1] is the gauge-equivariant flow for 2D U(1) (the marginal model q(U) of
// the joint flows): uniform angles z (Haar measure, density r = (2π)^{−N_links})
// pushed through coupling layers (package coupling), U = f(z), with
//
//	log q(U) = log r(z) − Σ_layers Σ_{active plaquettes} log h′.
//
// [SU3] is its 2D SU(3) counterpart: Haar-random links (r = 1) pushed
// through spectral coupling layers (coupling.SU3Layer), log q = −Σ log J with
// J the Jacobian with respect to Haar measure. Both satisfy [GaugeFlow],
// which is all the trainer uses; SU(3) configurations are links tensors (36
// channels per site) and the target turns the algebra force F into the
// complex-matrix gradient G = 2FU (Re Tr(G† T_a U) = F_a). For pure gauge
// theory log Z is known for both groups (measure.U1LogPartition,
// measure.SU3LogPartition).
//
// # Training (Eq. B1)
//
// The loss of a step is the Monte Carlo estimate of KL(q‖p) − log Z over a
// fresh batch from the prior,
//
//	L = (1/B) Σ_b [log q(U_b) + S(U_b)],   U_b = f(z_b),
//
// differentiated by the reparameterisation trick: ∂S/∂U (the force of the
// target's monomials, package action) flows back through the layers with
// the log-Jacobians. The batch is split over the replicas, each lattice
// over its domain ranks; gradients are all-reduced over the world. Step n
// draws from keys of (seed, n) alone, so a resumed run repeats it exactly.
// For pure gauge theory the exact log Z is known (measure.U1LogPartition),
// and the loss gives KL(q‖p) itself.
//
// # Joint model (Eqs. 18–22, 39–40)
//
// With pseudofermions ([Trainer.SetPseudofermionFlows], [Target.SetPseudofermions])
// the model is q(U, φ_1 … φ_N) = q(U) Π_i q(φ_i|U): the gauge flow above and
// one conditional flow per pseudofermion monomial (package pfflow), the
// links (U = e^{iθ} for U(1), the SU(3) matrices themselves) feeding the
// transports and the context network. The loss
// is the reverse KL of the joint distribution, which needs no determinant:
//
//	L = (1/B) Σ_b [log q(U_b) + S_g(U_b) + Σ_i (log q(φ_ib|U_b) + S_i(U_b, φ_ib))],
//
// and its gradient flows through φ (∂S_i/∂φ = 2K_iφ from one CG solve),
// through U (the pseudofermion force of package action, and through the
// transports and context inputs of the conditional flows) into all N + 1
// flows at once. The training target replaces M by M + μ₀ (the regulator);
// weights and observables use the unregulated monomials.
//
// Joint weights (Eq. 40): log w = −S_g − log q(U) + Σ_i [−S_i(φ_i) − log q(φ_i|U)].
// With Npf draws per monomial (Eqs. 42–46) the conditional factor becomes
// log[(1/Npf) Σ_j e^{−S_i(φ_ij) − log q(φ_ij|U)}] ([Samples.LogWNpf]); as
// Npf → ∞ it tends to log(π^N det K_i⁻¹), and the product over monomials to
// the determinant, so ESS(Npf) approaches the marginal ESS (Eq. 45). On
// lattices small enough for the dense determinant ([Target.SetMarginal]),
// the marginal weights −S_g + log det DD† − log q(U) are computed too.
//
// # Sampling (Eqs. 15–17)
//
// With log w = −S − log q (the unknown log Z cancels):
//
//	ESS = (Σ w)² / (N Σ w²) = exp(2 LSE(log w) − LSE(2 log w)) / N,
//
// the independence Metropolis chain accepts proposal U′ from state U with
// probability min(1, w(U′)/w(U)), and reweighting estimates ⟨O⟩ =
// Σ w O / Σ w. An identity flow (q = Haar) against a constant action gives
// ESS = 1 and accepts everything; against pure gauge theory its ESS is
// Z(β)²/Z(2β) — the tests use both.
package flow
