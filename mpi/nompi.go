//go:build !mpi

package mpi

import (
	"fmt"
	"os"
	"strconv"
)

// Backend names the communicator backend compiled into this binary.
const Backend = "in-process"

// Init returns a one-rank world communicator: this binary was built without
// the `mpi` tag. It fails if a launcher (mpirun, srun) started several copies
// of the program, which would otherwise all run as rank 0 of 1.
func Init() (Comm, error) {
	if n, by := launchedRanks(); n > 1 {
		return nil, fmt.Errorf("mpi: %s started %d copies of a binary built without MPI; "+
			"rebuild with `go build -tags mpi ./cmd/pfmpi` (needs libopenmpi-dev), "+
			"or run one copy with `-ranks %d` for in-process ranks", by, n, n)
	}
	w := &world{aborted: make(chan struct{}), exitOnAbort: true}
	return newLocalComm(w.newGroup(1), 0, 0), nil
}

// Finalize does nothing without MPI.
func Finalize() error { return nil }

// LibraryVersion reports that no MPI library is linked.
func LibraryVersion() string { return "none (built without -tags mpi)" }

// launchedRanks reports how many copies a parallel launcher started, from the
// environment variables OpenMPI, MPICH/PMI and Slurm set for each copy.
func launchedRanks() (int, string) {
	for _, v := range []struct{ env, by string }{
		{"OMPI_COMM_WORLD_SIZE", "mpirun (OpenMPI)"},
		{"PMI_SIZE", "mpirun (MPICH/PMI)"},
		{"SLURM_STEP_NUM_TASKS", "srun"},
	} {
		if n, err := strconv.Atoi(os.Getenv(v.env)); err == nil && n > 1 {
			return n, v.by
		}
	}
	return 1, ""
}
