// Package mpi is pfmpi's communicator: the one interface through which every
// distributed computation (halo exchange, global reductions, gradient sums,
// configuration I/O) talks to other ranks.
//
// # Backends
//
// Two backends implement [Comm]:
//
//   - The in-process backend (always compiled): [Run] starts N ranks as
//     goroutines that exchange messages through memory. `go test ./...` uses it
//     to exercise every process grid without MPI, and `pfmpi -ranks N` uses it
//     to run on one machine without mpirun.
//   - The MPI backend (build tag `mpi`): a thin cgo binding to the system MPI
//     (OpenMPI through `pkg-config ompi-c`; MPICH with tags `mpi,mpich`).
//     [Init] calls MPI_Init_thread with MPI_THREAD_FUNNELED. Without the tag,
//     [Init] returns a one-rank communicator and refuses to start when it sees
//     that mpirun launched several copies of the program.
//
// Both backends have the same semantics and pass the same tests.
//
// # Semantics
//
// Point-to-point messages are matched by (source, tag) in posting order (MPI's
// non-overtaking rule); tags are non-negative. Wildcards are not offered.
// [Comm.Sendrecv] is blocking; [Comm.NewExchange] builds a persistent set of
// transfers that is started and completed many times ([Exchange.Start],
// [Exchange.Wait]) so that callers can overlap communication with
// computation. While an exchange is in flight its buffers belong to the
// communicator: do not read or write them until Wait returns.
//
// Collectives ([Comm.Allreduce], [Comm.Bcast], [Comm.Gather], [Comm.Scatter],
// [Comm.Barrier], [Comm.Split]) must be called by every rank of the
// communicator in the same order.
//
// Reductions are deterministic: [Sum] adds the ranks' contributions in rank
// order, ((x₀ + x₁) + x₂) + …, element by element, on both backends. The
// result is therefore bitwise identical on every rank, from run to run, and
// between the in-process and the MPI backend. (MPI_Allreduce does not promise
// this, so the MPI backend computes sums with an all-to-all exchange followed
// by an ordered local sum and an all-gather.)
//
// Misuse (mismatched buffer sizes, a message longer than its receive buffer, a
// negative tag, a rank out of range) is a programming error and panics, as MPI
// aborts on errors by default.
//
// # Threads
//
// A communicator is used by one goroutine at a time: the rank's "comm
// goroutine". Under MPI this must be the goroutine that called [Init], with its
// OS thread locked (runtime.LockOSThread in main's init), because the library
// is initialised with MPI_THREAD_FUNNELED. Worker goroutines compute; they
// never call the communicator.
//
// # Buffers
//
// Messages are byte slices; [Bytes] views a []float64 or []complex128 as bytes
// without copying. The MPI backend pins the buffers of a persistent exchange
// with runtime.Pinner for the exchange's lifetime.
package mpi
