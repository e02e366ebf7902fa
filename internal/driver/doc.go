// Package driver holds what every phase driver of a run file shares: the
// environment a phase runs in ([Env]: the world, the replica's domain, this
// rank's block of the lattice, the resolved run file and its output
// directory) and the lattice theory the run file's [lattice] and [action]
// describe ([BuildTheory]: the gauge field, the Wilson gauge action, the
// Wilson–Dirac operator and the pseudofermion monomials of Eqs. (5)–(9) and
// (34)–(36) of arXiv:2207.08945), built once here for HMC
// (internal/hmcrun) and for the flows (internal/flowrun). The phases' step
// loop, with its checkpoints, deadline and STOP file, is
// [rundir.Dir.Steps].
package driver
