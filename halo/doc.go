// Package halo fills the halo cells of a field from the ranks that own the
// sites (the forward exchange H) and sends contributions accumulated in halo
// cells back to their owners (the adjoint exchange Hᵀ).
//
// # Fields
//
// A field on a [decomp.Zone] is a slice of (V + H)·n values: n values per
// site, site-major, local sites [0, V) first in the layout's parity order,
// then the halo cells in zone order. The element type is float64 or
// complex128.
//
// # Forward exchange
//
// For halo cell c, a copy of site s on rank r with wrap w,
//
//	f[c] = ε(w) · f_r[s],   ε(w) = Π_μ e_μ^{w_μ},
//
// where e_μ is the boundary phase of direction μ (fermions: e₀ = −1,
// antiperiodic in time; gauge fields and networks: all 1). Phases have unit
// modulus, so e^{−1} = ē; a float64 field accepts only ±1; a phase other
// than 1 needs a zone built with its direction twisted (decomp.ZoneSpec). A parity
// selection p exchanges only the cells whose site has parity p and leaves the
// others untouched; Even/odd operators need one parity at a time and move
// half the bytes.
//
// # Adjoint exchange
//
// Backpropagation through a stencil produces gradient contributions in halo
// cells. The adjoint exchange is the transpose of the forward map for the
// real inner product ⟨a, b⟩ = Re Σ ā b:
//
//	f_r[s] += Σ_{c copies s} ε̄(w_c) · f[c],   then f[c] = 0,
//
// so that ⟨H x, y⟩ = ⟨x, Hᵀ y⟩, with x a field whose halo is ignored and y a
// full field. For complex fields this matches pfmpi's gradient convention
// (grad z = ∂L/∂Re z + i ∂L/∂Im z). Contributions are added in a fixed order
// (this rank's own copies first, then peers by rank), so results are
// reproducible; across process grids they agree to rounding.
//
// # Overlap
//
// Start packs and posts the messages and makes the copies that stay on the
// rank; Finish waits and unpacks. Between them the caller computes on interior
// sites (those whose stencil does not reach the halo) and must not write the
// field's local sites in the selection or read its halo. StartAdjoint and
// FinishAdjoint do the same for the adjoint. A [Halo] carries one exchange at
// a time; use separate values for exchanges that overlap. All ranks of the
// domain call the same exchanges in the same order.
//
// # Cost
//
// Messages carry only what the peer needs; the buffers and MPI persistent
// requests are built once, and exchanges do not allocate. [Halo.Bytes] gives
// the bytes each exchange moves, for bandwidth accounting.
package halo
