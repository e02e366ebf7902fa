package nnlayers

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// AdamConfig sets an Adam or AdamW optimizer.
type AdamConfig struct {
	LR          float64 // learning rate before decay
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // the ε of the denominator (the paper uses 0.01–0.02)
	WeightDecay float64 // AdamW: decoupled decay θ ← θ − lr·λ·θ; Adam: L2 term λθ added to the gradient
	Decoupled   bool    // true: AdamW
	ClipNorm    float64 // clip the global gradient norm to this (0: no clipping)
	// ClipMedian > 0 clips the global gradient norm to ClipMedian times the
	// median norm of the last clipWindow steps, once clipMinHistory are
	// known (with ClipNorm as well, the smaller bound holds). A single
	// sample far in the tail can give a gradient 10⁶ times the usual one;
	// unclipped it fills Adam's second moment, which then stalls training
	// for ~1/(1−β₂) steps. A relative bound needs no knowledge of the
	// model's typical norm.
	ClipMedian  float64
	DecayEvery  int // multiply the learning rate by DecayFactor every DecayEvery steps (0: never)
	DecayFactor float64
	Warmup      int     // ramp the learning rate up linearly over the first Warmup steps (0: none)
	CosineSteps int     // > 0: cosine decay from LR to MinLR over the steps Warmup … CosineSteps, instead of DecayEvery
	MinLR       float64 // the cosine schedule's final learning rate, in [0, LR]
}

// Adam is the Adam (Kingma and Ba 2015) / AdamW (Loshchilov and Hutter 2019)
// optimizer:
//
//	m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//	θ ← θ − lr_t · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)     (AdamW first: θ ← θ − lr_t·λ·θ)
//
// with lr_t = LR · min(1, t/Warmup) · DecayFactor^⌊(t−1)/DecayEvery⌋ at step
// t = 1, 2, …, after clipping the global gradient norm; with CosineSteps = T
// > 0 the step decay gives way to
//
//	lr_t = min(1, t/Warmup) · (MinLR + (LR − MinLR)·½(1 + cos πs)),
//	s = clamp((t − Warmup)/(T − Warmup), 0, 1).
//
// A parameter held for h steps (Hold) counts its own t − h in the bias
// corrections and the warm-up.
type Adam struct {
	cfg     AdamConfig
	params  Params
	m, v    [][]float64
	step    int
	pending adamUpdate // the update of the step begun
	total   int        // elements of all parameters
	hold    []int      // per parameter: steps before it starts to train (Hold)
	norms   []float64  // the last clipWindow gradient norms, oldest first (ClipMedian)
	sorted  []float64  // scratch for their median
}

// The window of ClipMedian and the norms it needs before it clips.
const (
	clipWindow     = 100
	clipMinHistory = 20
)

// NewAdam returns the optimizer of ps.
func NewAdam(ps Params, cfg AdamConfig) (*Adam, error) {
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.DecayFactor == 0 {
		cfg.DecayFactor = 1
	}
	if !(cfg.LR > 0) || !(cfg.Eps > 0) || cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 || cfg.WeightDecay < 0 || cfg.ClipNorm < 0 || cfg.ClipMedian < 0 || cfg.DecayEvery < 0 || !(cfg.DecayFactor > 0) || cfg.Warmup < 0 ||
		cfg.CosineSteps < 0 || cfg.MinLR < 0 || cfg.MinLR > cfg.LR {
		return nil, fmt.Errorf("nnlayers: invalid optimizer settings %+v", cfg)
	}
	if err := ps.Check(); err != nil {
		return nil, err
	}
	a := &Adam{cfg: cfg, params: ps, hold: make([]int, len(ps))}
	for _, p := range ps {
		a.m = append(a.m, make([]float64, p.Size()))
		a.v = append(a.v, make([]float64, p.Size()))
		a.total += p.Size()
	}
	return a, nil
}

// Hold keeps the parameters ps (all held by the optimizer) unchanged during
// the first steps steps: their values, moments and weight decay wait, and
// from step steps+1 on they train as if that were their first step (their
// bias corrections and learning-rate warm-up count their own steps; the
// decay stays the global one). Staged training uses it.
func (a *Adam) Hold(ps Params, steps int) error {
	if steps < 0 {
		return fmt.Errorf("nnlayers: Hold for %d steps", steps)
	}
	index := make(map[*Param]int, len(a.params))
	for k, p := range a.params {
		index[p] = k
	}
	for _, p := range ps {
		k, ok := index[p]
		if !ok {
			return fmt.Errorf("nnlayers: Hold: parameter %s is not the optimizer's", p.Name)
		}
		a.hold[k] = steps
	}
	return nil
}

// Params returns the parameters the optimizer updates.
func (a *Adam) Params() Params { return a.params }

// Steps is the number of steps taken.
func (a *Adam) Steps() int { return a.step }

// LR is the learning rate of the next step.
func (a *Adam) LR() float64 {
	return warm(a.decayedLR(), a.step+1, a.cfg.Warmup)
}

// decayedLR is the learning rate of the next step before the warm-up.
func (a *Adam) decayedLR() float64 {
	c := a.cfg
	if c.CosineSteps > 0 {
		s := float64(a.step+1-c.Warmup) / float64(max(c.CosineSteps-c.Warmup, 1))
		s = min(max(s, 0), 1)
		return c.MinLR + (c.LR-c.MinLR)*0.5*(1+math.Cos(math.Pi*s))
	}
	lr := c.LR
	if c.DecayEvery > 0 {
		lr *= math.Pow(c.DecayFactor, float64(a.step/c.DecayEvery))
	}
	return lr
}

// warm is lr at step t (from 1) of a linear warm-up over w steps.
func warm(lr float64, t, w int) float64 {
	if t < w {
		lr *= float64(t) / float64(w)
	}
	return lr
}

// Step updates the parameters from their gradients (already summed over
// ranks) and returns the gradient norm before clipping. It does not clear
// the gradients. It is Begin followed by Update(0, 1).
func (a *Adam) Step() float64 {
	norm := a.Begin()
	a.Update(0, 1)
	return norm
}

// Begin starts a step: it takes the gradient norm (returned, before
// clipping) and the step's constants. Update then applies the update in
// shares, which may run on goroutines at once; the update is element-wise,
// so its result does not depend on the shares.
func (a *Adam) Begin() float64 {
	c := a.cfg
	decayed := a.decayedLR()
	lr := warm(decayed, a.step+1, c.Warmup)
	a.step++
	norm := a.params.GradNorm()
	scale := 1.0
	if bound := a.clipBound(); norm > bound {
		scale = bound / norm
	}
	if c.ClipMedian > 0 {
		if len(a.norms) == clipWindow {
			a.norms = append(a.norms[:0], a.norms[1:]...)
		}
		a.norms = append(a.norms, norm)
	}
	a.pending = adamUpdate{cfg: &a.cfg, lr: lr, decayed: decayed, scale: scale,
		bc1: 1 - math.Pow(c.Beta1, float64(a.step)), bc2: 1 - math.Pow(c.Beta2, float64(a.step))}
	return norm
}

// clipBound is the bound on the gradient norm of the next step (+Inf:
// none).
func (a *Adam) clipBound() float64 {
	c := a.cfg
	bound := math.Inf(1)
	if c.ClipNorm > 0 {
		bound = c.ClipNorm
	}
	if c.ClipMedian > 0 && len(a.norms) >= clipMinHistory {
		a.sorted = append(a.sorted[:0], a.norms...)
		slices.Sort(a.sorted)
		n := len(a.sorted)
		med := (a.sorted[(n-1)/2] + a.sorted[n/2]) / 2
		bound = min(bound, c.ClipMedian*med)
	}
	return bound
}

// Update applies share w of n of the update of the step begun: the
// elements [total·w/n, total·(w+1)/n) of the parameters in order.
func (a *Adam) Update(w, n int) {
	if a.pending.cfg == nil {
		panic("nnlayers: Adam.Update without Begin")
	}
	lo, hi := a.total*w/n, a.total*(w+1)/n
	off := 0
	for k, p := range a.params {
		size := len(p.Value)
		i0, i1 := max(lo-off, 0), min(hi-off, size)
		if h := a.hold[k]; i0 < i1 && a.step > h {
			u := a.pending
			if h > 0 {
				t := float64(a.step - h)
				u.bc1, u.bc2 = 1-math.Pow(a.cfg.Beta1, t), 1-math.Pow(a.cfg.Beta2, t)
				u.lr = warm(u.decayed, a.step-h, a.cfg.Warmup)
			}
			u.run(p.Value[i0:i1], p.Grad[i0:i1], a.m[k][i0:i1], a.v[k][i0:i1])
		}
		off += size
	}
}

// adamUpdate is one step's update of a stretch of parameters.
type adamUpdate struct {
	cfg                          *AdamConfig
	lr, decayed, scale, bc1, bc2 float64 // decayed: lr before the warm-up
}

func (u *adamUpdate) run(val, grad, m, v []float64) {
	c := u.cfg
	grad, m, v = grad[:len(val)], m[:len(val)], v[:len(val)]
	for i, g := range grad {
		g *= u.scale
		if c.Decoupled {
			val[i] -= u.lr * c.WeightDecay * val[i]
		} else {
			g += c.WeightDecay * val[i]
		}
		m[i] = c.Beta1*m[i] + (1-c.Beta1)*g
		v[i] = c.Beta2*v[i] + (1-c.Beta2)*g*g
		val[i] -= u.lr * (m[i] / u.bc1) / (math.Sqrt(v[i]/u.bc2) + c.Eps)
	}
}

const adamMagic = "PFNNADM1"

// adamHistoryFlag marks, in the step count of a state, that the recent
// gradient norms (ClipMedian) follow the moments; states written before
// they existed lack the flag and resume with no history.
const adamHistoryFlag = 1 << 62

// WriteState writes the step count, the moments and the recent gradient
// norms (CRC-32C checked).
func (a *Adam) WriteState(w io.Writer) error {
	return writeChecked(w, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(a.step)|adamHistoryFlag); err != nil {
			return err
		}
		k := 0
		if err := writeSet(w, adamMagic, a.params, func(*Param) []float64 { k++; return a.m[k-1] }); err != nil {
			return err
		}
		k = 0
		if err := writeSet(w, adamMagic, a.params, func(*Param) []float64 { k++; return a.v[k-1] }); err != nil {
			return err
		}
		if err := binary.Write(w, binary.LittleEndian, uint32(len(a.norms))); err != nil {
			return err
		}
		return binary.Write(w, binary.LittleEndian, a.norms)
	})
}

// ReadState restores what WriteState wrote, for the same parameters.
func (a *Adam) ReadState(r io.Reader) error {
	index := map[*Param]int{}
	for k, p := range a.params {
		index[p] = k
	}
	return readChecked(r, func(r io.Reader) error {
		var step uint64
		if err := binary.Read(r, binary.LittleEndian, &step); err != nil {
			return err
		}
		if err := readSet(r, adamMagic, a.params, false, func(p *Param) []float64 { return a.m[index[p]] }); err != nil {
			return err
		}
		if err := readSet(r, adamMagic, a.params, false, func(p *Param) []float64 { return a.v[index[p]] }); err != nil {
			return err
		}
		a.norms = a.norms[:0]
		if step&adamHistoryFlag != 0 {
			step &^= adamHistoryFlag
			var n uint32
			if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
				return err
			}
			if n > clipWindow {
				return fmt.Errorf("nnlayers: optimizer state holds %d gradient norms, more than the window of %d", n, clipWindow)
			}
			a.norms = make([]float64, n)
			if err := binary.Read(r, binary.LittleEndian, a.norms); err != nil {
				return err
			}
		}
		a.step = int(step)
		return nil
	})
}
