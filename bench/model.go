package bench

import (
	"errors"
	"fmt"
	"io"
	"math"

	"pfmpi/decomp"
	"pfmpi/group"
)

// Model is pfmpi's performance model: the time of an operation on P ranks
// is its compute time on the rank's block plus the halo messages it sends
// plus its global sums,
//
//	T = c·V_loc + n_h · Σ_{μ split} 2·(α + S_μ·b/β) + n_r · α_r·⌈log₂ P⌉
//
// with V_loc the sites per rank, S_μ = V_loc/L_μ the sites of a face, b
// the bytes per face site of one exchange (a spinor: N_s·N_c·16), n_h the
// halo exchanges and n_r the global sums per operation. The messages of
// the 2 faces of each split direction are counted one after the other (no
// overlap of communication with computation: an upper bound). Training
// adds the all-reduce of the gradient over the replicas (ring:
// 2·(R−1)/R·8·N_params/β + 2·⌈log₂ R⌉·α).
type Model struct {
	// Per-site compute times (seconds) measured on one rank, keyed by
	// op/group/dimension, e.g. "cg/su3/4".
	Site map[string]float64
	// HMCIterations is a trajectory's cost in CG iterations (measured
	// trajectory time over CG iteration time on one rank), keyed like Site.
	HMCIterations map[string]float64
	Latency       float64 // α: seconds per message
	Bandwidth     float64 // β: bytes per second per rank
	SumLatency    float64 // α_r: seconds per stage of a global sum
}

// key names a per-site constant.
func key(op, group string, nd int) string { return fmt.Sprintf("%s/%s/%d", op, group, nd) }

// Calibrate sets the model's compute constants from one-rank points and
// its latency and bandwidth from halo points on two ranks with two local
// volumes (time = messages·α + bytes/β fitted through both). Without halo
// points the network constants are left as they are.
func Calibrate(pts []Point, m *Model) error {
	if m.Site == nil {
		m.Site, m.HMCIterations = map[string]float64{}, map[string]float64{}
	}
	for _, p := range pts {
		if p.Ranks != 1 || p.Op == "halo" {
			continue
		}
		v := float64(Volume(p.Local))
		k := key(p.Op, p.Group, len(p.Local))
		if c, ok := m.Site[k]; !ok || p.Seconds/v < c {
			m.Site[k] = p.Seconds / v
			if p.Op == "hmc" && p.Work > 0 {
				m.HMCIterations[k] = p.Work
			}
		}
	}
	// Halo points on two ranks: T = m·α + bytes/β with m the messages of
	// one exchange, fitted by least squares in (α, 1/β).
	var smm, smb, sbb, smt, sbt float64
	n := 0
	for _, p := range Best(pts) {
		if p.Op != "halo" || p.Ranks != 2 || p.Bytes <= 0 {
			continue
		}
		m := float64(2 * splitDirections(p.Grid))
		smm, smb, sbb = smm+m*m, smb+m*p.Bytes, sbb+p.Bytes*p.Bytes
		smt, sbt = smt+m*p.Seconds, sbt+p.Bytes*p.Seconds
		n++
	}
	if n == 0 {
		return nil
	}
	det := smm*sbb - smb*smb
	if n < 2 || det <= 0 {
		return errors.New("bench: the halo points on two ranks do not have two message sizes; cannot fit latency and bandwidth")
	}
	alpha, invBeta := (smt*sbb-sbt*smb)/det, (smm*sbt-smb*smt)/det
	if alpha < 0 || invBeta <= 0 {
		return fmt.Errorf("bench: the halo times do not grow with the message size (fit α = %.3g s, 1/β = %.3g s/B); cannot fit latency and bandwidth", alpha, invBeta)
	}
	m.Latency, m.Bandwidth = alpha, 1/invBeta
	return nil
}

// Volume is the number of sites of extents d.
func Volume(d []int) int {
	v := 1
	for _, x := range d {
		v *= x
	}
	return v
}

func splitDirections(grid []int) int {
	n := 0
	for _, g := range grid {
		if g > 1 {
			n++
		}
	}
	return n
}

// spinorBytes is b for a Wilson spinor of group g in nd dimensions.
func spinorBytes(g group.Group, nd int) float64 {
	ns := 2.0
	if nd == 4 {
		ns = 4
	}
	return ns * float64(g.Nc()) * 16
}

// comm is the halo time of one exchange on a block local with grid.
func (m *Model) comm(local, grid []int, bytesPerSite float64) float64 {
	t := 0.0
	v := float64(Volume(local))
	for mu, g := range grid {
		if g > 1 {
			t += 2 * (m.Latency + v/float64(local[mu])*bytesPerSite/m.Bandwidth)
		}
	}
	return t
}

func (m *Model) sum(ranks int) float64 {
	if ranks < 2 {
		return 0
	}
	return m.SumLatency * math.Ceil(math.Log2(float64(ranks)))
}

// Prediction is the model's time of an operation on a lattice and ranks.
type Prediction struct {
	Op, Group   string
	Dims, Grid  []int
	Ranks       int
	Seconds     float64 // per operation
	Compute     float64 // the compute part
	Efficiency  float64 // strong scaling: T(1 rank) / (P · T(P))
	Unavailable string  // why there is no prediction
}

// Predict models op (dslash, cg, hmc) of group on a lattice dims split over
// ranks by the least-surface grid.
func (m *Model) Predict(op string, g group.Group, dims []int, ranks int) Prediction {
	p := Prediction{Op: op, Group: g.String(), Dims: dims, Ranks: ranks}
	group := p.Group
	nd := len(dims)
	c, ok := m.Site[key(op, group, nd)]
	if !ok {
		p.Unavailable = fmt.Sprintf("no one-rank %s/%s %dD point to calibrate on", op, group, nd)
		return p
	}
	grid, err := decomp.AutoGrid(dims, ranks, true)
	if err != nil {
		p.Unavailable = "the lattice does not split over these ranks"
		return p
	}
	p.Grid = grid
	local := make([]int, nd)
	for i := range dims {
		local[i] = dims[i] / grid[i]
	}
	b := spinorBytes(g, nd)
	v := float64(Volume(local))
	p.Compute = c * v
	switch op {
	case "dslash":
		p.Seconds = p.Compute + m.comm(local, grid, b)
	case "cg":
		p.Seconds = p.Compute + 2*m.comm(local, grid, b) + 2*m.sum(ranks)
	case "hmc":
		// A trajectory costs n CG iterations (forces, actions, heat
		// bath), each with a CG iteration's messages and sums.
		n, ok := m.HMCIterations[key("hmc", group, nd)]
		if !ok {
			p.Unavailable = fmt.Sprintf("no one-rank hmc/%s %dD point with CG iterations", group, nd)
			return p
		}
		p.Seconds = p.Compute + n*(2*m.comm(local, grid, b)+2*m.sum(ranks))
	default:
		p.Unavailable = "no model for " + op
		return p
	}
	// T(1 rank) = c·V = P·c·V_loc: the efficiency is compute over total.
	p.Efficiency = p.Compute / p.Seconds
	return p
}

// TrainReplicas models one training step with the batch split over
// replicas (each holding the whole lattice), with the batch per replica of
// the calibration run: its compute per site plus the gradient all-reduce
// of params parameters.
func (m *Model) TrainReplicas(g group.Group, dims []int, replicas, params int) Prediction {
	group := g.String()
	p := Prediction{Op: "train_replicas", Group: group, Dims: dims, Ranks: replicas, Grid: make([]int, len(dims))}
	for i := range p.Grid {
		p.Grid[i] = 1
	}
	c, ok := m.Site[key("train_step", group, len(dims))]
	if !ok {
		p.Unavailable = fmt.Sprintf("no one-rank train_step/%s %dD point to calibrate on", group, len(dims))
		return p
	}
	p.Compute = c * float64(Volume(dims))
	bytes := 8 * float64(params)
	allreduce := 0.0
	if replicas > 1 {
		r := float64(replicas)
		allreduce = 2*(r-1)/r*bytes/m.Bandwidth + 2*math.Ceil(math.Log2(r))*m.Latency
	}
	p.Seconds = p.Compute + allreduce
	p.Efficiency = p.Compute / p.Seconds
	return p
}

// WritePredictions writes predictions as a Markdown table.
func WritePredictions(w io.Writer, ps []Prediction) {
	fmt.Fprintln(w, "| op | group | lattice | ranks | grid | local | predicted time | compute | efficiency |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, p := range ps {
		if p.Unavailable != "" {
			fmt.Fprintf(w, "| %s | %s | %s | %d | — | — | — | — | %s |\n", p.Op, p.Group, Dims(p.Dims), p.Ranks, p.Unavailable)
			continue
		}
		local := make([]int, len(p.Dims))
		for i := range local {
			local[i] = p.Dims[i] / p.Grid[i]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s | %.0f %% |\n", p.Op, p.Group, Dims(p.Dims), p.Ranks, Dims(p.Grid), Dims(local),
			seconds(p.Seconds), seconds(p.Compute), 100*p.Efficiency)
	}
}
