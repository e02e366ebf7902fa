// Package coupling holds the invertible layers of the flows: gauge-
// equivariant coupling layers for U(1) and SU(3) gauge fields in 2D, and
// the circle and spectral maps they are built from.
//
// # U(1) gauge layers (Kanwar et al. 2020; Albergo et al. 2022, appendix)
//
// Links are angles θ_μ(x) (U = e^{iθ}), held in an nnlayers tensor with two
// channels (μ = 0, 1) per site and batch member. The plaquette angle is
//
//	θ_P(x) = θ_0(x) + θ_1(x+0̂) − θ_0(x+1̂) − θ_1(x).
//
// Layer i has active direction μ = ⌊i/4⌋ mod 2 and offset o = i mod 4 (ν =
// 1 − μ); the plaquette at x is active when x_μ − o − 2(x_ν mod 2) ≡ 0
// (mod 4), and its link U_μ(x) is the one that moves. Each active link lies
// in exactly one active plaquette, and that plaquette holds no other active
// link. The layer sets
//
//	θ′_P = h(θ_P),   U′_μ(x) = P′P⁻¹ U_μ(x):  θ_μ(x) += ±(h(θ_P) − θ_P)
//
// (+ for μ = 0; − for μ = 1, whose link enters P_01 daggered), so the
// new plaquette is exactly h(θ_P). The circle map h takes its parameters
// from a context network that sees only loops holding no active link (the
// plaquettes and the 2×1 rectangles of both orientations, as (cos, sin),
// zero elsewhere): they are unchanged by the layer, which makes it
// invertible, and gauge invariant, which makes it gauge equivariant. Haar
// measure is Lebesgue in the angles, so
//
//	log J = Σ_{active x} log h′(θ_P(x)).
//
// The extents must be divisible by 4; layers 0…7 move every link once.
//
// [U1StringLayer] is the U(1) form of the marginal string layers below
// (every row at once, then the column of their seams, without context; the
// column's plaquettes before the last seam as bridges). In U(1) the
// bridge conditional is a density on the circle that a conditioned circle
// map can represent, so these two layers alone approach the target: on
// 8 × 8 at β = 2 a sampling ESS of 0.84 after 20 s of training
// (experiments/gauge-bridges).
//
// # Circle maps
//
// [Spline] is a circular rational-quadratic spline with a periodic knot
// derivative, [NCP] a mixture of non-compact projections; both end with a
// rotation. Zero parameters give the identity, so a context network whose
// last layer starts at zero makes the flow start as the identity. Both give
// h, log h′, their vector–Jacobian products (derived by hand, tested against
// central differences) and the inverse.
//
// # SU(3) layers (Ref. [26] of the paper)
//
// [SU3Layer] uses the same masks. For an active link, W = U_μ(x)S(x) is the
// untraced active plaquette starting at x (P_01(x) for μ = 0, P_01(x)† for
// μ = 1), which transforms as W → Ω(x)WΩ(x)†; the update U′ = h(W)W†U with a
// conjugation-equivariant h makes U′S = h(W). h is a [SpectralMap] on the
// eigenphases: a composition of n residual steps θ_i ↦ θ_i + ψ_s(θ_i) −
// mean_j ψ_s(θ_j), each ψ_s a trigonometric polynomial with |ψ_s′| < 1 —
// permutation equivariant (the Weyl group needs no canonical cell),
// det-preserving, invertible (each step the identity plus a contraction),
// with log J = Σ_s log det(1 + P diag ψ_s′) plus the ratio of Vandermonde
// factors of the Weyl integration formula (right multiplication by S
// preserves Haar measure). This residual construction replaces the spline
// on a canonical cell of Boyda et al. One step is not expressive enough: fit
// alone to the single-plaquette density e^{(β/3) Re Tr W} at β = 6 (4
// modes, 3000 Adam steps on 256 Haar samples) one step leaves KL = 0.12
// nats per plaquette, four steps 0.002 (TestSpectralMapCapacity, half as long:
// 0.097 and 0.007). Its VJP goes through the
// eigen-decomposition: off the diagonal the Daleckii–Krein divided
// differences (e^{iε_i} − e^{iε_j})/(λ_i − λ_j) of F = h(W)W† written with
// sines of half-differences and the product of the steps' divided
// differences (sinc form), so they become derivatives, without
// cancellation, when eigenvalues nearly coincide; on the diagonal the
// Jacobian of the steps, back-propagated with log J. The phase-invariant
// product V diag(·) V† makes eigenvector phases irrelevant. Links are tensors of 36
// channels per site (two row-major 3 × 3 complex matrices); gradients are in
// the complex-matrix convention dL = Re Tr(G† dU), exact along the tangent
// directions dU = XU, X ∈ su(3). The context is Re and Im of (1/3) Tr of the
// frozen plaquette.
//
// # SU(3) string layers
//
// In a plaquette layer the active link also lies in a second, passive
// plaquette Q, which becomes F Q with F = h(W)W†: its spectrum then depends
// on the relative orientation of the eigenframes of F and Q, and it becomes
// correlated with the new active plaquette h(W). Measured on trained models
// (experiments/su3-flow-diagnosis), this correlation (the total correlation
// of the plaquettes, KL(q‖p) minus the sum of the plaquettes' marginal KLs)
// is most of what is left of the KL. [SU3StringLayer] maps whole rows of
// plaquettes instead: it moves every link U_m of a row, in sequence along
// the row, so that each plaquette of the row but one (the seam) is mapped
// exactly, W′ = h(W), and no other plaquette changes. In 2D pure gauge
// theory the plaquettes are independent up to one global constraint, which
// is what makes this the natural update. The recursion runs along whole
// rows, so these layers need the lattice on one rank. Each new link is
// projected back onto SU(3): the recursion would otherwise carry every
// plaquette's rounding along the row and amplify it from layer to layer
// until W′ = h(W) and log J fail. (The measurements in
// experiments/su3-flow-diagnosis were repeated with it: unchanged at 4 × 4
// and for the 16-layer 8 × 8 model.)
//
// A [StringPattern] says which rows a string layer maps. Rows that share no
// moving link can be mapped at once without context:
// [MarginalStringPatterns] gives the two layers that map every plaquette but
// one (every row of direction 0, then the column of their seams). The last
// plaquette is fixed by the torus holonomies: mapped like the others it
// would stay Haar-like, which costs KL(Haar‖p₁) ≈ 1.24 nats at β = 6
// whatever the volume.
//
// # Bridge plaquettes
//
// Given the flux M that a string has left (the product of its plaquettes
// from x_k to the seam, a loop of new and fixed links only), the target's
// plaquettes of the string are independent p₁ conditioned on their product,
// so W(x_k) has the conditional ∝ p₁(W) p_n(W⁻¹M), p_n the n-fold
// convolution of p₁ and n the plaquettes after it: the Brownian bridge of
// the group. A bridge plaquette is mapped as W′ = S h(S†W) with S = M^α
// (α trained per n, from 1/(n+1)) and h's parameters conditioned on the
// traces of S; S depends only on earlier variables of the string, so log J
// keeps its triangular form. The column of the marginal layers ends in the
// seam the holonomies set; its last StringLayerSpec.Bridge plaquettes (3
// by default) make that seam follow its conditional instead of staying
// Haar-like. With p_n flat within (1/3 ⟨Tr P⟩)^n, only the last few need
// it. On 8 × 8 at β = 6 the two marginal layers with bridges alone reach a
// sampling ESS of 0.62–0.66, against 0.10 without (experiments/gauge-bridges).
// A spectral map of S†W cannot tilt W's eigenframe towards M's, the part
// of the conditional that is not a class function (≈ 0.05 nats for the
// last plaquette, measured one node at a time); on 4 × 4 what is left is
// 0.10 nats of correlation and 0.009 nats of marginal error per plaquette.
//
// Trained jointly with deeper flows, the optimizer spreads the plaquette
// map over all layers and leaves the marginal ones idle; train.marginal_first
// (nnlayers.Adam.Hold) trains them alone first.
//
// Measured alternatives that did not pay (flux conditioning without the
// centre S, top-down tree layers, framed and alternating spectral maps) are
// recorded in experiments/su3-flow-diagnosis/RESULTS.md.
//
// # Differentiation
//
// A layer records its parts on an nnlayers tape: the loop features (whose
// backward pass scatters to the neighbouring links and returns halo
// gradients with the adjoint exchange), the context network, and the
// transform. A layer may be applied once per tape pass.
package coupling
