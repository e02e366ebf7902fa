package hmcrun

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"

	"pfmpi/measure"
	"pfmpi/mpi"
)

// summarize computes summary.json from the records in metrics.jsonl (so
// that a resumed run summarises the whole chain) and prints it.
func (p *phase) summarize() error {
	var values map[string]any
	var err error
	if p.env.World.Rank() == 0 {
		values, err = p.summary()
	}
	if err := mpi.RootError(p.env.World, err); err != nil {
		return err
	}
	return p.env.Dir.Summarize("hmc", values)
}

func (p *phase) summary() (map[string]any, error) {
	raws, err := p.env.Dir.Records("hmc")
	if err != nil {
		return nil, err
	}
	byReplica := make([][]Record, p.replicas)
	for _, raw := range raws {
		var r Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		if r.Replica < 0 || r.Replica >= p.replicas {
			return nil, fmt.Errorf("metrics.jsonl: hmc record of replica %d in a run of %d replicas", r.Replica, p.replicas)
		}
		if !r.Thermalizing {
			byReplica[r.Replica] = append(byReplica[r.Replica], r)
		}
	}
	for _, rs := range byReplica {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Step < rs[j].Step })
	}
	s := &summaryBuilder{values: map[string]any{}, tau: map[string]measure.Estimate{}, byReplica: byReplica}
	v := s.values
	v["trajectories"] = len(byReplica[0])
	v["thermalize"] = p.h.Thermalize
	v["replicas"] = p.replicas
	s.primary("plaquette", "plaquette", func(r Record) (float64, bool) { return r.Plaquette, true })
	s.primary("acceptance", "", func(r Record) (float64, bool) { return b2f(r.Accepted), true })
	s.primary("exp_minus_delta_h", "", func(r Record) (float64, bool) { return math.Exp(-r.DeltaH), true })
	s.primary("abs_delta_h", "", func(r Record) (float64, bool) { return math.Abs(r.DeltaH), true })
	s.primary("polyakov_loop", "polyakov_loop", func(r Record) (float64, bool) { return r.Polyakov[0], true })
	if p.topology {
		vol := 1.0
		for _, l := range p.cfg.Lattice.Dims {
			vol *= float64(l)
		}
		s.primary("topological_charge", "topological_charge", func(r Record) (float64, bool) {
			return deref(r.TopologicalCharge), r.TopologicalCharge != nil
		})
		if a, ok := s.gamma("topological_charge_squared", func(r Record) (float64, bool) {
			q := deref(r.TopologicalCharge)
			return q * q, r.TopologicalCharge != nil
		}); ok {
			v["topological_susceptibility"] = measure.Estimate{Value: a.Mean.Value / vol, Error: a.Mean.Error / vol}
		}
	}
	// Cost: wall-clock seconds and CG iterations per trajectory.
	var secs []float64
	its := map[string][]float64{}
	for _, rs := range byReplica {
		for _, r := range rs {
			secs = append(secs, r.Seconds)
			for k, n := range r.CGIterations {
				its[k] = append(its[k], float64(n))
			}
		}
	}
	v["seconds_per_trajectory"] = naive(secs)
	if len(its) > 0 {
		m := map[string]measure.Estimate{}
		for k, x := range its {
			m[k] = naive(x)
		}
		v["cg_iterations_per_trajectory"] = m
	}
	// Reversibility checks.
	var dU, dH float64
	checks := 0
	for _, rs := range byReplica {
		for _, r := range rs {
			if r.ReverseLink != nil {
				checks++
				dU, dH = max(dU, *r.ReverseLink), max(dH, math.Abs(*r.ReverseH))
			}
		}
	}
	if checks > 0 {
		v["reversibility"] = map[string]any{"checks": checks, "max_link_change": dU, "max_abs_delta_h": dH}
	}
	s.conditions(p)
	if err := s.pion(p); err != nil {
		return nil, err
	}
	v["tau_int"] = s.tau
	p.report(v)
	return v, nil
}

type summaryBuilder struct {
	values    map[string]any
	tau       map[string]measure.Estimate
	byReplica [][]Record
}

// gamma runs the Γ-method on one observable over the replicas.
func (s *summaryBuilder) gamma(name string, get func(Record) (float64, bool)) (measure.Autocorrelation, bool) {
	var series [][]float64
	for _, rs := range s.byReplica {
		var x []float64
		for _, r := range rs {
			if v, ok := get(r); ok {
				x = append(x, v)
			}
		}
		if len(x) >= 2 {
			series = append(series, x)
		}
	}
	if len(series) == 0 {
		return measure.Autocorrelation{}, false
	}
	a, err := measure.Gamma(series...)
	if err != nil {
		return measure.Autocorrelation{}, false
	}
	return a, true
}

// primary stores the mean of an observable and, with a tau name, its τ_int.
func (s *summaryBuilder) primary(key, tauName string, get func(Record) (float64, bool)) {
	a, ok := s.gamma(key, get)
	if !ok {
		return
	}
	s.values[key] = a.Mean
	if tauName != "" {
		s.tau[tauName] = a.TauInt
	}
}

// conditions summarises the condition numbers of the measured records.
func (s *summaryBuilder) conditions(p *phase) {
	names := map[string]bool{}
	for _, rs := range s.byReplica {
		for _, r := range rs {
			for k := range r.Condition {
				names[k] = true
			}
		}
	}
	if len(names) == 0 {
		return
	}
	byKernel := map[string]measure.Estimate{}
	for k := range names {
		a, ok := s.gamma("condition "+k, func(r Record) (float64, bool) {
			c, ok := r.Condition[k]
			return c, ok
		})
		if ok {
			byKernel[k] = a.Mean
		}
	}
	s.values["condition_number_mean_by_kernel"] = byKernel
	main := "DD†"
	if p.cfg.Action.Precondition == "eo" {
		main = "DscDsc†"
	}
	if e, ok := byKernel[main]; ok {
		s.values["condition_number_mean"] = e
	}
}

// pion folds the correlators, estimates them, the effective mass and the
// cosh-fit mass with binned jackknife errors.
func (s *summaryBuilder) pion(p *phase) error {
	var series [][]float64 // [t][measurement]
	var flat [][]float64   // per measurement, folded
	for _, rs := range s.byReplica {
		for _, r := range rs {
			if len(r.Pion) > 0 {
				flat = append(flat, measure.Fold(r.Pion))
			}
		}
	}
	if len(flat) < 4 {
		return nil
	}
	nt := len(flat[0])
	series = make([][]float64, nt)
	for t := range series {
		for _, c := range flat {
			series[t] = append(series[t], c[t])
		}
	}
	period := p.cfg.Lattice.Dims[0]
	tmin, tmax := max(1, period/4), period/2
	if f := p.h.PionFit; len(f) == 2 {
		tmin, tmax = f[0], f[1]
	}
	// Bins of about 2τ_int of the correlator in the fit range.
	bin := 1
	if a, err := measure.Gamma(series[tmin]); err == nil {
		bin = max(1, int(math.Ceil(2*a.TauInt.Value)))
	}
	if len(flat)/bin < 4 {
		bin = max(1, len(flat)/4)
	}
	corr := make([]measure.Estimate, nt)
	sigma := make([]float64, nt)
	for t := range corr {
		e, err := measure.Jackknife([][]float64{series[t]}, bin, func(m []float64) (float64, error) { return m[0], nil })
		if err != nil {
			return err
		}
		corr[t], sigma[t] = e, e.Error
	}
	s.values["pion_correlator"] = corr
	meff := make([]measure.Estimate, nt-1)
	for t := range meff {
		e, err := measure.Jackknife([][]float64{series[t], series[t+1]}, bin, func(m []float64) (float64, error) {
			return measure.EffectiveMass(m, period)[0], nil
		})
		if err != nil {
			return err
		}
		meff[t] = e
	}
	s.values["pion_effective_mass"] = sanitize(meff)
	fit, err := measure.Jackknife(series, bin, func(m []float64) (float64, error) {
		mass, _, err := measure.FitCosh(m, sigma, period, tmin, tmax)
		return mass, err
	})
	if err == nil {
		s.values["pion_mass"] = fit
		s.values["pion_fit_range"] = []int{tmin, tmax}
	}
	return nil
}

// sanitize turns estimates with NaN (no effective mass where the
// correlator is noise) into JSON nulls.
func sanitize(es []measure.Estimate) []*measure.Estimate {
	out := make([]*measure.Estimate, len(es))
	for i := range es {
		if !math.IsNaN(es[i].Value) && !math.IsNaN(es[i].Error) {
			out[i] = &es[i]
		}
	}
	return out
}

// report prints the main results.
func (p *phase) report(v map[string]any) {
	p.printf("hmc summary (%v trajectories × %v replica(s) after %v thermalisation):\n", v["trajectories"], v["replicas"], v["thermalize"])
	keys := []string{"plaquette", "acceptance", "exp_minus_delta_h", "abs_delta_h", "topological_susceptibility",
		"polyakov_loop", "pion_mass", "condition_number_mean", "seconds_per_trajectory"}
	for _, k := range keys {
		if e, ok := v[k].(measure.Estimate); ok {
			p.printf("  %-28s %s\n", k, e)
		}
	}
	if m, ok := v["condition_number_mean_by_kernel"].(map[string]measure.Estimate); ok {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			p.printf("  condition number %-11s %s\n", k, m[k])
		}
	}
	if t, ok := v["tau_int"].(map[string]measure.Estimate); ok {
		for _, k := range []string{"plaquette", "topological_charge", "polyakov_loop"} {
			if e, ok := t[k]; ok {
				p.printf("  τ_int %-22s %s\n", k, e)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func deref(x *float64) float64 {
	if x == nil {
		return 0
	}
	return *x
}

// naive is the mean with the error of independent data.
func naive(x []float64) measure.Estimate {
	if len(x) == 0 {
		return measure.Estimate{}
	}
	var s, s2 float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	for _, v := range x {
		s2 += (v - m) * (v - m)
	}
	e := 0.0
	if len(x) > 1 {
		e = math.Sqrt(s2 / float64(len(x)-1) / float64(len(x)))
	}
	return measure.Estimate{Value: m, Error: e}
}
