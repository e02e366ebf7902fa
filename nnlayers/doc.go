// Package nnlayers is a small differentiable layer library on the decomposed
// lattice: the context networks of the flows (convolutions over the lattice,
// activations, element-wise arithmetic), their parameters, optimizers and the
// gradient all-reduce. It is written for exact vector–Jacobian products in
// float64 and for an allocation-free training step.
//
// # Tensors
//
// A [Tensor] holds C real channels for each of B batch members on the V local
// sites of one rank, stored site-major, then batch, then channel:
//
//	value (s, b, c) at Data[(s·B + b)·C + c]
//
// in the site order of the rank's layout (package decomp). All channels and
// batch members of a site are contiguous, so one halo exchange with B·C
// values per site serves a whole convolution input, and the ranges of a batch
// split are contiguous at every site. Grad has the layout of Data.
//
// # How backward works: a tape
//
// Every operation takes a [Tape], computes its output and, unless the tape is
// in inference mode, appends a node (operation, inputs, output, scratch) to
// it. [Tape.Backward] visits the nodes in reverse order and calls each
// operation's vector–Jacobian product, which adds dL/d(input) to the inputs'
// Grad and dL/d(parameter) to the parameters' Grad. Composing operations, or
// applying one module several times (shared weights), therefore needs no new
// derivative code: gradients from every use add up.
//
// The tape also owns the tensors the operations return. [Tape.Reset] starts a
// new pass and hands the same buffers out again in the same order, so a
// training step that repeats the same sequence of operations allocates
// nothing once the first step has sized the pool. Tensors created outside a
// tape (network inputs, constant channels) may have a nil Grad: no gradient
// is accumulated into them.
//
// # Convolutions on the lattice
//
// [Conv] is a D-dimensional convolution with odd kernel size k and dilation
// δ, periodic in every direction (the lattice is a torus; across ranks the
// halo of depth δ(k−1)/2 is exchanged by package halo, and in the backward
// pass the adjoint exchange returns the halo gradients to their owners):
//
//	y(x, b, o) = b_o + Σ_{j ∈ [0,k)^D} Σ_i W[j, i, o] · x(x + δ(j − r), b, i),   r = (k−1)/2.
//
// Per site it is a matrix product of the gathered neighbourhood (batch rows ×
// k^D·C_in) with W (k^D·C_in × C_out), done by gonum's BLAS.
//
// # Parallelism and determinism
//
// Inside a rank, work is split over the batch in fixed chunks of [ChunkSize]
// members that a pool of goroutines (one per GOMAXPROCS by default) takes in
// turn. Chunks write disjoint outputs; parameter gradients are summed per
// chunk and then over chunks in chunk order, so results do not depend on the
// number of goroutines. MPI is called only from the goroutine that calls the
// operation (halo exchanges, [AllreduceGrads]). Across process grids results
// agree to rounding (sums over sites are split differently).
//
// # Parameters and optimizers
//
// A [Param] has a name, a shape, values and a gradient. Initialisers draw from
// package rng keyed by (seed, name), so every rank builds the same network.
// [Adam] implements Adam and AdamW (decoupled weight decay) with the ε the
// paper tunes (0.01–0.02), global gradient-norm clipping and a step-decay
// schedule; its state and the parameters serialise exactly ([WriteParams],
// [Adam.WriteState]). [AllreduceGrads] sums the gradients over the world
// communicator (domain and replica ranks) in a fixed order.
package nnlayers
