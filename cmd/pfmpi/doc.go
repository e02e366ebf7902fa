// Command pfmpi samples lattice gauge theories with dynamical fermions using
// gauge-equivariant normalizing flows with pseudofermions.
//
// Usage:
//
//	pfmpi [run] [FILE.toml] [-ranks N] [-t LIMIT] [-margin D]
//	                                     run the phases of a run file; -t slurm|90m|HH:MM:SS
//	                                     checkpoints and stops before the limit
//	pfmpi check [FILE.toml] [-ranks N]   validate a run file and its rank layout
//	pfmpi info CONFIG [-json] [-beta B]  describe a gauge configuration file
//	pfmpi convert IN OUT [-beta B]       convert between .pfg, .npy and .lime/.ildg
//	pfmpi spectrum CONFIG -kappa K [-eo] [-mu μ] [-json] [-phi PHI.npy]
//	                                     determinants, condition numbers, φ†M⁻¹φ
//	pfmpi bench [-ranks N] [-json] [-quick]  kernel GFLOP/s, GB/s, fraction of the triad bandwidth
//	pfmpi bench -weak LOCAL | -strong LATTICE [-grid G] [-ops …] [-csv F]
//	                                     scaling points (dslash, CG, halo, HMC, training)
//	pfmpi bench -report|-model CSV…      scaling efficiencies; the performance model
//	pfmpi bench -train RUN.toml          a training step, broken down by kind of work
//	pfmpi bench -compare PROGRAM         D against the C reference (bench/cref)
//	pfmpi help [config]                  usage, or every run-file key
//	pfmpi version                        version, Go, communicator backend
//
// Without FILE.toml the embedded quickstart (examples/quickstart.toml) is used.
// Ranks come from mpirun/srun when the binary is built with `-tags mpi`;
// -ranks N runs N in-process ranks instead (no MPI needed).
//
// Every rank runs the same command. Rank 0 alone reads the run file (and
// broadcasts it) and alone prints. The main goroutine is locked to its OS
// thread, which makes all MPI calls (MPI_THREAD_FUNNELED).
//
// A run stops early, with a checkpoint, when the -t limit is near or on
// SIGTERM, SIGINT or SIGUSR1 (exit 4: run again to continue), or when the
// file OUTPUT/STOP exists (exit 5). Under MPI an error that only some ranks
// return ends the job with MPI_Abort, so that no rank waits for ever.
//
// Exit codes: 0 success, 1 bad input or a failed run, 2 bad command line,
// 3 a phase that is not implemented yet, 4 stopped with a checkpoint (wall
// time or signal), 5 stopped with a checkpoint by OUTPUT/STOP.
package main
