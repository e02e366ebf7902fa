// Package mpitest runs distributed tests on either communicator backend.
//
// A test package that exercises communication declares
//
//	func TestMain(m *testing.M) { mpitest.Main(m) }
//
// and runs its distributed bodies with [Run]:
//
//	mpitest.Run(t, 4, func(c mpi.Comm) error { ... })
//
// In the default build, Run starts the requested number of in-process ranks.
// Built with `-tags mpi` and launched by mpirun (for example
// `go test -tags mpi -exec 'mpirun -n 4' ./halo`), Run splits the MPI world
// into groups of the requested size, runs the body on every complete group and
// skips the test when the world is too small. The bodies then execute on the
// main goroutine, whose OS thread initialised MPI (MPI_THREAD_FUNNELED).
//
// A body must reach every collective call on every rank even when it finds an
// error (compute first, then compare), or the other ranks wait forever.
package mpitest
