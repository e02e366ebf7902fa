package bench

import (
	"fmt"
	"pfmpi/hugemem"
	"time"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/group"
	"pfmpi/halo"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// Result is one measurement.
type Result struct {
	Op       string  `json:"op"`
	Dims     []int   `json:"dims"`
	Group    string  `json:"group"`
	Ranks    int     `json:"ranks"`
	Grid     []int   `json:"grid"`
	Seconds  float64 `json:"seconds"`            // per operation, slowest rank, best repetition
	GFlops   float64 `json:"gflops,omitempty"`   // all ranks together
	GBytes   float64 `json:"gbytes,omitempty"`   // GB/s, all ranks together
	Fraction float64 `json:"fraction,omitempty"` // GB/s over the triad bandwidth of the same ranks
	NsSite   float64 `json:"ns_per_site,omitempty"`
	Halo     int     `json:"halo_bytes,omitempty"` // bytes one rank sends to others per exchange (halo)
	Note     string  `json:"note,omitempty"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%-7s %-16s %-4s ranks %-3d %10.4g s", r.Op, fmt.Sprint(r.Dims), r.Group, r.Ranks, r.Seconds)
	if r.GFlops > 0 {
		s += fmt.Sprintf("  %7.3f GFLOP/s %7.3f GB/s %5.1f%% of triad %8.1f ns/site", r.GFlops, r.GBytes, 100*r.Fraction, r.NsSite)
	}
	if r.Note != "" {
		s += "  " + r.Note
	}
	return s
}

// timeIt runs op repeats times (after one warm-up) on every rank and returns
// the best time of the slowest rank.
func timeIt(comm mpi.Comm, repeats int, op func()) float64 {
	op()
	best := -1.0
	for i := 0; i < repeats; i++ {
		comm.Barrier()
		t0 := time.Now()
		op()
		dt := mpi.MaxFloat64(comm, time.Since(t0).Seconds())
		if best < 0 || dt < best {
			best = dt
		}
	}
	return best
}

// Triad returns the memory bandwidth in GB/s of all ranks of comm running the
// triad together on arrays of n float64 each (n ≥ 2²³ recommended).
func Triad(comm mpi.Comm, n, repeats int) float64 {
	a, b, c := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range b {
		b[i], c[i] = 1, 2
	}
	const s = 3.0
	t := timeIt(comm, repeats, func() {
		for i := range a {
			a[i] = b[i] + s*c[i]
		}
	})
	return float64(comm.Size()) * 24 * float64(n) / t / 1e9
}

// Setup is a lattice, gauge group and hopping parameter to benchmark on.
type Setup struct {
	Dims, Grid []int
	Nc         int
	Kappa      float64
}

func (s Setup) group() string { return group.Group(s.Nc).String() }

// operator builds a hot gauge field and the Wilson operator on this rank.
func (s Setup) operator(comm mpi.Comm) (*dslash.Wilson, error) {
	lat, err := decomp.NewLattice(s.Dims, s.Grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(comm.Rank())
	if err != nil {
		return nil, err
	}
	sp, err := gauge.NewSpace(comm, ly, s.Nc)
	if err != nil {
		return nil, err
	}
	u := sp.NewField()
	u.SetNearIdentity(rng.New(1, "bench-gauge"), 0.5)
	return dslash.NewWilson(u, s.Kappa)
}

// close releases the operator and its gauge space.
func (s Setup) close(w *dslash.Wilson) {
	w.Close()
	w.Gauge().Space().Close()
}

func randomVector(w *dslash.Wilson) []complex128 {
	ly, n := w.Layout(), w.PerSite()
	x := hugemem.Make[complex128](ly.Volume() * n)
	for s := 0; s < ly.Volume(); s++ {
		st := rng.New(2, "bench-vector").Stream(uint64(ly.GlobalIndex(s)))
		for i := 0; i < n; i++ {
			x[s*n+i] = st.ComplexNormal()
		}
	}
	return x
}

func (s Setup) result(comm mpi.Comm, op string, sec float64) Result {
	return Result{Op: op, Dims: s.Dims, Group: s.group(), Ranks: comm.Size(), Grid: s.Grid, Seconds: sec}
}

// Dslash times D on full vectors (with the halo overlapped) and, for
// comparison, without overlap; the overlap gain is in the note.
func Dslash(comm mpi.Comm, s Setup, repeats int, triad float64) ([]Result, error) {
	w, err := s.operator(comm)
	if err != nil {
		return nil, err
	}
	defer s.close(w)
	in := randomVector(w)
	out := hugemem.Make[complex128](len(in))
	cost := w.Cost()
	flops := mpi.SumFloat64(comm, float64(cost.Flops))
	bytes := mpi.SumFloat64(comm, float64(cost.Bytes))
	sites := float64(w.Layout().Lattice().GlobalVolume())
	w.Overlap = true
	with := timeIt(comm, repeats, func() { w.M(out, in) })
	w.Overlap = false
	without := timeIt(comm, repeats, func() { w.M(out, in) })
	w.Overlap = true
	r := s.result(comm, "dslash", with)
	r.GFlops, r.GBytes = flops/with/1e9, bytes/with/1e9
	r.Fraction = r.GBytes / triad
	r.NsSite = with * 1e9 * float64(comm.Size()) / sites
	r.Note = fmt.Sprintf("overlap speed-up %.3f", without/with)
	return []Result{r}, nil
}

// CG times one iteration of CG on DD† (the solver's fused iteration;
// (T(30) − T(10))/20 as in Compare) and compares it with two applications
// of D.
func CG(comm mpi.Comm, s Setup, repeats, iterations int, triad float64) ([]Result, error) {
	w, err := s.operator(comm)
	if err != nil {
		return nil, err
	}
	defer s.close(w)
	b := randomVector(w)
	m := dslash.NewNormal(w, 0, len(b))
	sec := cgIteration(comm, m, b, repeats, max(1, iterations/10))
	out := hugemem.Make[complex128](len(b))
	d := timeIt(comm, repeats, func() { w.M(out, b) })
	cost := w.Cost()
	flops := 2 * mpi.SumFloat64(comm, float64(cost.Flops))
	bytes := 2 * mpi.SumFloat64(comm, float64(cost.Bytes))
	r := s.result(comm, "cg", sec)
	r.GFlops, r.GBytes = flops/sec/1e9, bytes/sec/1e9
	r.Fraction = r.GBytes / triad
	r.NsSite = sec * 1e9 * float64(comm.Size()) / float64(w.Layout().Lattice().GlobalVolume())
	r.Note = fmt.Sprintf("iteration / (2 × dslash) = %.3f", sec/(2*d))
	return []Result{r}, nil
}

// Halo times the exchange of a fermion field's halo (whole spinors, depth 1,
// antiperiodic in time) through package halo, and reports the bytes sent to
// other ranks per second.
func Halo(comm mpi.Comm, s Setup, repeats int) ([]Result, error) {
	lat, err := decomp.NewLattice(s.Dims, s.Grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(comm.Rank())
	if err != nil {
		return nil, err
	}
	zone, err := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Faces, Twisted: []int{0}})
	if err != nil {
		return nil, err
	}
	ns := 2
	if len(s.Dims) == 4 {
		ns = 4
	}
	h, err := halo.New[complex128](comm, zone, ns*s.Nc, dslash.HaloPhases(len(s.Dims)))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	f := make([]complex128, zone.Len()*ns*s.Nc)
	sec := timeIt(comm, repeats, func() { h.Exchange(f, decomp.All) })
	remote, _ := h.Bytes(decomp.All)
	r := s.result(comm, "halo", sec)
	r.Halo = remote
	total := mpi.SumFloat64(comm, float64(remote))
	r.Note = fmt.Sprintf("%.3g GB/s to other ranks (%d bytes per rank)", total/sec/1e9, remote)
	if total == 0 {
		r.Note = "one rank per lattice: nothing crosses ranks"
	}
	return []Result{r}, nil
}

// Volumes is the standard set of lattices of `pfmpi bench` (quick: one tiny
// lattice of each kind, a smoke test).
func Volumes(quick bool) []Setup {
	var s []Setup
	add := func(nd, nc int, ls ...int) {
		for _, l := range ls {
			dims := make([]int, nd)
			for i := range dims {
				dims[i] = l
			}
			s = append(s, Setup{Dims: dims, Nc: nc, Kappa: 0.12})
		}
	}
	if quick {
		add(2, 1, 16)
		add(2, 3, 8)
		add(4, 3, 4)
		return s
	}
	add(2, 1, 64, 128, 256, 512, 1024)
	add(2, 3, 32, 64, 128, 256)
	add(4, 3, 8, 12, 16, 20, 24)
	return s
}

// Options are the knobs of Run.
type Options struct {
	Ops        []string // of "dslash", "cg", "halo"
	Repeats    int
	Iterations int // CG: solves per timing = Iterations/10 (at least one)
	TriadN     int // elements per array of the STREAM triad
}

// Run measures the memory bandwidth (Triad), then the options' operations
// on each setup over comm, and reports every result; setups whose lattice
// the ranks cannot split are noted and skipped.
func Run(comm mpi.Comm, setups []Setup, opt Options, report func(Result)) error {
	triad := Triad(comm, opt.TriadN, opt.Repeats)
	report(Result{Op: "triad", Ranks: comm.Size(), GBytes: triad, Note: fmt.Sprintf("%.3f GB/s memory bandwidth of these ranks (STREAM triad, 3 arrays of %d KiB per rank)", triad, opt.TriadN*8>>10)})
	for _, s := range setups {
		if s.Grid == nil {
			g, err := decomp.AutoGrid(s.Dims, comm.Size(), false)
			if err != nil {
				report(Result{Op: "skip", Dims: s.Dims, Ranks: comm.Size(), Note: err.Error()})
				continue
			}
			s.Grid = g
		}
		for _, op := range opt.Ops {
			var rs []Result
			var err error
			switch op {
			case "dslash":
				rs, err = Dslash(comm, s, opt.Repeats, triad)
			case "cg":
				rs, err = CG(comm, s, opt.Repeats, opt.Iterations, triad)
			case "halo":
				rs, err = Halo(comm, s, opt.Repeats)
			default:
				rs = []Result{{Op: op, Dims: s.Dims, Ranks: comm.Size(), Note: "not implemented yet (the training-step benchmark arrives with the production and scaling issue; time a step with `pfmpi run` on a short [train] section meanwhile)"}}
			}
			if err != nil {
				return err
			}
			for _, r := range rs {
				report(r)
			}
		}
	}
	return nil
}
