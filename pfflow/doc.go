// Package pfflow holds the gauge-equivariant flows for pseudofermions of the
// paper's joint models (Sections III C–D, Appendix B 2): parallel-transport
// convolutions, pseudofermion coupling layers and their context network, and
// the conditional flows q(φ|U), one per pseudofermion monomial.
//
// # Tensors
//
// Fields live in nnlayers tensors (V sites × B batch members × C real
// channels, site order of the rank's layout). A pseudofermion has Spins·Nc
// complex components per site (Spins = 2 in 2D, 4 in 4D), ordered as in
// package dslash (spin-major: component a·Nc + c), real and imaginary parts
// adjacent: C = Spins·Nc·2. Links are D·Nc² complex numbers per site,
// U_μ(x)_{ij} at channel ((μ·Nc + i)·Nc + j)·2 ([LinkChannels]); [U1Links]
// makes them from U(1) angles. Complex gradients follow one convention: the
// gradient of a real loss L with respect to z = a + ib is G_z = ∂L/∂a +
// i ∂L/∂b, so for w = m·l, G_m += G_w·l̄ and G_l += m̄·G_w.
//
// # Parallel transport convolution (Eqs. 25–26)
//
// [PTC] gathers at y the field and its 2d neighbours transported to y,
// U_μ(y)φ(y+μ̂) and U_μ(y−μ̂)†φ(y−μ̂), with the fermions' antiperiodic
// boundary in time (direction 0), and mixes the K̃ = (2d+1)·K features with
// an H × K̃ complex matrix M(y) per site. Across ranks only φ and U_μ†φ
// travel (one halo exchange of depth 1 per PTC); links never do. A PTCN is
// n_PT PTCs: Spins → H → … → H → Spins features. Everything is linear in φ
// and, because M depends on U only through gauge-invariant inputs, gauge
// equivariant: f(U^Ω, Ωφ) = Ω f(U, φ).
//
// # Pseudofermion layers (Eqs. 27–32)
//
//	φ′_a(x) = A(x) φ_a(x) + PTCN[U, φ_f](x),   φ′_f = φ_f,
//
// with the partitions of [Partition]: checkerboard (sites of one parity;
// A a Spins × Spins matrix), rows (time slices x_0 ≡ r mod 2; with even/odd
// preconditioning their even sites only, Sec. III D 1) and spin (one spin
// component on every site, P± = (1 ± σ_z)/2; A a scalar). The alternative
// (parity, r, or which spin) alternates each time a partition recurs in the
// cycle of layers, so every variable is updated equally often. Since A acts
// on spin only, log J = 2·Nc·Σ_active log|det A(x)| (Eqs. 30, 32 for Nc = 1).
// With even/odd preconditioning the odd sites start at zero and stay zero;
// the PTCs may fill them as working memory (n_PT ≥ 2).
//
// # Context function (Appendix B 2)
//
// Inputs (Eq. B2–B3): Re Tr P_μν(x), Im Tr P_μν(x) for every plane and
// x_μ mod 4 for every direction (4 channels in 2D). A trunk — one periodic
// convolution to N_hidden channels and ELU — is shared by every layer of
// every monomial; each layer has its own head, one convolution to the
// channels it needs and tanh: 2·Spins² for A(x) − 1 (2 with the spin
// partition), then 2·H_out·K̃ per PTC. The identity is added to A, so a layer
// whose PTCs are zero is φ′ = (1 + a)φ. Choices the paper leaves open,
// made here: kernel size 3 for every context convolution; one convolution in
// the trunk and one in each head; rows are time slices; A is a general
// complex Spins × Spins matrix (2·Spins² real outputs; the paper's "8 complex
// numbers" for 2D does not match a 2 × 2 matrix). All convolutions start
// from Xavier normal with the configured gain (0.5 in the paper): with a zero
// head the PTCN would start at zero with zero gradient through its product
// of matrices.
//
// Each layer evaluates its head right before it runs ([Layer.Heads]: the
// head's output cut into A − 1 and one tensor of matrices per PTC, which
// the PTC streams through); the heads of one conditional read the trunk's
// output and share its packed neighbourhoods (package nnlayers). Several
// pseudofermion draws at one gauge field reuse the heads
// ([Conditional.Heads], [Conditional.ForwardHeads]).
//
// # Kernels
//
// A PTC runs as kernels over blocks of rows — pad (φ and U_μ†φ into the
// halo buffer), mix (gather L and apply M) and, backward, their adjoints
// and a scatter over batch chunks — chosen once per PTC: general (any Nc),
// one colour, and one colour 2D 2 → 2 (the Schwinger-model flows, H = 2).
// The last runs in AVX2 assembly where the CPU has it, on runs of
// consecutive batch members of one site (whose neighbours' rows are
// consecutive too): L is gathered inside the mixing kernel, and the
// backward kernel, on chunks of the batch, computes M̄, Ḡ_L, the links'
// share and the scatter of Ḡ_L in one pass, storing M̄ outright when the
// head left its gradient uncleared (nnlayers.Bank.SetUnclearedGrads). The
// tests compare every specialised kernel with the general ones, and the
// assembly with its Go reference.
//
// # Conditional flows and densities (Eqs. 20–22, 39)
//
// [Conditional] maps χ with density r(χ) = π^{−N} e^{−χ†χ} (N = [Model.Dof]
// complex components) to φ, and
//
//	log q(φ|U) = −χ†χ − N log π − Σ_layers log J.
//
// [Model] holds the shared trunk and one conditional flow per monomial.
// Package flow composes it with the gauge flow into the joint model and
// trains it.
package pfflow
