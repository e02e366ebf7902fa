package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"pfmpi/group"
)

// The model's own numbers, fed back as measurements, calibrate it to
// itself: compute per site from one-rank points, latency and bandwidth
// from two halo sizes.
func TestCalibrateRecoversTheModel(t *testing.T) {
	truth := Model{Site: map[string]float64{"dslash/u1/2": 30e-9, "cg/u1/2": 100e-9}, Latency: 3e-6, Bandwidth: 4e9}
	var pts []Point
	for _, op := range []string{"dslash", "cg"} {
		pts = append(pts, Point{Op: op, Group: "u1", Ranks: 1, Replicas: 1, Grid: []int{1, 1}, Local: []int{64, 64},
			Seconds: truth.Site[op+"/u1/2"] * 64 * 64})
	}
	for _, l := range []int{64, 512} {
		b := float64(l) * spinorBytes(group.U1, 2) * 2 // two faces of one split direction
		pts = append(pts, Point{Op: "halo", Group: "u1", Ranks: 2, Replicas: 1, Grid: []int{1, 2}, Local: []int{l, l},
			Bytes: b, Seconds: 2*truth.Latency + b/truth.Bandwidth})
	}
	var m Model
	if err := Calibrate(pts, &m); err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Latency/truth.Latency-1) > 1e-9 || math.Abs(m.Bandwidth/truth.Bandwidth-1) > 1e-9 {
		t.Errorf("α, β = %g, %g; want %g, %g", m.Latency, m.Bandwidth, truth.Latency, truth.Bandwidth)
	}
	for k, c := range truth.Site {
		if math.Abs(m.Site[k]/c-1) > 1e-12 {
			t.Errorf("%s: %g, want %g", k, m.Site[k], c)
		}
	}
}

// A prediction worked by hand: CG on 64×64 U(1) over 4 ranks is a 4 × 1
// grid (as little surface as 2 × 2, fewer messages) of 16 × 64 blocks: one
// split direction with two faces of 64 sites × 32 bytes, two exchanges and
// two global sums of ⌈log₂ 4⌉ = 2 stages per iteration.
func TestPredictByHand(t *testing.T) {
	m := Model{Site: map[string]float64{"cg/u1/2": 100e-9}, Latency: 2e-6, Bandwidth: 1e9, SumLatency: 5e-6}
	p := m.Predict("cg", group.U1, []int{64, 64}, 4)
	compute := 100e-9 * 16 * 64
	halo := 2 * (2e-6 + 64*32/1e9)
	want := compute + 2*halo + 2*5e-6*2
	if p.Unavailable != "" || Dims(p.Grid) != "4x1" || math.Abs(p.Seconds-want) > 1e-15 || math.Abs(p.Efficiency-compute/want) > 1e-12 {
		t.Errorf("got %+v, want %g s", p, want)
	}
	if p := m.Predict("cg", group.U1, []int{16, 16}, 4096); p.Unavailable == "" {
		t.Errorf("16×16 over 4096 ranks predicted: %+v", p)
	}
	if p := m.Predict("cg", group.SU3, []int{16, 16}, 4); p.Unavailable == "" {
		t.Errorf("predicted without a calibration point: %+v", p)
	}
	// One replica has no all-reduce; more replicas pay for the gradient.
	m.Site["train_step/u1/2"] = 1e-3
	one, many := m.TrainReplicas(group.U1, []int{16, 16}, 1, 1000), m.TrainReplicas(group.U1, []int{16, 16}, 64, 1000)
	if one.Efficiency != 1 || many.Efficiency >= 1 || many.Seconds <= one.Seconds {
		t.Errorf("replicas: %+v, %+v", one, many)
	}
}

func TestScalingCSVAndEfficiencies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.csv")
	pts := []Point{
		{Scaling: "weak", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 1, Replicas: 1, Grid: []int{1, 1}, Local: []int{8, 8}, Seconds: 2},
		{Scaling: "weak", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 2, Replicas: 1, Grid: []int{1, 2}, Local: []int{8, 8}, Seconds: 4},
		{Scaling: "weak", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 2, Replicas: 1, Grid: []int{1, 2}, Local: []int{8, 8}, Seconds: 2.5}, // faster repeat
		{Scaling: "weak", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 1, Replicas: 1, Grid: []int{1, 1}, Local: []int{8, 8}, Seconds: 3},   // slower repeat
		{Scaling: "weak", Op: "hmc", Backend: "mpi", Group: "u1", Ranks: 1, Replicas: 1, Grid: []int{1, 1}, Local: []int{8, 8}, Seconds: 10, Work: 100},
		{Scaling: "weak", Op: "hmc", Backend: "mpi", Group: "u1", Ranks: 2, Replicas: 1, Grid: []int{1, 2}, Local: []int{8, 8}, Seconds: 12, Work: 150},
	}
	if err := AppendCSV(path, pts[:3]); err != nil {
		t.Fatal(err)
	}
	if err := AppendCSV(path, pts[3:]); err != nil { // appends without a second header
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	back, err := ReadCSV(bytes.NewReader(b))
	if err != nil || len(back) != len(pts) {
		t.Fatalf("read back %d points: %v\n%s", len(back), err, b)
	}
	es := Efficiencies(back)
	want := map[string]float64{"cg2": 2 / 2.5, "hmc2": 0.1 / 0.08} // hmc per CG iteration
	for _, e := range es {
		if w, ok := want[e.Op+string(rune('0'+e.Ranks))]; ok && math.Abs(e.Efficiency-w) > 1e-12 {
			t.Errorf("%s on %d ranks: efficiency %g, want %g", e.Op, e.Ranks, e.Efficiency, w)
		}
	}
	if len(es) != 4 {
		t.Errorf("%d efficiencies, want 4 (one per op and rank count)", len(es))
	}
	// Strong scaling: the same lattice on two ranks, T₁/(2·T₂).
	strong := []Point{
		{Scaling: "strong", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 1, Replicas: 1, Grid: []int{1, 1}, Local: []int{16, 16}, Seconds: 2},
		{Scaling: "strong", Op: "cg", Backend: "mpi", Group: "u1", Ranks: 2, Replicas: 1, Grid: []int{1, 2}, Local: []int{16, 8}, Seconds: 1.25},
	}
	if es := Efficiencies(strong); len(es) != 2 || math.Abs(es[1].Efficiency-0.8) > 1e-12 {
		t.Errorf("strong scaling: %+v, want efficiency 0.8 on 2 ranks", es)
	}
	if _, err := ReadCSV(bytes.NewReader([]byte("a,b\n1,2\n"))); err == nil {
		t.Error("a foreign CSV was read")
	}
}

// TestWeakGrid: ranks spread over the directions, largest prime factors first,
// space before time among equals.
func TestWeakGrid(t *testing.T) {
	for _, c := range []struct {
		nd, ranks int
		want      string
	}{{2, 1, "[1 1]"}, {2, 2, "[1 2]"}, {2, 4, "[2 2]"}, {2, 6, "[2 3]"}, {4, 2, "[1 1 1 2]"}, {4, 16, "[2 2 2 2]"}, {2, 8, "[2 4]"}} {
		if got := fmt.Sprint(WeakGrid(c.nd, c.ranks)); got != c.want {
			t.Errorf("WeakGrid(%d, %d) = %s, want %s", c.nd, c.ranks, got, c.want)
		}
	}
}
