// Command diagnose measures, layer by layer, what a trained 2D SU(3)
// pure-gauge flow does (issue 18's diagnosis).
//
//	go run ./experiments/su3-flow-diagnosis/diagnose [-n 8192] [-json FILE] OUTPUT_DIR...
//
// OUTPUT_DIR is the output directory of a `pfmpi run` of a pure-gauge SU(3)
// run file: its config.toml rebuilds the flow and its last training
// checkpoint supplies the parameters. For k = 0 … K layers, on n
// configurations drawn from the flow truncated after k layers (q_k):
//
//   - KL(q_k‖p) = E[log q_k + S] + log Z, exact (log Z from the character
//     expansion), and the ESS of the n draws;
//   - the marginal KL of every plaquette: on the torus p is, up to one
//     global constraint, the product of single-plaquette densities
//     p₁(P) ∝ e^{(β/3) Re Tr P} (Haar measure), so
//     KL(q‖p) = Σ_x KL(q_x‖p₁) + TC(q), TC the total correlation of the
//     plaquettes under q. KL(q_x‖p₁) is estimated from a histogram of Tr P
//     (the trace fixes the conjugacy class) against the exact bin masses,
//     with the Miller–Madow bias correction; TC = KL − Σ_x KL(q_x‖p₁);
//   - the marginal KL per role of the plaquettes in layer k (active,
//     passive, frozen; for string layers passive is the seam) and, after
//     the last layer, per the plaquette's last event (last touched
//     actively, or passively after its last activation).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/cmplx"
	"os"
	"path/filepath"

	"pfmpi/config"
	"pfmpi/coupling"
	"pfmpi/decomp"
	"pfmpi/flow"
	"pfmpi/group"
	"pfmpi/measure"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
	"pfmpi/su3"
)

func main() {
	n := flag.Int("n", 8192, "configurations per truncation (≥ 8192 for sampling ESS)")
	batch := flag.Int("batch", 512, "configurations per forward pass")
	bins := flag.Int("bins", 32, "histogram bins per axis of Tr P")
	jsonOut := flag.String("json", "", "write the results to this JSON file")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: diagnose [-n N] [-json FILE] OUTPUT_DIR...")
		os.Exit(2)
	}
	var all []Result
	for _, dir := range flag.Args() {
		r, err := diagnose(dir, *n, *batch, *bins)
		if err != nil {
			fmt.Fprintf(os.Stderr, "diagnose: %s: %v\n", dir, err)
			os.Exit(1)
		}
		r.print()
		all = append(all, r)
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(all, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "diagnose:", err)
			os.Exit(1)
		}
	}
}

// Result is the diagnosis of one trained model.
type Result struct {
	Run         string      `json:"run"`
	Plaquettes  int         `json:"plaquettes"`
	Samples     int         `json:"samples"`
	Layers      []LayerStat `json:"layers"`       // after k = 0 … K layers
	LastActive  float64     `json:"last_active"`  // mean marginal KL, plaquettes last touched actively
	LastPassive float64     `json:"last_passive"` // … passively after their last activation
	NLastActive int         `json:"n_last_active"`
}

// LayerStat is the model truncated after K layers.
type LayerStat struct {
	K          int                `json:"k"`
	KL         float64            `json:"kl"`
	ESS        float64            `json:"ess"`
	SumMarg    float64            `json:"sum_marginal_kl"`
	TC         float64            `json:"total_correlation"`
	ByRole     map[string]float64 `json:"marginal_kl_by_role,omitempty"` // roles in layer K−1
	Plaquette  float64            `json:"plaquette"`
	PerSiteMKL []float64          `json:"marginal_kl_per_plaquette"`
}

func (r Result) print() {
	fmt.Printf("%s: %d plaquettes, %d samples per truncation\n", r.Run, r.Plaquettes, r.Samples)
	fmt.Printf("%4s %9s %8s %9s %9s %9s %9s %9s %8s\n", "k", "KL", "ESS", "ΣmargKL", "TC", "active", "passive", "frozen", "⟨P⟩")
	for _, l := range r.Layers {
		fmt.Printf("%4d %9.4f %8.4f %9.4f %9.4f %9.4f %9.4f %9.4f %8.4f\n", l.K, l.KL, l.ESS, l.SumMarg, l.TC,
			l.ByRole["active"], l.ByRole["passive"], l.ByRole["frozen"], l.Plaquette)
	}
	fmt.Printf("after the last layer: mean marginal KL %.4f over %d plaquettes last touched actively, %.4f over %d touched passively after\n\n",
		r.LastActive, r.NLastActive, r.LastPassive, r.Plaquettes-r.NLastActive)
}

func diagnose(dir string, n, batch, bins int) (Result, error) {
	cfg, err := config.Load(filepath.Join(dir, "config.toml"))
	if err != nil {
		return Result{}, err
	}
	if cfg.Lattice.GaugeGroup() != group.SU3 || cfg.Action.Kappa != 0 {
		return Result{}, errors.New("not a pure-gauge SU(3) run")
	}
	dims := cfg.Lattice.Dims
	lat, err := decomp.NewLattice(dims, []int{1, 1}, false)
	if err != nil {
		return Result{}, err
	}
	ly, err := lat.Layout(0)
	if err != nil {
		return Result{}, err
	}
	geo := nnlayers.NewGeometry(mpi.Self(), ly)
	defer geo.Close()
	prec, err := nnlayers.ParsePrecision(cfg.Model.Precision)
	if err != nil {
		return Result{}, err
	}
	mc := cfg.Model
	f, err := flow.NewSU3(geo, flow.SU3Spec{
		Layers: mc.GaugeLayers, Hidden: mc.GaugeHidden, Kernel: mc.GaugeKernel, Dilations: mc.GaugeDilations,
		Modes: mc.SpectralModes, Steps: mc.SpectralSteps, Bound: mc.SpectralBound, Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain,
		Precision: prec, Strings: mc.SU3Coupling != "plaquette", Marginal: mc.SU3MarginalLayers(), Bridge: mc.SU3BridgePlaquettes()})
	if err != nil {
		return Result{}, err
	}
	if err := loadParams(filepath.Join(dir, "checkpoints"), f.Params()); err != nil {
		return Result{}, err
	}
	v := ly.Volume()
	logZ, err := measure.SU3LogPartition(cfg.Action.Beta, v)
	if err != nil {
		return Result{}, err
	}
	ex := exactBins(cfg.Action.Beta, bins)
	res := Result{Run: dir, Plaquettes: v, Samples: n}
	tape := nnlayers.NewTape(0)
	defer tape.Close()
	tape.NoGrad = true
	key := rng.New(uint64(cfg.Run.Seed), "diagnose")
	up := neighbours(ly)
	var lastRole [][]coupling.Role
	for k := 0; k <= f.Layers(); k++ {
		g, err := f.Prefix(k)
		if err != nil {
			return Result{}, err
		}
		var roles []coupling.Role
		if k > 0 {
			if roles, err = f.LayerRoles(k - 1); err != nil {
				return Result{}, err
			}
			lastRole = append(lastRole, roles)
		}
		hist := make([][]float64, v) // per plaquette, per bin
		for x := range hist {
			hist[x] = make([]float64, bins*bins)
		}
		var logw []float64
		sumLogQS, sumP := 0.0, 0.0
		for first := 0; first < n; first += batch {
			b := min(batch, n-first)
			tape.Reset()
			z := g.Prior(b, first, key)
			u, logJ, err := g.Forward(tape, z)
			if err != nil {
				return Result{}, err
			}
			for m := range b {
				logq, s := 0.0, 0.0
				for x := range v {
					logq -= logJ.Data[logJ.At(x, m, 0)]
					tr := plaquette(u, up, x, m).Trace()
					s -= cfg.Action.Beta / 3 * real(tr)
					sumP += real(tr) / 3
					hist[x][binOf(tr, bins)]++
				}
				sumLogQS += logq + s
				logw = append(logw, -s-logq)
			}
		}
		st := LayerStat{K: k, KL: sumLogQS/float64(n) + logZ, ESS: flow.ESS(logw), Plaquette: sumP / float64(n*v)}
		st.PerSiteMKL = make([]float64, v)
		roleSum, roleN := map[string]float64{}, map[string]int{}
		for x := range v {
			st.PerSiteMKL[x] = histKL(hist[x], ex)
			st.SumMarg += st.PerSiteMKL[x]
			if roles != nil {
				roleSum[roles[x].String()] += st.PerSiteMKL[x]
				roleN[roles[x].String()]++
			}
		}
		st.TC = st.KL - st.SumMarg
		if roles != nil {
			st.ByRole = map[string]float64{}
			for r, s := range roleSum {
				st.ByRole[r] = s / float64(roleN[r])
			}
		}
		res.Layers = append(res.Layers, st)
		fmt.Fprintf(os.Stderr, "%s: %d/%d layers: KL %.4f\n", dir, k, f.Layers(), st.KL)
	}
	last := res.Layers[len(res.Layers)-1].PerSiteMKL
	sa, sp := 0.0, 0.0
	for x := range v {
		active := false // the plaquette's last event
		for k := len(lastRole) - 1; k >= 0; k-- {
			if r := lastRole[k][x]; r != coupling.Frozen {
				active = r == coupling.Active
				break
			}
		}
		if active {
			sa += last[x]
			res.NLastActive++
		} else {
			sp += last[x]
		}
	}
	if res.NLastActive > 0 {
		res.LastActive = sa / float64(res.NLastActive)
	}
	if np := v - res.NLastActive; np > 0 {
		res.LastPassive = sp / float64(np)
	}
	return res, nil
}

// loadParams reads the parameters of the latest training checkpoint.
func loadParams(dir string, ps nnlayers.Params) error {
	var ck struct{ File string }
	data, err := os.ReadFile(filepath.Join(dir, "train.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &ck); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "train.json"), err)
	}
	fh, err := os.Open(filepath.Join(dir, ck.File))
	if err != nil {
		return err
	}
	defer fh.Close()
	return nnlayers.ReadParams(fh, ps)
}

// neighbours returns the site tables x + 0̂ and x + 1̂.
func neighbours(ly *decomp.Layout) [2][]int {
	dims := ly.Lattice().Dims()
	var up [2][]int
	x, y := make([]int, 2), make([]int, 2)
	index := map[[2]int]int{}
	for s := range ly.Volume() {
		ly.GlobalCoord(s, x)
		index[[2]int{x[0], x[1]}] = s
	}
	for d := range 2 {
		up[d] = make([]int, ly.Volume())
		for s := range ly.Volume() {
			ly.GlobalCoord(s, x)
			copy(y, x)
			y[d] = (x[d] + 1) % dims[d]
			up[d][s] = index[[2]int{y[0], y[1]}]
		}
	}
	return up
}

func link(u *nnlayers.Tensor, s, m, d int) su3.Matrix {
	var a su3.Matrix
	base := u.At(s, m, 18*d)
	for i := range a {
		a[i] = complex(u.Data[base+2*i], u.Data[base+2*i+1])
	}
	return a
}

// plaquette is P_01(x) = U_0(x) U_1(x+0̂) U_0(x+1̂)† U_1(x)†.
func plaquette(u *nnlayers.Tensor, up [2][]int, x, m int) su3.Matrix {
	return link(u, x, m, 0).Mul(link(u, up[0][x], m, 1)).MulAdj(link(u, up[1][x], m, 0)).MulAdj(link(u, x, m, 1))
}

// The histogram of Tr P covers the deltoid Re z ∈ [−3/2, 3], |Im z| ≤ 3√3/2.
const (
	reLo, reHi = -1.5, 3.0
	imHi       = 2.6
)

func binOf(z complex128, bins int) int {
	i := int((real(z) - reLo) / (reHi - reLo) * float64(bins))
	j := int((imag(z) + imHi) / (2 * imHi) * float64(bins))
	return min(max(i, 0), bins-1)*bins + min(max(j, 0), bins-1)
}

// exactBins returns the single-plaquette probabilities of the bins of Tr P
// under p₁ ∝ e^{(β/3) Re Tr P} dU, from the Weyl integration formula on a
// fine grid of eigenphases.
func exactBins(beta float64, bins int) []float64 {
	const grid = 1200
	p := make([]float64, bins*bins)
	total := 0.0
	for i := range grid {
		for j := range grid {
			t1 := 2 * math.Pi * (float64(i) + 0.5) / grid
			t2 := 2 * math.Pi * (float64(j) + 0.5) / grid
			e1, e2, e3 := cmplx.Exp(complex(0, t1)), cmplx.Exp(complex(0, t2)), cmplx.Exp(complex(0, -t1-t2))
			d := (e1 - e2) * (e1 - e3) * (e2 - e3)
			z := e1 + e2 + e3
			w := real(d*cmplx.Conj(d)) * math.Exp(beta/3*real(z))
			p[binOf(z, bins)] += w
			total += w
		}
	}
	for i := range p {
		p[i] /= total
	}
	return p
}

// histKL estimates KL(q‖p) from counts of q against the exact bin masses
// p, with the Miller–Madow correction −(m − 1)/(2N) for m occupied bins.
func histKL(counts, p []float64) float64 {
	n, m := 0.0, 0
	for _, c := range counts {
		n += c
	}
	kl := 0.0
	for i, c := range counts {
		if c == 0 {
			continue
		}
		m++
		q := c / n
		kl += q * math.Log(q/max(p[i], 1e-300))
	}
	return kl - float64(m-1)/(2*n)
}
