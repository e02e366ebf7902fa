package nnlayers

import (
	"sort"
	"sync"
	"time"
)

// Profile collects the time and the counted floating-point operations of a
// tape's operations by kind (a benchmark's breakdown of a training step).
// Operations report themselves through [Tape.Begin] and [Tape.End]; the
// tape times the backward pass of every recorded operation and charges it
// to the operation's kind. Several tapes may report to one Profile at
// once (copies of a model on their goroutines): their times add up.
type Profile struct {
	mu    sync.Mutex
	kinds map[string]*ProfileEntry
}

// ProfileEntry is what a Profile holds for one kind.
type ProfileEntry struct {
	Kind              string
	Forward, Backward time.Duration
	Calls             int
	Flops             int64 // counted, forward and backward
	// Products marks the convolutions: their flops are those of matrix
	// products (package gemm), to be compared with the core's peak.
	Products bool
}

// NewProfile returns an empty profile.
func NewProfile() *Profile { return &Profile{kinds: map[string]*ProfileEntry{}} }

// Reset clears the profile.
func (p *Profile) Reset() {
	p.mu.Lock()
	clear(p.kinds)
	p.mu.Unlock()
}

// Entries returns the kinds by decreasing total time.
func (p *Profile) Entries() []ProfileEntry {
	var es []ProfileEntry
	p.mu.Lock()
	for _, e := range p.kinds {
		es = append(es, *e)
	}
	p.mu.Unlock()
	sort.Slice(es, func(i, j int) bool {
		ti, tj := es[i].Forward+es[i].Backward, es[j].Forward+es[j].Backward
		if ti != tj {
			return ti > tj
		}
		return es[i].Kind < es[j].Kind
	})
	return es
}

// Add charges d (forward or backward) and flops to kind.
func (p *Profile) Add(kind string, d time.Duration, flops int64, backward bool) {
	p.add(kind, d, flops, backward, false)
}

func (p *Profile) add(kind string, d time.Duration, flops int64, backward, products bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.kinds[kind]
	if !ok {
		e = &ProfileEntry{Kind: kind, Products: products}
		p.kinds[kind] = e
	}
	if backward {
		e.Backward += d
	} else {
		e.Forward += d
		e.Calls++
	}
	e.Flops += flops
}

// SetProfile makes the tape report to p (nil: no profiling).
func (t *Tape) SetProfile(p *Profile) { t.prof = p }

// Profile is the tape's profile (nil when profiling is off).
func (t *Tape) Profile() *Profile { return t.prof }

// Begin starts timing an operation of the tape (the zero time when
// profiling is off).
func (t *Tape) Begin() time.Time {
	if t.prof == nil {
		return time.Time{}
	}
	return time.Now()
}

// End charges the time since start and flops to kind (nothing when
// profiling is off).
func (t *Tape) End(kind string, start time.Time, flops int64, backward bool) {
	if t.prof == nil {
		return
	}
	t.prof.Add(kind, time.Since(start), flops, backward)
}

// endProducts is End for the matrix products of convolutions.
func (t *Tape) endProducts(kind string, start time.Time, flops int64, backward bool) {
	if t.prof == nil {
		return
	}
	t.prof.add(kind, time.Since(start), flops, backward, true)
}

// Kinded is implemented by custom operations that name their kind for a
// profile (others are charged to "custom").
type Kinded interface {
	Kind() string
}

// backwardFlops is implemented by custom operations that count the flops
// of their backward pass.
type backwardFlops interface {
	BackwardFlops() int64
}
