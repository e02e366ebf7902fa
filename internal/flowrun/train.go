package flowrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"pfmpi/flow"
	"pfmpi/internal/driver"
	"pfmpi/measure"
	"pfmpi/mpi"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// TrainRecord is one line of metrics.jsonl in the train phase.
type TrainRecord struct {
	Phase    string   `json:"phase"` // "train"
	Step     int      `json:"step"`  // from 0
	Loss     float64  `json:"loss"`  // (1/B) Σ [log q + S]
	KL       *float64 `json:"kl,omitempty"`
	LR       float64  `json:"lr"`
	GradNorm float64  `json:"grad_norm"`
	// MarginalLoss is the gauge flow's loss with train.gauge_loss = "marginal".
	MarginalLoss float64  `json:"marginal_loss,omitempty"`
	Seconds      float64  `json:"seconds"`
	ESS          *float64 `json:"ess,omitempty"` // on ess_batch fresh samples (gauge-only models)
	// The joint model's ESS (Eq. 15 with the weights of Eq. 40) and the
	// marginal ESS of its gauge part with the exact determinant (small
	// lattices only), on ess_batch fresh samples.
	ESSJoint    *float64 `json:"ess_joint,omitempty"`
	ESSMarginal *float64 `json:"ess_marginal,omitempty"`
	// KLMinusLogZ is the joint loss plus the pseudofermion normalisation
	// N_tot·log π: KL(q‖p) − log Z of the marginal theory, comparable
	// between preconditionings and Hasenbusch splittings of one theory
	// (their joint log Z differ by N_tot·log π only).
	KLMinusLogZ *float64 `json:"kl_minus_logz,omitempty"`
}

// Train runs the [train] phase.
func Train(env driver.Env) error {
	m, err := newModel(env)
	if err != nil {
		return err
	}
	defer m.close()
	t := m.cfg.Train
	start, found, err := m.load(true)
	if err != nil {
		return err
	}
	if err := env.Dir.Truncate("train", start); err != nil {
		return err
	}
	schedule := fmt.Sprintf("×%g every %d", t.LRDecayFactor, t.LRDecayEvery)
	if t.LRSchedule == "cosine" {
		schedule = fmt.Sprintf("cosine to %g", t.LRMin)
	}
	m.printf("phase train: %d steps, batch %d, %s lr %g (%s), ε %g; %s\n",
		t.Steps, t.Batch, t.Optimizer, t.LR, schedule, t.Eps, m.describe())
	if m.pf != nil {
		m.printf("  target       %s\n", m.targetString(true))
	}
	switch {
	case m.gaugeOpt != nil:
		m.printf("  gauge flow   on the exact marginal, %d steps of its own Adam per step\n", m.gaugeSteps())
	case m.gauge != nil:
		m.printf("  gauge flow   on the exact marginal\n")
	}
	if found {
		m.printf("  resumed      at step %d from %s\n", start, env.Dir.Checkpoints())
	} else if t.InitFrom != "" {
		from, err := m.initFrom()
		if err != nil {
			return err
		}
		m.printf("  initialised  from %s (its step %d)\n", t.InitFrom, from)
	}
	essBatch := m.sampleBatch(t.ESSBatch)
	began := time.Now()
	var last TrainRecord
	var klWindow []float64 // the last klWarnSteps exact KL estimates
	warned := false
	step := func(n int) error {
		t0 := time.Now()
		res, err := m.trainer.Step(n)
		if err != nil {
			return fmt.Errorf("train step %d: %w", n, err)
		}
		rec := TrainRecord{Phase: "train", Step: n, Loss: res.Loss, LR: res.LR, GradNorm: res.GradNorm, MarginalLoss: res.MarginalLoss}
		if m.hasLogZ {
			kl := res.Loss - m.flow.LogPrior() + m.logZ
			rec.KL = &kl
			if klWindow = append(klWindow, kl); len(klWindow) > klWarnSteps {
				klWindow = klWindow[1:]
			}
			if mean := meanOf(klWindow); !warned && len(klWindow) == klWarnSteps && mean < klWarnBelow {
				warned = true
				m.printf("warning: step %d: the mean KL of the last %d steps is %.3g < 0, which no normalised flow density gives: a layer's log-Jacobian does not match the map it computes on these configurations (ESS and reweighting are not to be trusted)\n",
					n, klWarnSteps, mean)
			}
		}
		if m.pf != nil {
			k := res.Loss + float64(int64(m.pf.Monomials())*m.pf.Dof())*math.Log(math.Pi)
			rec.KLMinusLogZ = &k
		}
		if t.ESSEvery > 0 && ((n+1)%t.ESSEvery == 0 || n+1 == t.Steps) {
			smp, err := m.trainer.Sample(t.ESSBatch, essBatch, fmt.Sprintf("flow-ess-%d", n))
			if err != nil {
				return err
			}
			e := flow.ESS(smp.LogW)
			if m.pf == nil {
				rec.ESS = &e
			} else {
				rec.ESSJoint = &e
				if smp.LogWMarginal != nil {
					em := flow.ESS(smp.LogWMarginal)
					rec.ESSMarginal = &em
				}
			}
		}
		rec.Seconds = time.Since(t0).Seconds()
		if err := env.Dir.Log(rec); err != nil {
			return err
		}
		m.progress(n, start, t.Steps, rec, began)
		last = rec
		return nil
	}
	if err := env.Dir.Steps("train", start, t.Steps, max(t.CheckpointEvery, 1), step, m.save); err != nil {
		return err
	}
	return m.trainSummary(last)
}

// klWarnSteps and klWarnBelow: a mean of the exact KL estimate over this
// many steps below this value is reported as an inconsistent flow density
// (E_q[log q − log p] ≥ 0; the margin covers the noise of the estimate).
const (
	klWarnSteps = 100
	klWarnBelow = -0.1
)

func meanOf(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// sampleBatch is the number of samples drawn at once: the [sample] batch
// (or 256), at most n, a multiple of the replicas.
func (m *model) sampleBatch(n int) int {
	b := 256
	if s := m.cfg.Sample; s != nil {
		b = s.Batch
	}
	b = min(b, n)
	r := m.env.World.Size() / m.env.Domain.Size()
	return max(r, b/r*r)
}

func (m *model) progress(n, start, steps int, rec TrainRecord, began time.Time) {
	every := max(1, steps/50)
	if rec.ESS == nil && rec.ESSJoint == nil && (n+1)%every != 0 && n != start {
		return
	}
	done := n + 1 - start
	rate := time.Since(began).Seconds() / float64(done)
	eta := time.Duration(rate * float64(steps-n-1) * float64(time.Second)).Round(time.Second)
	line := fmt.Sprintf("  train %6d/%d  loss %+.5g", n+1, steps, rec.Loss)
	if rec.KL != nil {
		line += fmt.Sprintf("  KL %.4g", *rec.KL)
	}
	if rec.ESS != nil {
		line += fmt.Sprintf("  ESS %.4f", *rec.ESS)
	}
	if rec.ESSJoint != nil {
		line += fmt.Sprintf("  ESS joint %.4f", *rec.ESSJoint)
	}
	if rec.ESSMarginal != nil {
		line += fmt.Sprintf("  marginal %.4f", *rec.ESSMarginal)
	}
	if rec.KLMinusLogZ != nil {
		line += fmt.Sprintf("  KL−logZ %.5g", *rec.KLMinusLogZ)
	}
	line += fmt.Sprintf("  lr %.2g  %.3g s/step  ETA %v\n", rec.LR, rate, eta)
	m.printf("%s", line)
}

// TrainSummary is the train section of summary.json.
type TrainSummary struct {
	Steps            int               `json:"steps"`
	Parameters       int               `json:"parameters"`
	ParametersGauge  int               `json:"parameters_gauge"`
	Seconds          *float64          `json:"seconds,omitempty"`          // of all steps (this and earlier runs)
	SecondsPerStep   *float64          `json:"seconds_per_step,omitempty"` // their mean
	LossFinal        *float64          `json:"loss_final,omitempty"`
	KLFinal          *float64          `json:"kl_final,omitempty"`            // pure gauge: KL with the exact log Z
	KLMinusLogZFinal *measure.Estimate `json:"kl_minus_logz_final,omitempty"` // joint models: over the last tenth of the steps
	ESSFinal         *float64          `json:"ess_final,omitempty"`           // marginal flows: the last training-time ESS
	ESSJointFinal    *float64          `json:"ess_joint_final,omitempty"`     // joint models
	ESSMarginalFinal *float64          `json:"ess_marginal_final,omitempty"`
}

// trainSummary writes the train section of summary.json and the plots.
func (m *model) trainSummary(last TrainRecord) error {
	var values *TrainSummary
	var err error
	if m.env.World.Rank() == 0 {
		values, err = m.trainValues()
		if err == nil {
			err = plotTraining(m.env.Dir)
		}
	}
	if err := mpi.RootError(m.env.World, err); err != nil {
		return err
	}
	return m.env.Dir.Summarize("train", values)
}

func (m *model) trainValues() (*TrainSummary, error) {
	raws, err := m.env.Dir.Records("train")
	if err != nil {
		return nil, err
	}
	recs, err := decode[TrainRecord](raws)
	if err != nil {
		return nil, err
	}
	v := &TrainSummary{Steps: len(recs), Parameters: m.params.Size(), ParametersGauge: m.flow.Params().Size()}
	var secs []float64
	var ess, essM []float64
	for _, r := range recs {
		secs = append(secs, r.Seconds)
		if r.ESS != nil {
			ess = append(ess, *r.ESS)
		}
		if r.ESSJoint != nil {
			ess = append(ess, *r.ESSJoint)
		}
		if r.ESSMarginal != nil {
			essM = append(essM, *r.ESSMarginal)
		}
	}
	total := 0.0
	for _, s := range secs {
		total += s
	}
	if len(secs) > 0 {
		v.SecondsPerStep, v.Seconds = ptr(total/float64(len(secs))), ptr(total)
		v.LossFinal = ptr(recs[len(recs)-1].Loss)
		v.KLFinal = recs[len(recs)-1].KL
		// Mean and error of KL − log Z over the last tenth of the steps.
		var ks []float64
		for _, r := range recs[len(recs)-max(1, len(recs)/10):] {
			if r.KLMinusLogZ != nil {
				ks = append(ks, *r.KLMinusLogZ)
			}
		}
		if len(ks) > 1 {
			mean, v2 := 0.0, 0.0
			for _, k := range ks {
				mean += k
			}
			mean /= float64(len(ks))
			for _, k := range ks {
				v2 += (k - mean) * (k - mean)
			}
			v.KLMinusLogZFinal = &measure.Estimate{Value: mean, Error: math.Sqrt(v2 / float64(len(ks)-1) / float64(len(ks)))}
		}
	}
	if len(ess) > 0 {
		e := ess[len(ess)-1]
		name := "ESS"
		if m.pf != nil {
			v.ESSJointFinal = ptr(e)
			name = "joint ESS"
		} else {
			v.ESSFinal = ptr(e)
		}
		extra := ""
		if len(essM) > 0 {
			v.ESSMarginalFinal = ptr(essM[len(essM)-1])
			extra = fmt.Sprintf(", marginal ESS %.4f", essM[len(essM)-1])
		}
		m.printf("train summary: %d steps, final %s %.4f%s, %.3g s/step\n", len(recs), name, e, extra, total/math.Max(1, float64(len(secs))))
	}
	return v, nil
}

func ptr[T any](x T) *T { return &x }

// targetString lists the pseudofermion monomials (training or sampling).
func (m *model) targetString(train bool) string {
	var parts []string
	for i := range m.target.Monomials() {
		parts = append(parts, m.target.PseudofermionString(i, train))
	}
	return strings.Join(parts, "; ")
}

// decode parses metrics records.
func decode[T any](raws []json.RawMessage) ([]T, error) {
	out := make([]T, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
