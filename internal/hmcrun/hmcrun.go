package hmcrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"pfmpi/action"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/hmc"
	"pfmpi/internal/atomicfile"
	"pfmpi/internal/driver"
	"pfmpi/internal/rundir"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// Record is one line of metrics.jsonl: one trajectory of one replica.
type Record struct {
	Phase             string             `json:"phase"` // "hmc"
	Step              int                `json:"step"`  // trajectory number, from 0
	Replica           int                `json:"replica"`
	Thermalizing      bool               `json:"thermalizing,omitempty"`
	DeltaH            float64            `json:"delta_h"`
	Accepted          bool               `json:"accepted"`
	Plaquette         float64            `json:"plaquette"`
	TopologicalCharge *float64           `json:"topological_charge,omitempty"`
	Polyakov          [2]float64         `json:"polyakov_loop"` // real, imaginary part
	CGIterations      map[string]int     `json:"cg_iterations,omitempty"`
	Forces            []int              `json:"force_evaluations"` // per level
	Seconds           float64            `json:"seconds"`
	ReverseLink       *float64           `json:"reversibility_link,omitempty"`
	ReverseH          *float64           `json:"reversibility_h,omitempty"`
	Pion              []float64          `json:"pion,omitempty"`
	Spectrum          map[string]float64 `json:"spectrum,omitempty"`  // "DD†.min", "DD†.max", …
	Condition         map[string]float64 `json:"condition,omitempty"` // per kernel and monomial
}

// phase is the state of one run of the phase on one rank.
type phase struct {
	env      driver.Env
	th       *driver.Theory
	cfg      *config.Config
	h        *config.HMC
	replica  int
	replicas int
	u        *gauge.Field
	op       *dslash.Wilson
	pfs      []*action.Pseudofermion
	chain    *hmc.Chain
	pion     *measure.Pion
	kernels  []kernel // for condition numbers
	total    int
	values   int // length of a packed record
	nd, nc   int
	topology bool
}

type kernel struct {
	name   string
	a      *dslash.Normal
	parity decomp.Parity
	main   bool // the kernel of the configured preconditioning
}

// Run executes the phase.
func Run(env driver.Env) error {
	cfg := env.Config
	p := &phase{env: env, cfg: cfg, h: cfg.HMC, replica: env.ReplicaIndex(),
		replicas: env.ReplicaCount(), total: cfg.HMC.Thermalize + cfg.HMC.Trajectories}
	p.nd = len(cfg.Lattice.Dims)
	p.nc = cfg.Lattice.GaugeGroup().Nc()
	p.topology = p.nd == 2 && cfg.Lattice.GaugeGroup().Abelian()
	th, err := driver.BuildTheory(env.Domain, env.Layout, cfg)
	if err != nil {
		return err
	}
	defer th.Close()
	p.th, p.u, p.op = th, th.U, th.Op
	if err := p.build(); err != nil {
		return err
	}
	next, err := p.restore()
	if err != nil {
		return err
	}
	p.chain.SetNext(next)
	p.describe(next)
	if err := env.Dir.Steps("hmc", next, p.total, p.h.CheckpointEvery, p.trajectory, p.checkpoint); err != nil {
		return err
	}
	return p.summarize()
}

func (p *phase) printf(format string, args ...any) { p.env.Printf(format, args...) }

// build makes the monomials, the integrator, the chain and the measurements.
func (p *phase) build() error {
	cfg, h := p.cfg, p.h
	monomials := []action.Monomial{p.th.Gauge}
	steps := append([]int{h.Steps}, h.InnerSteps...)
	level := []int{len(steps) - 1}
	if op := p.op; op != nil {
		var err error
		if p.pfs, err = p.th.Pseudofermions(0); err != nil {
			return err
		}
		for i, pf := range p.pfs {
			monomials = append(monomials, pf)
			l := 0
			if len(h.PFLevels) > 0 {
				l = h.PFLevels[i]
			}
			level = append(level, l)
		}
		if slices.Contains(h.Measure, "pion") {
			p.pion = measure.NewPion(p.env.Domain, op)
			p.pion.Tol, p.pion.MaxIter = cfg.Solver.Tol, cfg.Solver.MaxIter
		}
		if slices.Contains(h.Measure, "condition") {
			ly := p.env.Layout
			p.kernels = append(p.kernels, kernel{name: "DD†", a: dslash.NewNormal(op, 0, ly.Volume()*op.PerSite()),
				parity: decomp.All, main: cfg.Action.Precondition == "none"})
			if even(cfg.Lattice.Dims) {
				s := dslash.NewSchur(op)
				p.kernels = append(p.kernels, kernel{name: "DscDsc†", a: dslash.NewNormal(s, 0, s.Len()),
					parity: decomp.Even, main: cfg.Action.Precondition == "eo"})
			}
		}
	}
	levels, err := hmc.Assign(steps, monomials, level)
	if err != nil {
		return err
	}
	scheme, err := hmc.ParseScheme(h.Integrator)
	if err != nil {
		return err
	}
	md, err := hmc.NewMD(p.u, levels, scheme)
	if err != nil {
		return err
	}
	key := rng.New(uint64(cfg.Run.Seed), "hmc").Derive(uint64(p.replica))
	p.chain, err = hmc.NewChain(p.u, md, h.Tau, key)
	return err
}

func even(dims []int) bool {
	for _, l := range dims {
		if l%2 != 0 {
			return false
		}
	}
	return true
}

func (p *phase) describe(next int) {
	h := p.h
	p.printf("phase hmc: %d + %d trajectories, τ = %g, %s, steps %v (outermost first)\n",
		h.Thermalize, h.Trajectories, h.Tau, h.Integrator, append([]int{h.Steps}, h.InnerSteps...))
	for _, pf := range p.pfs {
		p.printf("  monomial     %s\n", pf)
	}
	if p.replicas > 1 {
		p.printf("  replicas     %d independent chains\n", p.replicas)
	}
	if next > 0 {
		p.printf("  resumed      at trajectory %d from %s\n", next, p.env.Dir.Checkpoints())
	}
}

// trajectory runs and records trajectory n.
func (p *phase) trajectory(n int) error {
	h := p.h
	check := h.ReverseEvery > 0 && (n+1)%h.ReverseEvery == 0
	tr, err := p.chain.Run(check)
	if err != nil {
		return fmt.Errorf("hmc trajectory %d: %w", n, err)
	}
	rec := Record{Phase: "hmc", Step: n, Replica: p.replica, Thermalizing: n < h.Thermalize,
		DeltaH: tr.DeltaH, Accepted: tr.Accepted,
		Plaquette: tr.Plaquette, Forces: tr.Forces, Seconds: tr.Seconds}
	if p.topology {
		q, err := p.u.TopologicalCharge()
		if err != nil {
			return err
		}
		q = math.Round(q) + 0 // an integer, and never −0
		rec.TopologicalCharge = &q
	}
	pl := p.u.PolyakovLoop()
	rec.Polyakov = [2]float64{real(pl), imag(pl)}
	if p.op != nil {
		rec.CGIterations = map[string]int{}
		for i, m := range p.chain.Monomials() {
			if _, ok := m.(*action.Pseudofermion); ok {
				rec.CGIterations[m.Name()] = tr.Iterations[i]
			}
		}
	}
	if r := tr.Reversibility; r != nil {
		rec.ReverseLink, rec.ReverseH = &r.MaxLinkChange, &r.DeltaH
	}
	if n >= h.Thermalize && h.MeasureEvery > 0 && (n-h.Thermalize)%h.MeasureEvery == 0 {
		if err := p.measure(n, &rec); err != nil {
			return err
		}
	}
	if h.SaveEvery > 0 && n >= h.Thermalize && (n+1-h.Thermalize)%h.SaveEvery == 0 {
		if err := p.save(n); err != nil {
			return err
		}
	}
	recs, err := p.gather(rec)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := p.env.Dir.Log(r); err != nil {
			return err
		}
	}
	p.progress(n, recs)
	return nil
}

// measure adds the expensive observables to rec.
func (p *phase) measure(n int, rec *Record) error {
	key := rng.New(uint64(p.cfg.Run.Seed), "hmc-measure").Derive(uint64(n)).Derive(uint64(p.replica))
	if p.pion != nil {
		// A random source point: translation invariance averages it away,
		// and the correlators of consecutive measurements decorrelate.
		st := key.Derive(0).Stream(0)
		src := make([]int, p.nd)
		for mu, l := range p.cfg.Lattice.Dims {
			src[mu] = int(st.Uint64() % uint64(l))
		}
		c, err := p.pion.Correlator(src)
		if err != nil {
			return err
		}
		rec.Pion = c
	}
	if len(p.kernels) > 0 {
		rec.Spectrum, rec.Condition = map[string]float64{}, map[string]float64{}
		for i, k := range p.kernels {
			ext, err := measure.Extremes(p.env.Domain, p.env.Layout, k.parity, p.op.PerSite(), k.a, key.Derive(uint64(1+i)), 1e-4, 5000)
			if err != nil {
				// A measurement must not end a long run: say so and go on.
				p.printf("  warning: trajectory %d: condition number of %s not recorded: %v\n", n, k.name, err)
				continue
			}
			rec.Spectrum[k.name+".min"], rec.Spectrum[k.name+".max"] = ext.Min, ext.Max
			rec.Condition[k.name] = ext.Condition()
			if k.main && len(p.pfs) > 1 {
				for _, pf := range p.pfs {
					rec.Condition[pf.Name()] = pf.Condition(ext.Min, ext.Max)
				}
			}
		}
	}
	return nil
}

// gather brings the records of every replica to world rank 0 (in replica
// order; nil elsewhere). Only the domain's rank 0 of each replica sends.
func (p *phase) gather(rec Record) ([]Record, error) {
	if p.replicas == 1 {
		return []Record{rec}, nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	// Records differ in length: agree on the longest, pad with spaces.
	size := []float64{float64(len(b))}
	p.env.World.Allreduce(mpi.Max, size)
	buf := make([]byte, int(size[0]))
	copy(buf, b)
	for i := len(b); i < len(buf); i++ {
		buf[i] = ' '
	}
	var all []byte
	rc := p.env.Replica
	if rc.Rank() == 0 {
		all = make([]byte, len(buf)*rc.Size())
	}
	rc.Gather(0, buf, all)
	if p.env.World.Rank() != 0 {
		return nil, nil
	}
	out := make([]Record, rc.Size())
	for r := range out {
		if err := json.Unmarshal(all[r*len(buf):(r+1)*len(buf)], &out[r]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *phase) progress(n int, recs []Record) {
	every := max(1, p.total/20)
	if p.env.World.Rank() != 0 || (n+1)%every != 0 && n != 0 {
		return
	}
	r := recs[0]
	stage := "measure"
	if r.Thermalizing {
		stage = "thermalize"
	}
	acc := "rejected"
	if r.Accepted {
		acc = "accepted"
	}
	p.printf("  hmc %6d/%d  %-10s  ΔH %+.4f %s  plaquette %.6f  %.3g s\n", n+1, p.total, stage, r.DeltaH, acc, r.Plaquette, r.Seconds)
}

// save writes the configuration after trajectory n to configs/.
func (p *phase) save(n int) error {
	dir := filepath.Join(p.env.Dir.Path(), "configs")
	var err error
	if p.env.World.Rank() == 0 {
		err = os.MkdirAll(dir, 0o755)
	}
	if err := mpi.RootError(p.env.World, err); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("hmc-r%d-%06d.pfg", p.replica, n))
	return gaugeio.Save(p.u, path, gaugeio.Meta{Beta: p.cfg.Action.Beta,
		Info: fmt.Sprintf("pfmpi hmc: %s trajectory %d replica %d", p.cfg.File(), n, p.replica)})
}

// checkpoint is the chain state: the number of the next trajectory and one
// gauge file per replica with its SHA-256. The RNG needs no state of its
// own: trajectory n draws from keys derived from (seed, n) alone.
type checkpoint struct {
	Phase    string   `json:"phase"`
	Next     int      `json:"next"`
	Replicas int      `json:"replicas"`
	Files    []string `json:"files"`
	SHA256   []string `json:"sha256"`
}

const checkpointName = "hmc.json"

func (p *phase) checkpoint(next int) error {
	dir := p.env.Dir.Checkpoints()
	name := fmt.Sprintf("hmc-r%d-t%07d.pfg", p.replica, next)
	err := gaugeio.Save(p.u, filepath.Join(dir, name), gaugeio.Meta{Beta: p.cfg.Action.Beta,
		Info: fmt.Sprintf("pfmpi hmc checkpoint: next trajectory %d, replica %d", next, p.replica)})
	// Every replica must have saved before rank 0 points the checkpoint at
	// the new files.
	failed := []float64{0}
	if err != nil {
		failed[0] = 1
	}
	p.env.World.Allreduce(mpi.Max, failed)
	if failed[0] != 0 {
		if err == nil {
			err = errors.New("hmc checkpoint: another replica failed to save its configuration")
		}
		return err
	}
	if p.env.World.Rank() == 0 {
		err = p.writeCheckpoint(next)
	}
	return mpi.RootError(p.env.World, err)
}

func (p *phase) writeCheckpoint(next int) error {
	dir := p.env.Dir.Checkpoints()
	if err := p.env.Dir.Sync(); err != nil { // the log must reach the checkpoint
		return err
	}
	ck := checkpoint{Phase: "hmc", Next: next, Replicas: p.replicas}
	for r := range p.replicas {
		name := fmt.Sprintf("hmc-r%d-t%07d.pfg", r, next)
		sum, err := atomicfile.SHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		ck.Files = append(ck.Files, name)
		ck.SHA256 = append(ck.SHA256, sum)
	}
	if err := rundir.WriteRecord(dir, checkpointName, ck); err != nil {
		return err
	}
	// The files of this checkpoint and of the one before it stay.
	keep := ck.Files
	var prev checkpoint
	if found, _ := atomicfile.ReadJSON(filepath.Join(dir, rundir.PreviousName(checkpointName)), &prev); found {
		keep = append(slices.Clone(keep), prev.Files...)
	}
	atomicfile.RemoveOthers(dir, "hmc-r*-t*.pfg", keep...)
	return nil
}

// restore sets the start configuration: the checkpoint of a resumed run, or
// hmc.start. It returns the number of the next trajectory.
func (p *phase) restore() (int, error) {
	var ck checkpoint
	var err error
	found := false
	if p.env.World.Rank() == 0 {
		var warning string
		ck, found, warning, err = readCheckpoint(p.env.Dir.Checkpoints())
		if warning != "" {
			p.printf("  warning      %s\n", warning)
		}
		if err == nil && found && ck.Replicas != p.replicas {
			err = fmt.Errorf("%s: the checkpoint holds %d replicas, the run has %d; resume with %d replicas (ranks / product(grid))",
				filepath.Join(p.env.Dir.Checkpoints(), checkpointName), ck.Replicas, p.replicas, ck.Replicas)
		}
	}
	if err := mpi.RootError(p.env.World, err); err != nil {
		return 0, err
	}
	b, _ := json.Marshal(ck)
	n := []float64{float64(len(b))}
	p.env.World.Bcast(0, mpi.Bytes(n))
	if p.env.World.Rank() != 0 {
		b = make([]byte, int(n[0]))
	}
	p.env.World.Bcast(0, b)
	if err := json.Unmarshal(b, &ck); err != nil {
		return 0, err
	}
	if ck.Phase == "hmc" && len(ck.Files) == p.replicas {
		path := filepath.Join(p.env.Dir.Checkpoints(), ck.Files[p.replica])
		if _, err := gaugeio.Load(p.u, path); err != nil {
			return 0, fmt.Errorf("resuming hmc: %w", err)
		}
		if err := p.env.Dir.Truncate("hmc", ck.Next); err != nil {
			return 0, err
		}
		return ck.Next, nil
	}
	// A fresh start (records of an earlier attempt that never reached a
	// checkpoint are dropped).
	if err := p.env.Dir.Truncate("hmc", 0); err != nil {
		return 0, err
	}
	switch s := p.h.Start; s {
	case "cold":
		p.u.SetCold()
	case "hot":
		p.u.SetHot(rng.New(uint64(p.cfg.Run.Seed), "hmc-start").Derive(uint64(p.replica)))
	default:
		path := s
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(p.cfg.File()), path)
		}
		if _, err := gaugeio.Load(p.u, path); err != nil {
			return 0, p.cfg.Errorf("hmc.start", "%v", err)
		}
	}
	return 0, nil
}

// readCheckpoint reads and verifies the checkpoint, or the one before it
// when the latest is damaged (warning says so); found is false if there is
// none.
func readCheckpoint(dir string) (ck checkpoint, found bool, warning string, err error) {
	return rundir.ReadRecord(dir, checkpointName, func(ck *checkpoint) error {
		path := filepath.Join(dir, checkpointName)
		if ck.Phase != "hmc" || len(ck.Files) != ck.Replicas || len(ck.SHA256) != ck.Replicas {
			return fmt.Errorf("%s is not a consistent hmc checkpoint", path)
		}
		for i, f := range ck.Files {
			if err := rundir.VerifyFile(dir, f, ck.SHA256[i], checkpointName); err != nil {
				return err
			}
		}
		return nil
	})
}
