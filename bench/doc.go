// Package bench measures pfmpi's kernels on the decomposed lattice: the
// Wilson–Dirac operator, CG iterations and halo exchanges, in GFLOP/s and
// GB/s by the operators' own counts (dslash.Cost: no cache reuse), and as a
// fraction of the memory bandwidth this machine delivers to the same
// processes, measured with a STREAM-like triad a[i] = b[i] + s·c[i] (24 bytes
// per element, arrays far larger than the caches).
//
// [Run] measures a list of [Setup]s ([Volumes] is the standard one of
// `pfmpi bench`). Every measurement is collective over the communicator: ranks start
// together after a barrier and the slowest rank's time counts. Timings are
// the best of the repetitions, as STREAM reports them.
//
// Scaling series are measured by a [Sweep] (the HMC and training points
// time whole phases of generated run files through a runner the caller
// provides) and are lists of [Point] (CSV through [AppendCSV] and
// [ReadCSV]); [Efficiencies] pairs each with its one-rank reference (weak:
// T₁/T_P at fixed sites per rank, strong: T₁/(P·T_P) on a fixed lattice).
// [Model] is the performance model — compute per site, halo messages
// (latency α, bandwidth β), global sums, the gradient all-reduce —
// calibrated on such points by [Calibrate] and used to predict large runs
// (docs/scaling.md); [Report] and [ModelReport] print them.
package bench
