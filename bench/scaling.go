package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Point is one scaling measurement: an operation with Local sites per rank
// on Ranks ranks (Replicas of them replicas). A weak-scaling series keeps
// Local fixed, a strong-scaling one the lattice (Global).
type Point struct {
	Scaling  string  // "weak" or "strong"
	Op       string  // dslash, cg, halo, hmc, train_step, train_replicas
	Backend  string  // "in-process" or "mpi"
	Group    string  // u1, su3
	Ranks    int     //
	Replicas int     //
	Grid     []int   // process grid of one replica
	Local    []int   // sites per rank in each direction
	Seconds  float64 // per operation (a trajectory, a training step, a CG iteration, …)
	Work     float64 // units of work per operation (CG iterations of a trajectory; 0: none)
	Bytes    float64 // halo bytes per rank and operation (halo only)
}

// Global is the lattice of one replica.
func (p Point) Global() []int {
	g := make([]int, len(p.Local))
	for i := range g {
		g[i] = p.Local[i] * p.Grid[i]
	}
	return g
}

// PerWork is the time per unit of work (Seconds/Work), or Seconds.
func (p Point) PerWork() float64 {
	if p.Work > 0 {
		return p.Seconds / p.Work
	}
	return p.Seconds
}

var csvHeader = []string{"scaling", "op", "backend", "group", "ranks", "replicas", "grid", "local", "global", "seconds", "work", "halo_bytes"}

// Dims writes extents as 16x16.
func Dims(d []int) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "x")
}

// ParseDims reads extents written as 16x16 (or 16,16).
func ParseDims(s string) ([]int, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == 'x' || r == ',' || r == '×' })
	if len(f) < 2 || len(f) > 4 {
		return nil, fmt.Errorf("%q: give 2 to 4 extents such as 16x16", s)
	}
	d := make([]int, len(f))
	for i, x := range f {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: extent %q is not a positive integer", s, x)
		}
		d[i] = n
	}
	return d, nil
}

// AppendCSV appends points to the CSV file at path, writing the header
// when the file is new.
func AppendCSV(path string, pts []Point) error {
	_, err := os.Stat(path)
	fresh := errors.Is(err, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if fresh {
		w.Write(csvHeader)
	}
	for _, p := range pts {
		w.Write([]string{p.Scaling, p.Op, p.Backend, p.Group, strconv.Itoa(p.Ranks), strconv.Itoa(p.Replicas), Dims(p.Grid), Dims(p.Local),
			Dims(p.Global()), strconv.FormatFloat(p.Seconds, 'g', 6, 64), strconv.FormatFloat(p.Work, 'g', 6, 64),
			strconv.FormatFloat(p.Bytes, 'g', 6, 64)})
	}
	w.Flush()
	return errors.Join(w.Error(), f.Sync(), f.Close())
}

// ReadCSV reads points written by AppendCSV.
func ReadCSV(r io.Reader) ([]Point, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || !slices.Equal(rows[0], csvHeader) {
		return nil, fmt.Errorf("not a pfmpi scaling CSV: the header should be %s", strings.Join(csvHeader, ","))
	}
	var pts []Point
	for i, row := range rows[1:] {
		var p Point
		var errs []error
		num := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			errs = append(errs, err)
			return x
		}
		dims := func(s string) []int {
			d, err := ParseDims(s)
			errs = append(errs, err)
			return d
		}
		p.Scaling, p.Op, p.Backend, p.Group = row[0], row[1], row[2], row[3]
		p.Ranks, p.Replicas = int(num(row[4])), int(num(row[5]))
		p.Grid, p.Local = dims(row[6]), dims(row[7])
		p.Seconds, p.Work, p.Bytes = num(row[9]), num(row[10]), num(row[11])
		if p.Scaling != "weak" && p.Scaling != "strong" {
			errs = append(errs, fmt.Errorf("scaling %q is neither weak nor strong", p.Scaling))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("row %d: %w", i+2, err)
		}
		pts = append(pts, p)
	}
	return pts, nil
}

// Efficiency is the scaling efficiency of a point against the one-rank
// point of its series (same op, group, backend and, for weak scaling, local
// volume, for strong scaling lattice): weak T₁/T_P, strong T₁/(P·T_P), with
// times per unit of work; 1 is perfect.
type Efficiency struct {
	Point
	Base       float64 // time per unit of work on one rank
	Efficiency float64
}

// Best keeps the fastest of repeated measurements of one configuration
// (scaling, op, backend, group, local volume, ranks, replicas, grid), in
// the order they first appear.
func Best(pts []Point) []Point {
	index := map[string]int{}
	var out []Point
	for _, p := range pts {
		k := series(p) + "|" + Dims(p.Local) + "|" + strconv.Itoa(p.Ranks) + "|" + strconv.Itoa(p.Replicas) + "|" + Dims(p.Grid)
		i, ok := index[k]
		switch {
		case !ok:
			index[k] = len(out)
			out = append(out, p)
		case p.PerWork() < out[i].PerWork():
			out[i] = p
		}
	}
	return out
}

// series names the series a point belongs to: what its one-rank reference
// shares with it.
func series(p Point) string {
	size := Dims(p.Local)
	if p.Scaling == "strong" {
		size = Dims(p.Global())
	}
	return p.Scaling + "|" + p.Op + "|" + p.Backend + "|" + p.Group + "|" + size
}

// Efficiencies pairs every configuration with the one-rank reference of
// its series. Of repeated measurements of one configuration the fastest
// counts, as in STREAM: on a shared machine the others measure the
// neighbours too.
func Efficiencies(pts []Point) []Efficiency {
	best := Best(pts)
	base := map[string]float64{}
	for _, p := range best {
		if p.Ranks == 1 {
			base[series(p)] = p.PerWork()
		}
	}
	var out []Efficiency
	for _, p := range best {
		b, ok := base[series(p)]
		if !ok || p.Op == "halo" {
			continue
		}
		e := b / p.PerWork()
		if p.Scaling == "strong" {
			e /= float64(p.Ranks)
		}
		out = append(out, Efficiency{Point: p, Base: b, Efficiency: e})
	}
	slices.SortStableFunc(out, func(a, b Efficiency) int {
		if c := strings.Compare(a.Scaling+a.Op+a.Backend, b.Scaling+b.Op+b.Backend); c != 0 {
			return c
		}
		return a.Ranks - b.Ranks
	})
	return out
}

// WriteTable writes the efficiencies as a Markdown table.
func WriteTable(w io.Writer, es []Efficiency) {
	fmt.Fprintln(w, "| scaling | op | backend | group | ranks | replicas × grid | local | global | time per unit | 1-rank time | efficiency |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, e := range es {
		unit := "op"
		if e.Work > 0 {
			unit = "CG iteration"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %d × %s | %s | %s | %s / %s | %s | %.1f %% |\n", e.Scaling, e.Op, e.Backend, e.Group, e.Ranks, e.Replicas,
			Dims(e.Grid), Dims(e.Local), Dims(e.Global()), seconds(e.PerWork()), unit, seconds(e.Base), 100*e.Efficiency)
	}
}

// seconds formats a time with a unit people read.
func seconds(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	case math.IsNaN(s):
		return "—"
	}
	return fmt.Sprintf("%.3g µs", s*1e6)
}
