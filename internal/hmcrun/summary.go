package hmcrun

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"

	"pfmpi/measure"
	"pfmpi/mpi"
)

// Summary is the hmc section of summary.json: means with Γ-method errors
// over the chains of every replica after thermalisation.
type Summary struct {
	Trajectories                int                          `json:"trajectories"` // per replica
	Thermalize                  int                          `json:"thermalize"`
	Replicas                    int                          `json:"replicas"`
	Plaquette                   *measure.Estimate            `json:"plaquette,omitempty"`
	Acceptance                  *measure.Estimate            `json:"acceptance,omitempty"`
	ExpMinusDeltaH              *measure.Estimate            `json:"exp_minus_delta_h,omitempty"` // ⟨e^{−ΔH}⟩ = 1 for an exact integrator
	AbsDeltaH                   *measure.Estimate            `json:"abs_delta_h,omitempty"`
	PolyakovLoop                *measure.Estimate            `json:"polyakov_loop,omitempty"`
	TopologicalCharge           *measure.Estimate            `json:"topological_charge,omitempty"` // 2D U(1)
	TopologicalSusceptibility   *measure.Estimate            `json:"topological_susceptibility,omitempty"`
	SecondsPerTrajectory        measure.Estimate             `json:"seconds_per_trajectory"`
	CGIterationsPerTrajectory   map[string]measure.Estimate  `json:"cg_iterations_per_trajectory,omitempty"` // per monomial
	Reversibility               *Reversibility               `json:"reversibility,omitempty"`
	ConditionNumberMeanByKernel *map[string]measure.Estimate `json:"condition_number_mean_by_kernel,omitempty"` // present when measured (empty: no estimate)
	ConditionNumberMean         *measure.Estimate            `json:"condition_number_mean,omitempty"`           // of the kernel of action.precondition
	PionCorrelator              []measure.Estimate           `json:"pion_correlator,omitempty"`                 // folded
	PionEffectiveMass           []*measure.Estimate          `json:"pion_effective_mass,omitempty"`             // null where the correlator is noise
	PionMass                    *measure.Estimate            `json:"pion_mass,omitempty"`                       // cosh fit over pion_fit_range
	PionFitRange                []int                        `json:"pion_fit_range,omitempty"`
	TauInt                      map[string]measure.Estimate  `json:"tau_int"`
}

// Reversibility is the result of the integrator's reversibility checks.
type Reversibility struct {
	Checks        int     `json:"checks"`
	MaxLinkChange float64 `json:"max_link_change"`
	MaxAbsDeltaH  float64 `json:"max_abs_delta_h"`
}

// summarize computes summary.json from the records in metrics.jsonl (so
// that a resumed run summarises the whole chain) and prints it.
func (p *phase) summarize() error {
	var values *Summary
	var err error
	if p.env.World.Rank() == 0 {
		values, err = p.summary()
	}
	if err := mpi.RootError(p.env.World, err); err != nil {
		return err
	}
	return p.env.Dir.Summarize("hmc", values)
}

func (p *phase) summary() (*Summary, error) {
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
	v := &Summary{Trajectories: len(byReplica[0]), Thermalize: p.h.Thermalize, Replicas: p.replicas,
		TauInt: map[string]measure.Estimate{}}
	s := &summaryBuilder{values: v, byReplica: byReplica}
	s.primary(&v.Plaquette, "plaquette", func(r Record) (float64, bool) { return r.Plaquette, true })
	s.primary(&v.Acceptance, "", func(r Record) (float64, bool) { return b2f(r.Accepted), true })
	s.primary(&v.ExpMinusDeltaH, "", func(r Record) (float64, bool) { return math.Exp(-r.DeltaH), true })
	s.primary(&v.AbsDeltaH, "", func(r Record) (float64, bool) { return math.Abs(r.DeltaH), true })
	s.primary(&v.PolyakovLoop, "polyakov_loop", func(r Record) (float64, bool) { return r.Polyakov[0], true })
	if p.topology {
		vol := 1.0
		for _, l := range p.cfg.Lattice.Dims {
			vol *= float64(l)
		}
		s.primary(&v.TopologicalCharge, "topological_charge", func(r Record) (float64, bool) {
			return deref(r.TopologicalCharge), r.TopologicalCharge != nil
		})
		if a, ok := s.gamma(func(r Record) (float64, bool) {
			q := deref(r.TopologicalCharge)
			return q * q, r.TopologicalCharge != nil
		}); ok {
			v.TopologicalSusceptibility = &measure.Estimate{Value: a.Mean.Value / vol, Error: a.Mean.Error / vol}
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
	v.SecondsPerTrajectory = naive(secs)
	if len(its) > 0 {
		m := map[string]measure.Estimate{}
		for k, x := range its {
			m[k] = naive(x)
		}
		v.CGIterationsPerTrajectory = m
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
		v.Reversibility = &Reversibility{Checks: checks, MaxLinkChange: dU, MaxAbsDeltaH: dH}
	}
	s.conditions(p)
	if err := s.pion(p); err != nil {
		return nil, err
	}
	p.report(v)
	return v, nil
}

type summaryBuilder struct {
	values    *Summary
	byReplica [][]Record
}

// gamma runs the Γ-method on one observable over the replicas.
func (s *summaryBuilder) gamma(get func(Record) (float64, bool)) (measure.Autocorrelation, bool) {
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

// primary stores the mean of an observable in *dst and, with a tau name,
// its τ_int.
func (s *summaryBuilder) primary(dst **measure.Estimate, tauName string, get func(Record) (float64, bool)) {
	a, ok := s.gamma(get)
	if !ok {
		return
	}
	*dst = &a.Mean
	if tauName != "" {
		s.values.TauInt[tauName] = a.TauInt
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
		a, ok := s.gamma(func(r Record) (float64, bool) {
			c, ok := r.Condition[k]
			return c, ok
		})
		if ok {
			byKernel[k] = a.Mean
		}
	}
	s.values.ConditionNumberMeanByKernel = &byKernel
	main := "DD†"
	if p.cfg.Action.Precondition == "eo" {
		main = "DscDsc†"
	}
	if e, ok := byKernel[main]; ok {
		s.values.ConditionNumberMean = &e
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
	s.values.PionCorrelator = corr
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
	s.values.PionEffectiveMass = sanitize(meff)
	fit, err := measure.Jackknife(series, bin, func(m []float64) (float64, error) {
		mass, _, err := measure.FitCosh(m, sigma, period, tmin, tmax)
		return mass, err
	})
	if err == nil {
		s.values.PionMass = &fit
		s.values.PionFitRange = []int{tmin, tmax}
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
func (p *phase) report(v *Summary) {
	p.printf("hmc summary (%v trajectories × %v replica(s) after %v thermalisation):\n", v.Trajectories, v.Replicas, v.Thermalize)
	for _, e := range []struct {
		name string
		e    *measure.Estimate
	}{{"plaquette", v.Plaquette}, {"acceptance", v.Acceptance}, {"exp_minus_delta_h", v.ExpMinusDeltaH}, {"abs_delta_h", v.AbsDeltaH},
		{"topological_susceptibility", v.TopologicalSusceptibility}, {"polyakov_loop", v.PolyakovLoop}, {"pion_mass", v.PionMass},
		{"condition_number_mean", v.ConditionNumberMean}, {"seconds_per_trajectory", &v.SecondsPerTrajectory}} {
		if e.e != nil {
			p.printf("  %-28s %s\n", e.name, *e.e)
		}
	}
	if m := v.ConditionNumberMeanByKernel; m != nil {
		for _, k := range slices.Sorted(maps.Keys(*m)) {
			p.printf("  condition number %-11s %s\n", k, (*m)[k])
		}
	}
	for _, k := range []string{"plaquette", "topological_charge", "polyakov_loop"} {
		if e, ok := v.TauInt[k]; ok {
			p.printf("  τ_int %-22s %s\n", k, e)
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
