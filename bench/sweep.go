package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"pfmpi/group"
	"pfmpi/mpi"
)

// ScalingOps are the operations a scaling sweep can measure.
func ScalingOps() []string {
	return []string{"dslash", "cg", "halo", "hmc", "train_step", "train_replicas"}
}

// WeakGrid spreads ranks over nd directions for a weak-scaling series: the
// prime factors of ranks, largest first, each to the direction split least
// so far (the last direction first among equals: space before time).
func WeakGrid(nd, ranks int) []int {
	grid := make([]int, nd)
	for i := range grid {
		grid[i] = 1
	}
	var primes []int
	for n, p := ranks, 2; n > 1; {
		if n%p == 0 {
			primes = append(primes, p)
			n /= p
			continue
		}
		p++
	}
	slices.Reverse(primes)
	for _, p := range primes {
		best := nd - 1
		for mu := nd - 1; mu >= 0; mu-- {
			if grid[mu] < grid[best] {
				best = mu
			}
		}
		grid[best] *= p
	}
	return grid
}

// A Sweep is one series of a scaling measurement.
type Sweep struct {
	Ops     []string // of ScalingOps
	Size    []int    // sites per rank (weak scaling) or the lattice (strong)
	Strong  bool
	Grid    []int // the process grid; nil: WeakGrid's
	Group   group.Group
	Repeats int
	// Run runs a run file on the world (the HMC and training points time
	// whole phases through the drivers, which package bench does not
	// import); its output directory is already set.
	Run func(world mpi.Comm, file string) error
}

// Points measures the sweep's operations on the world's ranks: with Size
// sites per rank (weak scaling), or on a lattice of Size sites split over
// the ranks (strong scaling: the training batch, 16, is split too). It
// returns the points on every rank.
func (sw Sweep) Points(world mpi.Comm) ([]Point, error) {
	ops, size, strong, grid, g, repeats := sw.Ops, sw.Size, sw.Strong, sw.Grid, sw.Group, sw.Repeats
	nc := g.Nc()
	nd := len(size)
	if grid == nil {
		grid = WeakGrid(nd, world.Size())
	}
	if len(grid) != nd || Volume(grid) != world.Size() {
		return nil, fmt.Errorf("grid %v does not give %d ranks over %d directions", grid, world.Size(), nd)
	}
	local, global := slices.Clone(size), slices.Clone(size)
	for i := range size {
		if strong {
			if size[i]%grid[i] != 0 {
				return nil, fmt.Errorf("lattice %v does not split over grid %v", size, grid)
			}
			local[i] = size[i] / grid[i]
		} else {
			global[i] = size[i] * grid[i]
		}
	}
	ones := make([]int, nd)
	for i := range ones {
		ones[i] = 1
	}
	kappa := 0.2
	if nd == 4 {
		kappa = 0.12
	}
	kind := "weak"
	if strong {
		kind = "strong"
	}
	point := func(op string, grid []int, replicas int, local []int) Point {
		return Point{Scaling: kind, Op: op, Backend: mpi.Backend, Group: g.String(), Ranks: world.Size(), Replicas: replicas,
			Grid: grid, Local: local}
	}
	var pts []Point
	s := Setup{Dims: global, Grid: grid, Nc: nc, Kappa: kappa}
	for _, op := range ops {
		switch op {
		case "dslash", "cg", "halo":
			var rs []Result
			var err error
			switch op {
			case "dslash":
				rs, err = Dslash(world, s, repeats, 0)
			case "cg":
				rs, err = CG(world, s, repeats, 10, 0)
			case "halo":
				rs, err = Halo(world, s, repeats)
			}
			if err != nil {
				return nil, err
			}
			p := point(op, grid, 1, local)
			p.Seconds, p.Bytes = rs[0].Seconds, float64(rs[0].Halo)
			pts = append(pts, p)
		case "hmc":
			p := point(op, grid, 1, local)
			var err error
			if p.Seconds, p.Work, err = PhaseSeconds(world, sw.Run, hmcRun(global, grid, g, kappa, repeats)); err != nil {
				return nil, err
			}
			pts = append(pts, p)
		case "train_step", "train_replicas":
			if nd != 2 {
				continue // flows are 2D
			}
			g, reps, dims, batch := grid, 1, global, trainBatch
			if op == "train_replicas" {
				// Every replica holds the whole lattice: the weak
				// series' local volume, the strong series' lattice.
				g, reps, dims = ones, world.Size(), size
				if batch = trainBatch * reps; strong {
					batch = 2 * trainBatch
				}
				if batch%reps != 0 {
					return nil, fmt.Errorf("a batch of %d does not split over %d replicas", batch, reps)
				}
			}
			p := point(op, g, reps, dims)
			if op == "train_step" {
				p.Local = local
			}
			var err error
			if p.Seconds, _, err = PhaseSeconds(world, sw.Run, trainRun(dims, g, sw.Group, kappa, batch, repeats)); err != nil {
				return nil, err
			}
			pts = append(pts, p)
		default:
			return nil, fmt.Errorf("unknown op %q; use %s", op, strings.Join(ScalingOps(), ", "))
		}
	}
	return pts, nil
}

// trainBatch is the batch per replica of the weak-scaling training-step
// benchmark (and of the model's training predictions); strong scaling
// splits twice it over the replicas.
const trainBatch = 8

// hmcRun is the run file of the HMC benchmark: Nf = 2, even/odd
// preconditioned, one monomial, 4 Omelyan steps of τ = 0.5 from a hot start.
func hmcRun(dims, grid []int, g group.Group, kappa float64, repeats int) string {
	return benchRunFile(dims, grid, g, kappa, fmt.Sprintf(`[hmc]
thermalize = 0
trajectories = %d
tau = 0.5
steps = 4
start = "hot"
measure_every = 0
checkpoint_every = %d
save_every = 0
`, repeats+1, repeats+1))
}

// trainRun is the run file of the training-step benchmark: the joint
// pseudofermion model with 4 gauge and 2 pseudofermion layers.
func trainRun(dims, grid []int, g group.Group, kappa float64, batch, repeats int) string {
	// SU(3): plaquette layers, U(1): no holonomy layer, which run on split
	// lattices (string and holonomy layers need each lattice on one rank),
	// so that every point times one model.
	return benchRunFile(dims, grid, g, kappa, fmt.Sprintf(`[model]
su3_coupling = "plaquette"
u1_holonomy = false
gauge_layers = 4
gauge_hidden = [8, 8]
pf_layers = 2
pf_context_hidden = 8
[train]
steps = %d
batch = %d
ess_every = 0
checkpoint_every = 0
`, repeats+1, batch))
}

// benchRunFile is a benchmark run file: the lattice, grid and Nf = 2 action
// (β = 2 for U(1), 6 for SU(3)), then the phase's sections.
func benchRunFile(dims, grid []int, g group.Group, kappa float64, sections string) string {
	beta := 2.0
	if g == group.SU3 {
		beta = 6.0
	}
	return fmt.Sprintf(`[run]
seed = 1
output = %q
[lattice]
dims = %s
group = %q
[parallel]
grid = %s
[action]
beta = %g
kappa = %g
`, OutputPlaceholder, tomlInts(dims), g.String(), tomlInts(grid), beta, kappa) + sections
}

func tomlInts(d []int) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// OutputPlaceholder stands for the output directory in the run files
// PhaseSeconds runs.
const OutputPlaceholder = "{{output}}"

// PhaseSeconds runs the run file text (with OutputPlaceholder for its
// output directory) in a temporary directory and returns the median seconds per logged step
// after the first, and the median CG iterations per step (HMC).
func PhaseSeconds(world mpi.Comm, run func(mpi.Comm, string) error, text string) (sec, work float64, err error) {
	var dir string
	if world.Rank() == 0 {
		dir, err = os.MkdirTemp("", "pfmpi-scaling-")
	}
	if err := mpi.RootError(world, err); err != nil {
		return 0, 0, err
	}
	defer func() {
		if world.Rank() == 0 {
			os.RemoveAll(dir)
		}
	}()
	file := ""
	if world.Rank() == 0 {
		file = filepath.Join(dir, "run.toml")
		err = os.WriteFile(file, []byte(strings.ReplaceAll(text, OutputPlaceholder, filepath.Join(dir, "out"))), 0o644)
	}
	if err := mpi.RootError(world, err); err != nil {
		return 0, 0, err
	}
	if err := run(world, file); err != nil {
		return 0, 0, err
	}
	out := []float64{0, 0}
	if world.Rank() == 0 {
		out[0], out[1], err = medianSeconds(filepath.Join(dir, "out", "metrics.jsonl"))
	}
	if err := mpi.RootError(world, err); err != nil {
		return 0, 0, err
	}
	world.Bcast(0, mpi.Bytes(out))
	return out[0], out[1], nil
}

func medianSeconds(path string) (sec, work float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var secs, works []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct {
			Seconds float64        `json:"seconds"`
			CG      map[string]int `json:"cg_iterations"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return 0, 0, err
		}
		n := 0
		for _, it := range r.CG {
			n += it
		}
		secs, works = append(secs, r.Seconds), append(works, float64(n))
	}
	if len(secs) < 2 {
		return 0, 0, fmt.Errorf("%s: %d steps logged, need at least 2", path, len(secs))
	}
	return median(secs[1:]), median(works[1:]), sc.Err()
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Report reads scaling CSVs and writes the efficiency table (and a
// PNG of efficiency against ranks).
func Report(files []string, png string, w io.Writer) error {
	pts, err := readPoints(files)
	if err != nil {
		return err
	}
	es := Efficiencies(pts)
	WriteTable(w, es)
	writeBackendRatios(w, pts)
	if png == "" {
		return nil
	}
	p := plot.New()
	p.Title.Text = "pfmpi scaling"
	p.X.Label.Text = "ranks"
	p.Y.Label.Text = "efficiency: weak T(1)/T(P), strong T(1)/(P·T(P))"
	p.Y.Min, p.Y.Max = 0, 1.1
	lines := map[string]plotter.XYs{}
	var names []string
	for _, e := range es {
		size := Dims(e.Local) + " per rank"
		if e.Scaling == "strong" {
			size = Dims(e.Global())
		}
		name := e.Scaling + " " + e.Op + " " + e.Group + " " + size + " (" + e.Backend + ")"
		if _, ok := lines[name]; !ok {
			names = append(names, name)
			lines[name] = plotter.XYs{{X: 1, Y: 1}}
		}
		lines[name] = append(lines[name], plotter.XY{X: float64(e.Ranks), Y: e.Efficiency})
	}
	var args []any
	for _, n := range names {
		args = append(args, n, lines[n])
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = false, true
	return p.Save(8*vg.Inch, 5*vg.Inch, png)
}

// writeBackendRatios compares the in-process and MPI backends on the
// configurations measured with both (fastest of repeats).
func writeBackendRatios(w io.Writer, pts []Point) {
	type cfg struct {
		scaling, op, group, local, grid string
		ranks, replicas                 int
	}
	by := map[cfg]map[string]Point{}
	var order []cfg
	for _, p := range Best(pts) {
		c := cfg{p.Scaling, p.Op, p.Group, Dims(p.Local), Dims(p.Grid), p.Ranks, p.Replicas}
		if by[c] == nil {
			by[c] = map[string]Point{}
			order = append(order, c)
		}
		by[c][p.Backend] = p
	}
	header := false
	for _, c := range order {
		in, ok1 := by[c]["in-process"]
		mp, ok2 := by[c]["mpi"]
		if !ok1 || !ok2 || c.ranks < 2 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\n| op | group | ranks | replicas × grid | local | in-process | MPI | in-process / MPI |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
			header = true
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d × %s | %s | %.4g s | %.4g s | %.2f |\n", c.op, c.group, c.ranks, c.replicas, c.grid, c.local,
			in.PerWork(), mp.PerWork(), in.PerWork()/mp.PerWork())
	}
}

func readPoints(files []string) ([]Point, error) {
	var pts []Point
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		ps, err := ReadCSV(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		pts = append(pts, ps...)
	}
	return pts, nil
}

// ModelReport calibrates the performance model on measured points and
// writes its predictions for production lattices.
func ModelReport(files []string, m Model, params int, w io.Writer) error {
	pts, err := readPoints(files)
	if err != nil {
		return err
	}
	here := m
	if err := Calibrate(pts, &here); err != nil {
		fmt.Fprintf(w, "%v: this machine's network constants are taken as the cluster's.\n", err)
	}
	fmt.Fprintf(w, "Calibrated on this machine: halo latency %.3g µs per message, bandwidth %.3g GB/s per rank.\n",
		here.Latency*1e6, here.Bandwidth/1e9)
	keys := make([]string, 0, len(here.Site))
	for k := range here.Site {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "Compute per site %-18s %.4g ns\n", k, here.Site[k]*1e9)
	}
	// The measured multi-rank points against the model with this machine's
	// network constants.
	fmt.Fprintln(w, "\nMeasured multi-rank points (fastest of repeats) against the model (this machine's constants):")
	fmt.Fprintln(w, "| op | backend | group | ranks | lattice | measured | model |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, p := range Best(pts) {
		if p.Ranks < 2 || p.Replicas != 1 || (p.Op != "dslash" && p.Op != "cg" && p.Op != "hmc") {
			continue
		}
		g, err := group.Parse(p.Group)
		if err != nil {
			continue
		}
		pr := here.Predict(p.Op, g, p.Global(), p.Ranks)
		if pr.Unavailable != "" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %.4g s | %.4g s |\n", p.Op, p.Backend, p.Group, p.Ranks, Dims(p.Global()), p.Seconds, pr.Seconds)
	}
	// Predictions with the cluster's network constants.
	cluster := here
	cluster.Latency, cluster.Bandwidth, cluster.SumLatency = m.Latency, m.Bandwidth, m.SumLatency
	fmt.Fprintf(w, "\nPredictions (compute from this machine; network: α = %.3g µs, β = %.3g GB/s per rank, global sum %.3g µs per stage):\n",
		cluster.Latency*1e6, cluster.Bandwidth/1e9, cluster.SumLatency*1e6)
	var ps []Prediction
	for _, op := range []string{"cg", "hmc"} {
		for _, l := range []int{16, 32, 64, 128, 256} {
			for _, r := range []int{64, 256, 1024, 4096} {
				ps = append(ps, cluster.Predict(op, group.SU3, []int{l, l}, r))
			}
		}
		for _, l := range []int{16, 24, 32, 48} {
			for _, r := range []int{64, 256, 1024, 4096} {
				ps = append(ps, cluster.Predict(op, group.SU3, []int{l, l, l, l}, r))
			}
		}
	}
	for _, l := range []int{16, 32, 64} {
		for _, r := range []int{64, 256, 1024, 4096} {
			ps = append(ps, cluster.TrainReplicas(group.U1, []int{l, l}, r, params))
		}
	}
	WritePredictions(w, ps)
	return nil
}
