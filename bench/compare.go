package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/cmplx"
	"os"
	"os/exec"
	"path/filepath"
	"pfmpi/hugemem"
	"strconv"
	"strings"

	"pfmpi/dslash"
	"pfmpi/mpi"
	"pfmpi/solver"
)

//go:generate make -C cref

// CompareRow is one lattice of the side-by-side comparison of this build's
// Wilson operator with the plain C reference of bench/cref.
type CompareRow struct {
	Group   string  `json:"group"`
	Dims    []int   `json:"dims"`
	CNs     float64 `json:"c_ns_per_site"`  // the C reference, best of five
	GoNs    float64 `json:"go_ns_per_site"` // this build, best of the repetitions
	Speed   float64 `json:"speed"`          // CNs / GoNs: ≥ 1 where pfmpi is as fast as C or faster
	GBytes  float64 `json:"go_gbytes"`      // GB/s of this build by dslash.Cost (no cache reuse)
	Triad   float64 `json:"triad_fraction"` // GBytes over the STREAM triad of this rank
	MaxDiff float64 `json:"max_diff"`       // max |D_C ψ − D ψ| / max |D ψ| over the lattice
	CGRatio float64 `json:"cg_ratio"`       // one CG iteration on DD† over two applications of D (this build)
	// CGPlain is CGRatio for CG's general iteration (the operator's fused
	// applications hidden), for comparison.
	CGPlain float64 `json:"cg_plain_ratio"`
	// CGFloor is 1 + T(x/p pass)/(2 T(D)): CGRatio if the two operator
	// applications of an iteration cost exactly two D and only the fused
	// iteration's vector pass (solver.UpdateXP: x += αp, p = r + βp, five
	// vector accesses per element) remained. CG must read and write x and
	// write p every iteration: folding the pass into the applications (a
	// wavefront) could save at most one of the five accesses, p's read.
	CGFloor float64 `json:"cg_floor_ratio"`
}

func (r CompareRow) String() string {
	return fmt.Sprintf("%-4s %-16s C %8.2f ns/site   pfmpi %8.2f ns/site   speed %5.2f× C   %6.2f GB/s (%3.0f%% of triad)   CG iteration %4.2f × 2 D (unfused %4.2f, vector-pass floor %4.2f)   |Δ| %.1e",
		r.Group, Dims(r.Dims), r.CNs, r.GoNs, r.Speed, r.GBytes, 100*r.Triad, r.CGRatio, r.CGPlain, r.CGFloor, r.MaxDiff)
}

// CompareVolumes is the set of lattices of `pfmpi bench -compare`: U(1) 2D
// 64²–1024², SU(3) 2D 32²–256², SU(3) 4D 8⁴–20⁴ (quick: one small lattice
// of each).
func CompareVolumes(quick bool) []Setup {
	var s []Setup
	add := func(nd, nc int, ls ...int) {
		for _, l := range ls {
			dims := make([]int, nd)
			for i := range dims {
				dims[i] = l
			}
			s = append(s, Setup{Dims: dims, Grid: ones(nd), Nc: nc, Kappa: 0.12})
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
	add(4, 3, 8, 12, 16, 20)
	return s
}

func ones(n int) []int {
	g := make([]int, n)
	for i := range g {
		g[i] = 1
	}
	return g
}

// Compare runs D on each setup's lattice with this build and with the C
// reference program cref (bench/cref/wilson-cref, built by `make -C
// bench/cref`) on the same gauge field and spinor, checks that both give
// the same result, and reports the time per site of each. Both run on one
// core: comm must have one rank.
func Compare(comm mpi.Comm, cref string, setups []Setup, repeats int, report func(CompareRow)) error {
	if comm.Size() != 1 {
		return fmt.Errorf("bench: the comparison with C runs on one rank, not %d", comm.Size())
	}
	if _, err := os.Stat(cref); err != nil {
		return fmt.Errorf("bench: the C reference %s: %w (build it with `make -C bench/cref`)", cref, err)
	}
	dir, err := os.MkdirTemp("", "pfmpi-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	triad := Triad(comm, 1<<23, repeats)
	for _, s := range setups {
		row, err := compareOne(comm, cref, dir, s, repeats)
		if err != nil {
			return err
		}
		row.Triad = row.GBytes / triad
		report(row)
	}
	return nil
}

func compareOne(comm mpi.Comm, cref, dir string, s Setup, repeats int) (CompareRow, error) {
	s.Grid = ones(len(s.Dims))
	w, err := s.operator(comm)
	if err != nil {
		return CompareRow{}, err
	}
	defer s.close(w)
	ly, n, nd, nc := w.Layout(), w.PerSite(), len(s.Dims), s.Nc
	v := ly.Volume()
	in := randomVector(w)
	out := hugemem.Make[complex128](len(in))
	// The C program's order: lexicographic, direction 0 slowest.
	lexIn := make([]complex128, len(in))
	lexLinks := make([]complex128, v*nd*nc*nc)
	lexOf := make([]int, v)
	for site := 0; site < v; site++ {
		i := int(ly.GlobalIndex(site))
		lexOf[site] = i
		copy(lexIn[i*n:(i+1)*n], in[site*n:(site+1)*n])
		for mu := 0; mu < nd; mu++ {
			copy(lexLinks[(i*nd+mu)*nc*nc:], w.Gauge().Link(site, mu))
		}
	}
	if err := writeComplex(filepath.Join(dir, "in.bin"), lexIn); err != nil {
		return CompareRow{}, err
	}
	if err := writeComplex(filepath.Join(dir, "links.bin"), lexLinks); err != nil {
		return CompareRow{}, err
	}
	reps := max(1, (1<<24)/(v*n*nd))
	args := []string{dir, strconv.Itoa(nd), strconv.Itoa(nc)}
	for _, l := range s.Dims {
		args = append(args, strconv.Itoa(l))
	}
	args = append(args, strconv.FormatFloat(s.Kappa, 'g', -1, 64), strconv.Itoa(reps))
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(cref, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return CompareRow{}, fmt.Errorf("bench: %s %s: %v: %s", cref, strings.Join(args, " "), err, stderr.String())
	}
	f := strings.Fields(stdout.String())
	if len(f) != 2 || f[0] != "ns_per_site" {
		return CompareRow{}, fmt.Errorf("bench: %s printed %q, want \"ns_per_site VALUE\"", cref, stdout.String())
	}
	cNs, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return CompareRow{}, fmt.Errorf("bench: %s: %v", cref, err)
	}
	lexOut, err := readComplex(filepath.Join(dir, "out.bin"), len(in))
	if err != nil {
		return CompareRow{}, err
	}
	w.M(out, in)
	var diff, scale float64
	for site := 0; site < v; site++ {
		i := lexOf[site]
		for k := 0; k < n; k++ {
			diff = max(diff, cmplx.Abs(lexOut[i*n+k]-out[site*n+k]))
			scale = max(scale, cmplx.Abs(out[site*n+k]))
		}
	}
	sec := timeIt(comm, repeats, func() {
		for range reps {
			w.M(out, in)
		}
	}) / float64(reps)
	row := CompareRow{Group: s.group(), Dims: s.Dims, CNs: cNs, GoNs: sec * 1e9 / float64(v), MaxDiff: diff / scale}
	// One CG iteration on DD†, as the solves of HMC and the pseudofermion
	// actions run it: the time of solves of 30 iterations less that of 10
	// (the set-up and the final residual cancel), over 20. A random source
	// does not converge in so few at κ = 0.12, which is expected.
	m := dslash.NewNormal(w, 0, len(in))
	solves := max(1, reps/40)
	row.CGRatio = cgIteration(comm, m, in, repeats, solves) / (2 * sec)
	row.CGPlain = cgIteration(comm, plainLinear{m}, in, repeats, solves) / (2 * sec)
	row.CGFloor = 1 + vectorPass(comm, len(in), repeats, reps)/(2*sec)

	row.Speed = row.CNs / row.GoNs
	row.GBytes = float64(w.Cost().Bytes) / sec / 1e9
	if row.MaxDiff > 1e-12 {
		return row, fmt.Errorf("bench: the C reference and pfmpi disagree on %s %s: max |Δ| %.3g (relative); they do not compute the same operator", row.Group, Dims(s.Dims), row.MaxDiff)
	}
	return row, nil
}

// plainLinear hides an operator's fused CG applications (solver.Factored).
type plainLinear struct{ a solver.Linear }

func (p plainLinear) Apply(out, in []complex128) { p.a.Apply(out, in) }

// cgIteration returns the seconds of one CG iteration on a with source b:
// (T(30 iterations) − T(10 iterations))/20, each timed over at least that
// many solves and at least 2¹⁸ vector elements' worth of them (where noise
// still makes the difference vanish, T(30)/30, which counts the set-up).
func cgIteration(comm mpi.Comm, a solver.Linear, b []complex128, repeats, solves int) float64 {
	solves = max(solves, (1<<18)/len(b))
	cg := solver.NewCG(comm, len(b))
	x := hugemem.Make[complex128](len(b))
	timeOf := func(iters int) float64 {
		return timeIt(comm, repeats, func() {
			for range solves {
				clear(x)
				cg.Solve(a, x, b, 1e-30, iters) // does not converge: the error is expected
			}
		}) / float64(solves)
	}
	t30 := timeOf(30)
	if d := (t30 - timeOf(10)) / 20; d > 0 {
		return d
	}
	return t30 / 30
}

// vectorPass returns the seconds of one solver.UpdateXP over n values, on
// vectors of their own (the solver's are as large, so the caches hold as
// much of them).
func vectorPass(comm mpi.Comm, n, repeats, reps int) float64 {
	x, p, r := hugemem.Make[complex128](n), hugemem.Make[complex128](n), hugemem.Make[complex128](n)
	for i := range r {
		r[i] = complex(1, float64(i%3))
	}
	return timeIt(comm, repeats, func() {
		for range reps {
			// β = 1/2 keeps p bounded however often the pass repeats.
			solver.UpdateXP(x, p, r, 1e-3, 0.5)
		}
	}) / float64(reps)
}

func writeComplex(path string, x []complex128) error {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, x); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func readComplex(path string, n int) ([]complex128, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) != 16*n {
		return nil, fmt.Errorf("bench: %s has %d bytes, want %d", path, len(data), 16*n)
	}
	x := make([]complex128, n)
	return x, binary.Read(bytes.NewReader(data), binary.LittleEndian, x)
}
