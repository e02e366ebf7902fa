package driver

import (
	"fmt"
	"io"

	"pfmpi/action"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/flow"
	"pfmpi/gauge"
	"pfmpi/internal/rundir"
	"pfmpi/mpi"
)

// Env is the environment of a phase on one rank.
type Env struct {
	World   mpi.Comm       // every rank of the job
	Domain  mpi.Comm       // the ranks holding one lattice (the process grid)
	Replica mpi.Comm       // the ranks at this rank's grid position in every replica
	Layout  *decomp.Layout // this rank's block of its replica's lattice
	Config  *config.Config // the resolved run file
	Dir     *rundir.Dir    // the output directory (nil: none, as in benchmarks)
	Out     io.Writer      // progress and summaries (printed by world rank 0; nil: silent)
}

// ReplicaIndex is this rank's replica, ReplicaCount their number.
func (e Env) ReplicaIndex() int { return e.World.Rank() / e.Domain.Size() }

// ReplicaCount is the number of replicas (lattices held at once).
func (e Env) ReplicaCount() int { return e.World.Size() / e.Domain.Size() }

// Flow is the parallel setting the flow library takes.
func (e Env) Flow() flow.Ranks {
	return flow.Ranks{World: e.World, Domain: e.Domain, Replica: e.ReplicaIndex(), Replicas: e.ReplicaCount()}
}

// Printf prints on world rank 0.
func (e Env) Printf(format string, args ...any) {
	if e.World.Rank() == 0 && e.Out != nil {
		fmt.Fprintf(e.Out, format, args...)
	}
}

// Theory is the lattice theory of a run file on one domain: a gauge field
// with the Wilson gauge action and, for κ > 0, the Wilson–Dirac operator
// on it. Every monomial and operator reads U in place.
type Theory struct {
	Space *gauge.Space
	U     *gauge.Field
	Gauge action.Monomial // S_g = −β/Nc Σ_P Re Tr U_P
	Op    *dslash.Wilson  // nil without fermions (action.kappa = 0)
	cfg   *config.Config
	comm  mpi.Comm
}

// BuildTheory builds the theory of cfg on the domain comm, this rank's
// block ly (collective).
func BuildTheory(comm mpi.Comm, ly *decomp.Layout, cfg *config.Config) (*Theory, error) {
	sp, err := gauge.NewSpace(comm, ly, cfg.Lattice.GaugeGroup().Nc())
	if err != nil {
		return nil, err
	}
	t := &Theory{Space: sp, U: sp.NewField(), cfg: cfg, comm: comm}
	t.Gauge = action.NewGauge(t.U, cfg.Action.Beta)
	if k := cfg.Action.Kappa; k > 0 {
		if t.Op, err = dslash.NewWilson(t.U, k); err != nil {
			sp.Close()
			return nil, err
		}
	}
	return t, nil
}

// Pseudofermions returns the pseudofermion monomials of [action] (even/odd
// preconditioning, the Hasenbusch chain, the solver tolerances of
// [solver]) with the regulator μ0 added to every kernel (0: the action
// itself; action.train_regulator for training). Nil without fermions.
func (t *Theory) Pseudofermions(regulator float64) ([]*action.Pseudofermion, error) {
	if t.Op == nil {
		return nil, nil
	}
	ac, sv := t.cfg.Action, t.cfg.Solver
	pfs, err := action.NewPseudofermions(t.comm, t.Op, action.Fermions{
		EvenOdd:   ac.Precondition == "eo",
		Shifts:    ac.Hasenbusch,
		Solves:    action.Solves{MD: sv.TolMD, Action: sv.Tol, MaxIter: sv.MaxIter},
		Regulator: regulator,
	})
	if err != nil {
		key := "action.hasenbusch"
		if regulator != 0 {
			key = "action.train_regulator"
		}
		return nil, t.cfg.Errorf(key, "%v", err)
	}
	return pfs, nil
}

// Close releases the operator's and the space's communication plans.
func (t *Theory) Close() {
	if t.Op != nil {
		t.Op.Close()
	}
	t.Space.Close()
}
