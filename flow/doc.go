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
