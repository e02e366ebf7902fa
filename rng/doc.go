// Package rng provides counter-based random numbers keyed by
// (seed, purpose, global site, counter), so that every random number pfmpi
// draws is a pure function of those four and never of the rank that draws it.
// A field filled on any process grid is bitwise identical to the field filled
// on one rank.
//
// # Generator
//
// The block function is Philox4x64-10 (Salmon, Moraes, Dror and Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11): a 10-round Feistel-like
// bijection of a 256-bit counter under a 128-bit key, built from 64×64→128-bit
// multiplications. It passes BigCrush and is checked here against the
// published known-answer vectors.
//
// # Keys and streams
//
// A [Key] is 128 bits: [New](seed, purpose) places the run's seed in one word
// and a 64-bit FNV-1a hash of the purpose string ("gauge-start", "pf-draw", …)
// in the other. [Key.Derive](i) gives an independent child key for a numbered
// sub-purpose (a trajectory, a training step, a batch member): its words are
// the Philox output of counter (i, 0, 0, 2⁶³), a part of the counter space no
// stream uses.
//
// A [Stream] is the sequence of one (key, site) pair: block n of site s is the
// Philox output of counter (s, n, 0, 0). Sites are *global* lexicographic site
// indices (direction 0 slowest), so that a stream does not depend on the
// decomposition. Streams are values, cheap to create: make one per site and
// purpose where it is needed rather than storing generator state.
//
// # Distributions
//
//   - Uint64: the 64-bit words of the blocks in order.
//   - Float64: uniform on the open interval (0, 1): (⌊u/2¹²⌋ + ½)·2⁻⁵², so that
//     both ends are excluded and ln u is always finite.
//   - Normal: standard normal by the Box–Muller transform of two uniforms;
//     each pair of uniforms gives two normals, the second kept for the next call.
//   - ComplexNormal: density exp(−|z|²)/π, i.e. real and imaginary parts
//     independent N(0, ½) and E|z|² = 1 (the pseudofermion heat-bath
//     convention χ ∝ exp(−χ†χ)). Computed as z = √(−ln u₁)·exp(2πi u₂).
//   - Phase: Haar-random element of U(1), exp(2πi u).
//   - Unitary: Haar-random element of U(n), the Q factor of the Gram–Schmidt
//     QR decomposition (positive diagonal R) of an n×n matrix of complex
//     normals (Mezzadri, Notices AMS 54 (2007) 592).
//
// Transcendental functions come from the math package, which is pure Go on
// amd64; builds with a different GOAMD64 level may fuse multiply–adds and
// differ in the last bit.
package rng
