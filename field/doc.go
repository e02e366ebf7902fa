// Package field holds typed lattice fields: n values per site, stored site
// by site on the local sites and the halo cells of a [decomp.Zone].
//
// # Storage
//
// A Field[T] (T float64 or complex128) has (V + H)·n values: value j of site s
// is Data()[s·n + j]. Local sites [0, V) come first, in the layout's parity
// order (even sites [0, V_e), odd sites [V_e, V)), then the H halo cells.
// A field of one parity is the contiguous slice [Field.Parity]. Within a site
// the layout of the n values is the owner's convention; fermions are spin-major
// (value s·Nc + c is spin s, colour c), gauge links row-major Nc×Nc matrices.
//
// The halo cells are filled by halo/ (forward exchange) and drained by its
// adjoint; Field only stores them.
//
// # Global arrays
//
// [Gather] and [Scatter] convert between a distributed field and the global
// array in lexicographic order (direction 0 slowest, n values per site), the
// order of files and of NumPy arrays of shape [L₀, …, L_{D−1}, n].
//
// # Random fields
//
// [Fill] draws value j of the site with global index g as the (j+1)-th draw of
// the stream rng.Key.Stream(g), so a random field is the same on every process
// grid, bit for bit.
package field
