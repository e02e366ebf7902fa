// Command holonomy measures how much of the Nf = 2 Schwinger marginal lives
// in the torus holonomies, which gauge-equivariant flows built from local
// plaquette context cannot shape.
//
//	go run ./experiments/time-to-ess/holonomy [-n 16] [-max 400] HMC_OUTPUT_DIR
//
// HMC_OUTPUT_DIR is the output of a U(1) `pfmpi run` with an [hmc] phase
// that saved configurations (hmc.save_every). On the L_0 × L_1 torus a U(1)
// field is fixed up to gauge by its plaquettes and two holonomies, the
// phases of Wilson lines winding the torus. Multiplying the time links of
// the slice x_0 = 0 by e^{iα} and the space links of the column x_1 = 0 by
// e^{iβ} shifts the time holonomies by α and the space ones by β and leaves
// every plaquette unchanged.
//
// Why it matters: the prior of a U(1) gauge flow has uniform holonomies
// independent of the plaquettes, and a coupling layer multiplies each
// active link by a phase that depends on plaquettes only, which shifts the
// holonomies by a function of the plaquettes: a uniform angle shifted stays
// uniform. So every such flow has q(α, β | plaquettes) = uniform exactly,
// while the target is p(α, β | P) ∝ det(D D†) at the twisted field (the
// gauge action does not see the twist). A flow that gets the plaquettes'
// marginal exactly right therefore has
//
//	ESS = 1 / E_P[ c(P) ],  c(P) = ⟨p²⟩_{α,β} / ⟨p⟩²_{α,β},
//	KL  = E_P[ KL(uniform ‖ p(·|P)) ],
//
// with P drawn from the target (the HMC configurations) and the averages
// over a uniform n × n grid of twists: the ceiling that better plaquette
// layers approach and cannot pass (a flow with a wrong plaquette marginal
// has its own weights on top). The tool prints both, and the ESS of the
// best holonomy density that ignores the plaquettes, q(h) = E_P p(h|P) on
// the grid of absolute holonomy angles (the time line at x_1 = 0, the space
// line at x_0 = 0; rounded to the grid): what a context-free holonomy layer
// could add.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"pfmpi/action"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/group"
	"pfmpi/mpi"
)

func main() {
	n := flag.Int("n", 16, "twist angles per holonomy (grid n × n)")
	maxCfg := flag.Int("max", 400, "configurations to use at most (evenly spaced)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: holonomy [-n 16] [-max 400] HMC_OUTPUT_DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *n, *maxCfg); err != nil {
		fmt.Fprintln(os.Stderr, "holonomy:", err)
		os.Exit(1)
	}
}

func run(dir string, n, maxCfg int) error {
	cfg, err := config.Load(filepath.Join(dir, "config.toml"))
	if err != nil {
		return err
	}
	if cfg.Lattice.GaugeGroup() != group.U1 || cfg.Action.Kappa == 0 || len(cfg.Lattice.Dims) != 2 {
		return fmt.Errorf("%s: not a 2D U(1) run with fermions", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "configs", "*.pfg"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("%s: no saved configurations (set hmc.save_every)", dir)
	}
	sort.Strings(files)
	if len(files) > maxCfg {
		var pick []string
		for i := range maxCfg {
			pick = append(pick, files[i*len(files)/maxCfg])
		}
		files = pick
	}
	lat, err := decomp.NewLattice(cfg.Lattice.Dims, []int{1, 1}, false)
	if err != nil {
		return err
	}
	ly, err := lat.Layout(0)
	if err != nil {
		return err
	}
	sp, err := gauge.NewSpace(mpi.Self(), ly, 1)
	if err != nil {
		return err
	}
	defer sp.Close()
	u := sp.NewField()
	op, err := dslash.NewWilson(u, cfg.Action.Kappa)
	if err != nil {
		return err
	}
	defer op.Close()
	det, err := action.NewExactDeterminant(mpi.Self(), op)
	if err != nil {
		return err
	}
	const nd = 2
	theta := make([]float64, ly.Volume()*nd)
	twisted := make([]float64, len(theta))
	x := make([]int, nd)
	var cs, kls []float64
	var abs [][]float64 // per configuration: p on the grid of absolute holonomy angles
	logp := make([]float64, n*n)
	for _, f := range files {
		if _, err := gaugeio.Load(u, f); err != nil {
			return err
		}
		u.Angles(theta)
		// The configuration's own holonomies: the time line at x_1 = 0 and
		// the space line at x_0 = 0, in grid bins.
		var h [2]float64
		for s := range ly.Volume() {
			ly.GlobalCoord(s, x)
			if x[1] == 0 {
				h[0] += theta[s*nd+0]
			}
			if x[0] == 0 {
				h[1] += theta[s*nd+1]
			}
		}
		var off [2]int
		for d := range 2 {
			off[d] = int(math.Round(h[d]/(2*math.Pi)*float64(n))) % n
			off[d] = (off[d] + n) % n
		}
		for a := range n {
			for b := range n {
				copy(twisted, theta)
				for s := range ly.Volume() {
					ly.GlobalCoord(s, x)
					if x[0] == 0 {
						twisted[s*nd+0] += 2 * math.Pi * float64(a) / float64(n)
					}
					if x[1] == 0 {
						twisted[s*nd+1] += 2 * math.Pi * float64(b) / float64(n)
					}
				}
				u.SetAngles(twisted)
				u.Exchange()
				s, err := det.Action() // −log det(D D†)
				if err != nil {
					return err
				}
				logp[a*n+b] = -s
			}
		}
		// p on the grid, normalised to mean 1: c = ⟨p²⟩, KL(u‖p) = −⟨log p⟩.
		mx := math.Inf(-1)
		for _, v := range logp {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for _, v := range logp {
			sum += math.Exp(v - mx)
		}
		mean := sum / float64(len(logp))
		c, kl := 0.0, 0.0
		pa := make([]float64, n*n)
		for i, v := range logp {
			p := math.Exp(v-mx) / mean
			c += p * p
			kl -= math.Log(p)
			a, b := i/n, i%n
			pa[((a+off[0])%n)*n+(b+off[1])%n] = p
		}
		abs = append(abs, pa)
		cs = append(cs, c/float64(len(logp)))
		kls = append(kls, kl/float64(len(logp)))
	}
	// The best holonomy density that ignores the plaquettes: q(h) = E_P p(h|P).
	q := make([]float64, n*n)
	for _, pa := range abs {
		for i, p := range pa {
			q[i] += p / float64(len(abs))
		}
	}
	var cq []float64
	for _, pa := range abs {
		c := 0.0
		for i, p := range pa {
			c += p * p / q[i]
		}
		cq = append(cq, c/float64(n*n))
	}
	mq, eq := meanErr(cq)
	mc, ec := meanErr(cs)
	mk, ek := meanErr(kls)
	sort.Float64s(cs)
	fmt.Printf("%s: %d configurations, %d × %d twists, κ = %g, dims %v\n", dir, len(files), n, n, cfg.Action.Kappa, cfg.Lattice.Dims)
	fmt.Printf("  E_P[c(P)]                 %.4g ± %.2g  (median %.4g, max %.4g)\n", mc, ec, cs[len(cs)/2], cs[len(cs)-1])
	fmt.Printf("  marginal ESS ceiling      %.4g ± %.2g  (a flow exact in the plaquettes, uniform in the holonomies)\n", 1/mc, ec/(mc*mc))
	fmt.Printf("  with q(h) = E_P p(h|P)    ESS %.4g ± %.2g  (a holonomy map that ignores the plaquettes)\n", 1/mq, eq/(mq*mq))
	fmt.Printf("  KL floor (nats)           %.4g ± %.2g  (the same flow's KL)\n", mk, ek)
	return nil
}

func meanErr(v []float64) (mean, err float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		err += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(err / float64(len(v)*(len(v)-1)))
}
