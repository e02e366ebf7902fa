// Package nnlayers is a small differentiable layer library on the decomposed
// lattice: the context networks of the flows (convolutions over the lattice,
// activations, element-wise arithmetic), their parameters, optimizers and the
// gradient all-reduce. It is written for exact vector–Jacobian products and
// for an allocation-free training step near the core's peak.
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
// nothing once the first step has sized the pool. [Tape.Tensor] hands out
// zeroed buffers; [Tape.Uncleared] zeroes only the gradient, for an operation
// that writes every value before it reads one (tested by filling the pool
// with NaN, [Tape.Poison], and comparing with a new tape). A [Bank] set
// with [Bank.SetUnclearedGrads] hands out its outputs with the gradient not
// cleared either: the operations that consume them take the gradient with
// [Tensor.GradForWrite] (the first one stores its values instead of adding
// them to zeros, which saves clearing and re-reading the buffer) or
// [Tensor.GradForAdd] (which clears it first if it is still pending); the
// built-in operations do this themselves. Tensors created outside a tape
// (network inputs, constant channels) may have a nil Grad: no gradient is
// accumulated into them.
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
// With rows r = (s, b) (M = V·B of them), K = k^D·C_in and N = C_out it is
// one matrix product Y = f(X W + b), X the gathered neighbourhoods, lowered
// onto the packed GEMM of package gemm without forming X: the packing
// routines gather the neighbourhoods from the halo-padded input, the bias
// and the activation are fused into the product's epilogue (package vmath
// for tanh and ELU), and the backward pass is two more products,
//
//	Z = Ȳ ⊙ f′(Y),   W̄ += Xᵀ Z (or W̄ᵀ += Zᵀ X when N < K),   b̄ += Σ_r Z_r,
//	X̄ += Σ_t Z W_tᵀ at the tap-t neighbours, tap after tap,
//
// the halo part of X̄ returned to its owners by the adjoint exchange. A
// product's flops are counted ([Conv.Flops]) and a [Profile] charges them,
// with the time, to the operation's kind ([Tape.SetProfile]).
//
// [Precision] Float32 runs the products, their accumulation and the fused
// activations in float32 (operands rounded when packed, results widened
// back); tensors, gradients summed across operations and parameters stay
// float64, and so does all the physics around the networks.
//
// A [Bank] is one convolution whose output channels are cut into slices,
// each returned in a tensor of its own (the heads of the pseudofermion
// flows: each slice is read by a different operation, which then streams
// through contiguous memory); convolutions of one input on one pass of a
// tape share its packed neighbourhoods.
//
// # Custom operations
//
// Operations defined elsewhere (coupling layers, parallel-transport
// convolutions) compute their outputs when applied and record a [Custom]
// whose Backward adds the vector–Jacobian product; everything it needs
// (tensors, halo exchanges, scratch) is captured at forward time, so
// Backward fails only on a broken invariant and [Tape.Backward] returns
// that error. [Records] keeps one record per application per pass, reused
// across passes (no allocation).
//
// # Parallelism and determinism
//
// A tape runs its operations on a pool of goroutines (one per GOMAXPROCS by
// default): products split into tasks by rows, output columns or runs of
// sites, element-wise work into fixed blocks, and [Tape.Run] hands custom
// operations' items to the pool. The tasks are fixed by the sizes, never by
// the number of goroutines, and every sum runs in a fixed order, so results
// are the same bit for bit on any number of goroutines. (A training step on
// a lattice held whole by one rank uses the cores differently: package flow
// runs micro-batches at once on copies of the model, each with a tape of
// one goroutine.) MPI is called only from the goroutine that calls the
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
// [Adam.WriteState]). The update is element-wise: [Adam.Begin] and
// [Adam.Update] apply it in shares on several goroutines with the result of
// [Adam.Step]. [AllreduceGrads] sums the gradients over the world
// communicator (domain and replica ranks) in a fixed order.
package nnlayers
