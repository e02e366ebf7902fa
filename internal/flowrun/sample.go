package flowrun

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"pfmpi/action"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/flow"
	"pfmpi/gaugeio"
	"pfmpi/group"
	"pfmpi/internal/driver"
	"pfmpi/internal/rundir"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/rng"
	"pfmpi/solver"
)

// SampleRecord is one line of metrics.jsonl in the sample phase: one batch
// of proposals.
type SampleRecord struct {
	Phase    string  `json:"phase"` // "sample"
	Step     int     `json:"step"`  // batch number
	ESS      float64 `json:"ess"`   // of this batch
	Accepted int     `json:"accepted"`
	Seconds  float64 `json:"seconds"`
}

// Sample runs the [sample] phase: it draws sample.n proposals from the
// trained flow, measures the ESS, runs the independence Metropolis chain and
// reweights, and writes the estimates to summary.json.
func Sample(env driver.Env) error {
	m, err := newModel(env)
	if err != nil {
		return err
	}
	defer m.close()
	step, found, err := m.load(false)
	if err != nil {
		return err
	}
	if !found {
		return m.cfg.Errorf("sample", "no trained model in %s (checkpoints/%s); add a [train] section or set run.output to a trained run", env.Dir.Path(), checkpointName)
	}
	s := m.cfg.Sample
	batch := m.sampleBatch(s.N)
	m.printf("phase sample: %d proposals from the model trained for %d steps, batches of %d\n", s.N, step, batch)
	if err := env.Dir.Truncate("sample", 0); err != nil {
		return err
	}
	began := time.Now()
	draws := 1
	if m.pf != nil {
		for _, n := range s.NPF {
			draws = max(draws, n)
		}
		m.printf("  joint model: %d pseudofermion draws per monomial and gauge field for ESS(Npf), Npf ∈ %v\n", draws, s.NPF)
		m.printf("  target       %s\n", m.targetString(false))
	}
	smp, err := m.loadSamples(s.N, draws)
	if err != nil {
		return err
	}
	done := 0
	if smp != nil {
		done = len(smp.LogW)
		m.printf("  resumed      with %d proposals from %s\n", done, env.Dir.Checkpoints())
	}
	// Proposals are drawn in chunks of whole batches between checkpoints.
	chunk := s.N
	if s.CheckpointEvery > 0 {
		chunk = (s.CheckpointEvery + batch - 1) / batch * batch
	}
	resumedAt := done
	every := max(1, s.N/batch/20)
	calls := 0
	// The steps of the loop are chunks, each saved as it ends.
	first := done / chunk
	sampleChunk := func(int) error {
		end := min(done+chunk, s.N)
		m.trainer.Progress = func(d, total int) {
			calls++
			if calls%every == 0 || done+d == s.N {
				el := time.Since(began).Seconds()
				rate := el / float64(done+d-resumedAt)
				eta := time.Duration(rate * float64(s.N-done-d) * float64(time.Second)).Round(time.Second)
				m.printf("  sample %6d/%d  %.3g s/proposal  ETA %v\n", done+d, s.N, rate, eta)
			}
		}
		part, err := m.trainer.SampleRange(done, end, batch, draws, "flow-sample")
		m.trainer.Progress = nil
		if err != nil {
			return err
		}
		if smp == nil {
			smp = part
		} else if err := smp.Append(part); err != nil {
			return err
		}
		done = end
		return m.saveSamples(part)
	}
	saved := func(int) error { return nil }
	if err := env.Dir.Steps("sample", first, first+(s.N-done+chunk-1)/chunk, 1, sampleChunk, saved); err != nil {
		if stop, ok := rundir.IsStopped(err); ok {
			stop.Done, stop.Total = done, s.N // in proposals, not chunks
		}
		return err
	}
	elapsed := time.Since(began).Seconds()
	var chain []int
	accepted := 0
	if s.Metropolis {
		chain, accepted = flow.Metropolis(smp.LogW, rng.New(uint64(m.cfg.Run.Seed), "flow-metropolis"))
	}
	// One metrics line per batch.
	for k, start := 0, 0; start < s.N; k, start = k+1, start+batch {
		end := min(start+batch, s.N)
		acc := 0
		for i := max(start, 1); i < end && chain != nil; i++ {
			if chain[i] == i {
				acc++
			}
		}
		rec := SampleRecord{Phase: "sample", Step: k, ESS: flow.ESS(smp.LogW[start:end]), Accepted: acc,
			Seconds: elapsed * float64(end-start) / float64(s.N)}
		if err := env.Dir.Log(rec); err != nil {
			return err
		}
	}
	if s.SaveEvery > 0 && chain != nil {
		if err := m.saveChain(chain, s.SaveEvery); err != nil {
			return err
		}
	}
	var cond map[string]measure.Estimate
	if m.pf != nil {
		if cond, err = m.conditionNumbers(min(s.N, conditionSamples)); err != nil {
			return err
		}
	}
	var values *SampleSummary
	if env.World.Rank() == 0 {
		values, err = m.sampleValues(smp, chain, accepted, elapsed)
		if values != nil && cond != nil {
			values.ConditionNumberMean = cond
			for _, k := range slices.Sorted(maps.Keys(cond)) {
				m.printf("  condition number %-11s %s (mean over %d flow samples)\n", k, cond[k], min(s.N, conditionSamples))
			}
		}
	}
	if err := mpi.RootError(env.World, err); err != nil {
		return err
	}
	return env.Dir.Summarize("sample", values)
}

// saveChain writes the chain's state after every every-th proposal to
// configs/, regenerating it from its key (replica 0 does it).
func (m *model) saveChain(chain []int, every int) error {
	dir := filepath.Join(m.env.Dir.Path(), "configs")
	var err error
	if m.env.World.Rank() == 0 {
		err = os.MkdirAll(dir, 0o755)
	}
	if err := mpi.RootError(m.env.World, err); err != nil {
		return err
	}
	if m.env.World.Rank() >= m.env.Domain.Size() {
		return nil // not replica 0
	}
	key := rng.New(uint64(m.cfg.Run.Seed), "flow-sample")
	t := m.tape
	for i := every - 1; i < len(chain); i += every {
		t.Reset()
		t.NoGrad = true
		z := m.flow.Prior(1, chain[i], key)
		theta, _, err := m.flow.Forward(t, z)
		t.NoGrad = false
		if err != nil {
			return err
		}
		m.target.Load(theta, 0)
		path := filepath.Join(dir, fmt.Sprintf("flow-%07d.pfg", i))
		if err := gaugeio.Save(m.target.Field(), path, gaugeio.Meta{Beta: m.cfg.Action.Beta,
			Info: fmt.Sprintf("pfmpi flow sample: %s, proposal %d, chain position %d", m.cfg.File(), chain[i], i)}); err != nil {
			return err
		}
	}
	return nil
}

// SampleSummary is the sample section of summary.json: the ESS of the
// proposals (Eqs. 42–44), the independence Metropolis chain and the
// observables along it (Γ-method errors), and the reweighted plaquette.
type SampleSummary struct {
	Proposals           int                         `json:"proposals"`
	Seconds             float64                     `json:"seconds"`
	ESS                 *measure.Estimate           `json:"ess,omitempty"`          // marginal flows
	ESSJoint            *measure.Estimate           `json:"ess_joint,omitempty"`    // joint models
	ESSMarginal         *measure.Estimate           `json:"ess_marginal,omitempty"` // with the exact determinant
	ESSNpf              []NpfRow                    `json:"ess_npf,omitempty"`      // joint models: per Npf of sample.npf
	ESSNpfFit           *NpfFit                     `json:"ess_npf_fit,omitempty"`  // Eq. 45
	Acceptance          *measure.Estimate           `json:"acceptance,omitempty"`   // of the Metropolis chain
	Plaquette           *measure.Estimate           `json:"plaquette,omitempty"`    // along the chain
	PlaquetteReweighted *measure.Estimate           `json:"plaquette_reweighted,omitempty"`
	PlaquetteExact      *float64                    `json:"plaquette_exact,omitempty"` // pure gauge, 2D
	TopologicalSuscept  *measure.Estimate           `json:"topological_susceptibility,omitempty"`
	TauInt              map[string]measure.Estimate `json:"tau_int,omitempty"`
	ConditionNumberMean map[string]measure.Estimate `json:"condition_number_mean,omitempty"`
}

// NpfRow is ESS(Npf) (Eq. 44) with the pseudo-marginal chain of Npf draws.
type NpfRow struct {
	Npf             int               `json:"npf"`
	ESS             measure.Estimate  `json:"ess"`
	Acceptance      *measure.Estimate `json:"acceptance,omitempty"`
	Plaquette       *measure.Estimate `json:"plaquette,omitempty"`
	TauIntPlaquette *measure.Estimate `json:"tau_int_plaquette,omitempty"`
}

// NpfFit is the fit ESS(Npf) = ESS(∞)/(1 + C/Npf) (Eq. 45).
type NpfFit struct {
	ESSInf measure.Estimate `json:"ess_inf"`
	C      measure.Estimate `json:"c"`
}

// sampleValues computes the summary of the sample phase (rank 0).
func (m *model) sampleValues(smp *flow.Samples, chain []int, accepted int, elapsed float64) (*SampleSummary, error) {
	n := len(smp.LogW)
	v := &SampleSummary{Proposals: n, Seconds: elapsed}
	bin := max(1, n/100)
	ess, w, err := essEstimate(smp.LogW, bin)
	if err != nil {
		return nil, err
	}
	switch {
	case m.pf != nil:
		v.ESSJoint = &ess
		if smp.LogWMarginal != nil {
			if em, _, err := essEstimate(smp.LogWMarginal, bin); err == nil {
				v.ESSMarginal = &em
			}
		}
		if err := m.npfValues(v, smp, bin); err != nil {
			return nil, err
		}
	case m.cfg.Action.Kappa > 0:
		v.ESS = &ess
		v.ESSMarginal = &ess // the flow models the gauge marginal with the exact determinant
	default:
		v.ESS = &ess
	}
	// Reweighted plaquette: Σ w P / Σ w.
	wp := make([]float64, n)
	for i := range w {
		wp[i] = w[i] * smp.Plaquette[i]
	}
	if rw, err := measure.Jackknife([][]float64{wp, w}, bin, func(mm []float64) (float64, error) { return mm[0] / mm[1], nil }); err == nil {
		v.PlaquetteReweighted = &rw
	}
	vol := float64(m.env.Layout.Lattice().GlobalVolume())
	tau := map[string]measure.Estimate{}
	if chain != nil {
		acc := float64(accepted) / float64(n-1)
		v.Acceptance = &measure.Estimate{Value: acc, Error: math.Sqrt(acc * (1 - acc) / float64(n-1))}
		p, q2, q := make([]float64, n), make([]float64, n), make([]float64, n)
		for i, k := range chain {
			p[i] = smp.Plaquette[k]
			q[i] = smp.Charge[k]
			q2[i] = q[i] * q[i]
		}
		if a, err := measure.Gamma(p); err == nil {
			v.Plaquette = &a.Mean
			tau["plaquette"] = a.TauInt
		}
		if m.cfg.Lattice.GaugeGroup().Abelian() { // 2D SU(N) has no topology
			if a, err := measure.Gamma(q2); err == nil {
				v.TopologicalSuscept = &measure.Estimate{Value: a.Mean.Value / vol, Error: a.Mean.Error / vol}
				tau["topological_charge_squared"] = a.TauInt
			}
			if a, err := measure.Gamma(q); err == nil {
				tau["topological_charge"] = a.TauInt
			}
		}
		v.TauInt = tau
	}
	if m.cfg.Action.Kappa == 0 {
		exact, err := measure.U1Plaquette(m.cfg.Action.Beta, int(vol))
		if m.cfg.Lattice.GaugeGroup() == group.SU3 {
			exact, err = measure.SU3Plaquette(m.cfg.Action.Beta, int(vol))
		}
		if err == nil {
			v.PlaquetteExact = &exact
		}
	}
	m.printf("sample summary (%d proposals, %.3g s):\n", n, elapsed)
	for _, e := range []struct {
		name string
		e    *measure.Estimate
	}{{"ess", v.ESS}, {"ess_joint", v.ESSJoint}, {"ess_marginal", v.ESSMarginal}, {"acceptance", v.Acceptance},
		{"plaquette", v.Plaquette}, {"plaquette_reweighted", v.PlaquetteReweighted}, {"topological_susceptibility", v.TopologicalSuscept}} {
		if e.e != nil {
			m.printf("  %-28s %s\n", e.name, *e.e)
		}
	}
	if e := v.PlaquetteExact; e != nil {
		m.printf("  %-28s %.6f\n", "plaquette_exact", *e)
	}
	if t, ok := tau["plaquette"]; ok {
		m.printf("  %-28s %s\n", "τ_int plaquette", t)
	}
	for _, r := range v.ESSNpf {
		m.printf("  ESS(Npf = %-3d)               %s   acceptance %s", r.Npf, r.ESS, show(r.Acceptance))
		if r.Plaquette != nil {
			m.printf("   plaquette %s (τ_int %s)", *r.Plaquette, show(r.TauIntPlaquette))
		}
		m.printf("\n")
	}
	if f := v.ESSNpfFit; f != nil {
		m.printf("  %-28s ESS(∞) = %s, C = %s\n", "fit ESS(∞)/(1 + C/Npf)", f.ESSInf, f.C)
	}
	return v, nil
}

// essEstimate returns the ESS of the log weights with a jackknife error
// (ESS = ⟨w⟩²/⟨w²⟩, w = exp(log w − max)) and the weights w.
func essEstimate(logw []float64, bin int) (measure.Estimate, []float64, error) {
	top := math.Inf(-1)
	for _, x := range logw {
		top = max(top, x)
	}
	w, w2 := make([]float64, len(logw)), make([]float64, len(logw))
	for i, x := range logw {
		w[i] = math.Exp(x - top)
		w2[i] = w[i] * w[i]
	}
	e, err := measure.Jackknife([][]float64{w, w2}, bin, func(mm []float64) (float64, error) { return mm[0] * mm[0] / mm[1], nil })
	return e, w, err
}

// npfValues adds ESS(Npf) (Eq. 44), the acceptance of the pseudo-marginal
// independence Metropolis chain with Npf draws and the plaquette along it
// (Γ-method), the fit of Eq. 45 and the
// plot plots/ess_npf.png (Fig. 3 style).
func (m *model) npfValues(v *SampleSummary, smp *flow.Samples, bin int) error {
	var rows []NpfRow
	var xs, ys, es []float64
	for _, npf := range m.cfg.Sample.NPF {
		lw := smp.LogWNpf(npf)
		e, _, err := essEstimate(lw, bin)
		if err != nil {
			return err
		}
		row := NpfRow{Npf: npf, ESS: e}
		if m.cfg.Sample.Metropolis {
			chain, acc := flow.Metropolis(lw, rng.New(uint64(m.cfg.Run.Seed), fmt.Sprintf("flow-metropolis-npf-%d", npf)))
			a := float64(acc) / float64(len(lw)-1)
			row.Acceptance = &measure.Estimate{Value: a, Error: math.Sqrt(a * (1 - a) / float64(len(lw)-1))}
			// The plaquette along the pseudo-marginal chain (exact for any Npf).
			p := make([]float64, len(chain))
			for i, k := range chain {
				p[i] = smp.Plaquette[k]
			}
			if g, err := measure.Gamma(p); err == nil {
				row.Plaquette, row.TauIntPlaquette = &g.Mean, &g.TauInt
			}
		}
		rows = append(rows, row)
		xs, ys, es = append(xs, 1/float64(npf)), append(ys, e.Value), append(es, e.Error)
	}
	v.ESSNpf = rows
	var fit *essFit
	if len(xs) >= 2 {
		if f, err := fitNpf(xs, ys, es); err == nil {
			fit = &f
			v.ESSNpfFit = &NpfFit{ESSInf: f.essInf, C: f.c}
		}
	}
	return plotNpf(m.env.Dir, xs, ys, es, fit, v.ESSMarginal)
}

// essFit is ESS(Npf) = ESS(∞)/(1 + C/Npf) (Eq. 45).
type essFit struct{ essInf, c measure.Estimate }

// fitNpf fits Eq. 45 as a straight line 1/ESS = a + b/Npf (a = 1/ESS(∞),
// b = C/ESS(∞)) by weighted least squares, errors propagated from the
// fit's covariance.
func fitNpf(x, ess, sigma []float64) (essFit, error) {
	var sw, sx, sy, sxx, sxy float64
	for i := range x {
		if ess[i] <= 0 {
			return essFit{}, fmt.Errorf("non-positive ESS")
		}
		y := 1 / ess[i]
		sy2 := sigma[i] / (ess[i] * ess[i])
		w := 1 / math.Max(sy2*sy2, 1e-300)
		sw += w
		sx += w * x[i]
		sy += w * y
		sxx += w * x[i] * x[i]
		sxy += w * x[i] * y
	}
	d := sw*sxx - sx*sx
	if d <= 0 {
		return essFit{}, fmt.Errorf("degenerate fit")
	}
	a := (sxx*sy - sx*sxy) / d
	b := (sw*sxy - sx*sy) / d
	va, vb, cab := sxx/d, sw/d, -sx/d
	if a <= 0 {
		return essFit{}, fmt.Errorf("ESS(∞) not positive")
	}
	// ESS(∞) = 1/a; C = b/a.
	eInf := measure.Estimate{Value: 1 / a, Error: math.Sqrt(va) / (a * a)}
	c := b / a
	dca, dcb := -b/(a*a), 1/a
	vc := dca*dca*va + dcb*dcb*vb + 2*dca*dcb*cab
	return essFit{essInf: eInf, c: measure.Estimate{Value: c, Error: math.Sqrt(math.Max(vc, 0))}}, nil
}

// conditionSamples is the number of flow proposals whose kernels' condition
// numbers are measured.
const conditionSamples = 256

// conditionNumbers returns the mean condition number (with its error) of M
// (DD† or DscDsc†) and of every pseudofermion kernel over the first n
// proposals of the sample, regenerated from their keys (collective).
func (m *model) conditionNumbers(n int) (map[string]measure.Estimate, error) {
	p0 := m.pfs[0]
	name := "DD†"
	var a solver.Linear
	par := decomp.All
	if p0.EvenOdd() {
		name, par = "DscDsc†", decomp.Even
		s := dslash.NewSchur(m.op)
		a = dslash.NewNormal(s, 0, s.Len())
	} else {
		a = dslash.NewNormal(m.op, 0, m.env.Layout.Volume()*m.op.PerSite())
	}
	values := map[string][]float64{}
	key := rng.New(uint64(m.cfg.Run.Seed), "flow-sample")
	lanczos := rng.New(uint64(m.cfg.Run.Seed), "flow-condition")
	t := m.tape
	defer func() { t.NoGrad = false }()
	const batch = 32
	// Replica j takes the proposals [j·n/r, (j+1)·n/r).
	r := m.env.World.Size() / m.env.Domain.Size()
	replica := m.env.World.Rank() / m.env.Domain.Size()
	lo, hi := replica*n/r, (replica+1)*n/r
	for first := lo; first < hi; first += batch {
		b := min(batch, hi-first)
		t.Reset()
		t.NoGrad = true
		theta, _, err := m.flow.Forward(t, m.flow.Prior(b, first, key))
		if err != nil {
			return nil, err
		}
		for k := 0; k < b; k++ {
			m.target.Load(theta, k)
			ext, err := measure.Extremes(m.env.Domain, m.env.Layout, par, m.op.PerSite(), a, lanczos.Derive(uint64(first+k)), 1e-4, 5000)
			if err != nil {
				return nil, err
			}
			values[name] = append(values[name], ext.Condition())
			for _, p := range m.pfs {
				values[p.Name()] = append(values[p.Name()], p.Condition(ext.Min, ext.Max))
			}
		}
	}
	out := map[string]measure.Estimate{}
	for _, k := range append([]string{name}, pfNames(m.pfs)...) {
		sum, sum2, cnt := 0.0, 0.0, 0.0
		if m.env.Domain.Rank() == 0 {
			for _, c := range values[k] {
				sum += c
				sum2 += c * c
				cnt++
			}
		}
		tot := []float64{sum, sum2, cnt}
		m.env.World.Allreduce(mpi.Sum, tot)
		if tot[2] < 2 {
			continue
		}
		mean := tot[0] / tot[2]
		v := (tot[1]/tot[2] - mean*mean) / (tot[2] - 1)
		out[k] = measure.Estimate{Value: mean, Error: math.Sqrt(math.Max(v, 0))}
	}
	return out, nil
}

func pfNames(pfs []*action.Pseudofermion) []string {
	var out []string
	if len(pfs) < 2 {
		return nil // one monomial: its kernel is M itself
	}
	for _, p := range pfs {
		out = append(out, p.Name())
	}
	return out
}

// show prints an optional estimate ("—" when absent).
func show(e *measure.Estimate) string {
	if e == nil {
		return "—"
	}
	return e.String()
}
