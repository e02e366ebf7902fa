// Package flowrun runs the [train] and [sample] phases of a run file for
// flows of 2D U(1) and SU(3) gauge fields, alone (pure gauge or the exact
// fermion determinant) or with pseudofermion flows (the joint model
// q(U)·Π_i q(φ_i|U) of arXiv:2207.08945, Eq. (11)): it builds the flow and
// its target from the configuration, trains with checkpoints and metrics,
// draws samples, runs the independence Metropolis chain, and writes
// summaries and plots.
//
// A training step of a joint model (flow.Trainer): the gauge flow draws a
// batch of gauge fields, each pseudofermion flow draws φ_i given them, and
// the reverse KL of the joint density (Eq. (13)) is differentiated through
// both. Where train.gauge_loss resolves to "marginal" the gauge flow trains
// instead on the reverse KL of the marginal with the exact determinant,
// and with train.gauge_steps k ≥ 2 (auto: 4 there) it takes k steps of an
// Adam of its own per step while the joint step trains the pseudofermion
// flows alone.
//
// Checkpoints: checkpoints/model-NNNNNNN.bin holds the parameters and the
// optimizer states; checkpoints/train.json names it with its SHA-256, so
// that a damaged file is detected and never loaded.
package flowrun
