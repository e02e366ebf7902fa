// Package hmc is pseudofermion Hybrid Monte Carlo (Duane, Kennedy, Pendleton
// and Roweth 1987) for the monomials of package action: the baseline the
// flow sampler is compared against, and the proof that actions and forces
// agree.
//
// # Algorithm
//
// One trajectory of a [Chain]:
//
//  1. momenta π_a(x, μ) standard normal (H_kin = ½ Σ π_a²); every monomial
//     refreshes its pseudofermion by its exact heat bath;
//  2. molecular dynamics dU/dτ = π U, dπ/dτ = −F over the time τ with a
//     symmetric, reversible, area-preserving integrator ([MD]);
//  3. Metropolis: accept the end point with probability min(1, e^{−ΔH}),
//     ΔH = H(end) − H(start), H = H_kin + Σ S; otherwise keep the start.
//
// # Integrators and time scales
//
// [MD] nests time scales (Sexton and Weingarten 1992): level 0 is
// outermost; each of its Steps steps runs the next level over the step's
// drift, and only the innermost level moves the links. Cheap, stiff forces
// (the gauge action, the heavily shifted Hasenbusch monomial) go inside;
// expensive, soft ones (the ratios near μ = 0) outside. Each level is
// leapfrog or Omelyan's second-order minimum-norm scheme (λ = 0.19318…),
// whose ΔH is about ten times smaller at twice the force evaluations.
// Both have errors ΔH = O(ε²) per trajectory, so halving ε divides ⟨|ΔH|⟩
// by about four, and ⟨e^{−ΔH}⟩ = 1 exactly for any ε (Creutz' equality),
// a check of area preservation.
//
// # Random numbers and resuming
//
// Trajectory n draws from key.Derive(n) alone: the momenta from child 0
// (one stream per global site), the accept/reject uniform from child 1 and
// monomial i's pseudofermion from child 2 + i. The RNG state of a chain is
// therefore its trajectory number: a chain rebuilt from saved links and
// the number of the next trajectory continues bit for bit, and every rank
// draws the same numbers whatever the process grid.
//
// # Reproducibility across process grids
//
// Site-local arithmetic is identical on every process grid; global sums
// (CG, actions, ΔH) are reduced in a fixed order per grid, which differs
// between grids in the last bits. Chains on different grids agree to
// rounding amplified by the molecular dynamics: the tests require equal
// accept/reject decisions and plaquettes equal to 1e-9 over 10
// trajectories on five process grids (they agree to 2e-15), not bitwise
// equality.
package hmc
