// Package decomp is the geometry of a lattice split over a process grid: which
// rank holds which sites, how a rank numbers its sites, which sites are even
// and odd, and where each neighbour of a site is found, on this rank or in its
// halo zone. It does no communication beyond [SplitWorld]; halo/ moves the data.
//
// # Coordinates and ranks
//
// A lattice has D ≤ 4 directions; direction 0 is time. Global coordinates are
// x_μ ∈ [0, L_μ). The global lexicographic index, used by the random numbers
// and by file formats, is Σ_μ x_μ Π_{ν>μ} L_ν: direction 0 slowest, the last
// direction fastest (C order of an array of shape [L₀, L₁, …]).
//
// The process grid G splits direction μ into G_μ blocks of l_μ = L_μ/G_μ
// sites. The domain rank of the block with grid coordinate c is the
// lexicographic index of c in G, again direction 0 slowest; its local sites
// have global coordinates o + y with origin o_μ = c_μ l_μ and local
// coordinate y_μ ∈ [0, l_μ).
//
// With R replicas, ranks = R × Π_μ G_μ; world rank w is domain rank
// w mod ΠG of replica ⌊w / ΠG⌋ (the ranks of one replica are adjacent, so
// halo traffic stays on a node).
//
// # Parity and site order
//
// The parity of a site is Σ_μ x_μ mod 2 of its *global* coordinate. A rank
// numbers its V = Π l_μ sites parity first: the even sites in local
// lexicographic order get indices [0, V_e), the odd ones [V_e, V). A field of
// one parity is therefore a contiguous block. Even/odd preconditioning
// requires even local extents, so that V_e = V/2 on every rank; without it odd
// local extents are allowed and V_e may differ between ranks.
//
// # Halo zone and neighbour tables
//
// A [Zone] of depth d ([ZoneSpec]) extends the local block by d sites in
// every direction:
//
//   - [Faces]: the cells x ± k e_μ (1 ≤ k ≤ d) outside the block, which
//     stencils along the axes need (Wilson–Dirac operator: d = 1);
//   - [Box]: every cell of the padded block [−d, l+d)^D outside the block,
//     which D-dimensional convolutions need (kernel 3, dilation ≤ d).
//
// Halo cells get indices V, V+1, …, V+H−1 after the local sites, so a field
// stored on a zone has V+H sites. A neighbour outside the block is a halo cell
// when another rank holds it, or when it is this rank's own site reached
// across the global boundary of a *twisted* direction (one whose fields may
// carry a boundary phase: direction 0 for fermions). The halo exchange then
// copies it with the phase, so that operators never special-case the global
// boundary. A rank's own site reached across periodic boundaries only is read
// in place: a neighbour table entry < V, no copy.
//
// A halo cell's unwrapped global coordinate o + y may leave [0, L_μ); its
// wrap w_μ = ⌊(o_μ + y_μ)/L_μ⌋ counts the crossings of the global boundary
// (usually −1, 0 or +1), and a boundary phase e_μ enters the cell's value as
// Π_μ e_μ^{w_μ}.
//
// Cells are ordered by owner rank, then by the parity of the owner's site,
// then by wrap, then by unwrapped coordinate. The cells one peer sends are
// thus contiguous, for one parity and for both, and the peer packs them in
// exactly this order ([Peer]).
//
// [Zone.Shift] returns, for an offset δ within the zone, the table
// n(x) = index of x + δ; [Zone.Up] and [Zone.Dn] are the tables for ±e_μ.
// Tables are built once and hold int32 indices into [0, V+H).
package decomp
