// Command pfdiag measures how well the pseudofermion flows q(φ|U) of a
// trained joint model (U(1) or SU(3)) fit their exact conditionals p(φ|U).
//
//	go run ./experiments/su3-nf2-l8/pfdiag [-n 32] [-modes 8] OUTPUT_DIR...
//
// OUTPUT_DIR is the output directory of a `pfmpi run` of a joint-model run
// file on a lattice small enough for dense matrices: its config.toml
// rebuilds the flows and its last training checkpoint supplies the
// parameters. Every pseudofermion layer is linear in φ (φ′_a = A φ_a +
// PTCN[U, φ_f]), so at a fixed gauge field U the conditional flow is a
// linear map φ = T(U) χ and q(φ|U) is the complex Gaussian of covariance
// T T†. Its columns are the flow's images of the unit vectors. The target
// of each monomial is p(φ|U) ∝ exp(−φ† K φ) with K the monomial's kernel
// (applied to unit vectors too). With λ_i the eigenvalues of H = T† K T
// (q's variance over p's along the modes; 1 for a perfect fit):
//
//	KL(q‖p) = Σ_i (λ_i − 1 − log λ_i),
//	E_q[w²] / E_q[w]² = Π_i λ_i² / (2λ_i − 1)   (infinite if some λ_i ≤ ½),
//
// w = p/q the conditional weight. The first is what reverse-KL training
// minimises; the second is the inverse of the conditional ESS at this U,
// which sets how far the joint ESS falls below the marginal one and how
// fast ESS(Npf) approaches it. A mode with λ ≤ ½ (q narrower than half of
// p's variance) gives weights of infinite variance.
//
// With -modes B it also says where among p's eigenmodes q errs: in the
// eigenbasis K v_a = k_a v_a, sorted by p's variance 1/k_a (smallest first:
// the lowest modes of the Dirac operator, for every monomial) and cut into
// B bins, the whitened error E_ab = √(k_a k_b) v_a†TT†v_b − δ_ab (zero for
// a perfect fit) gives ½ Σ |E_ab|² per pair of bins, the KL to second order,
// and E_aa the variance ratio per bin: a concentrated error (a few low
// modes) and a diffuse one (small errors between all modes, growing with
// the volume) call for different cures.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/gonum/mat"

	"pfmpi/action"
	"pfmpi/config"
	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/flow"
	"pfmpi/gauge"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/pfflow"
	"pfmpi/rng"
)

func main() {
	n := flag.Int("n", 32, "gauge fields drawn from the gauge flow")
	flag.IntVar(&modeBins, "modes", 0, "also print, in this many bins of p's eigenmodes (smallest variance first), q's variance over p's along them")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: pfdiag [-n N] OUTPUT_DIR...")
		os.Exit(2)
	}
	for _, dir := range flag.Args() {
		if err := diagnose(dir, *n); err != nil {
			fmt.Fprintf(os.Stderr, "pfdiag: %s: %v\n", dir, err)
			os.Exit(1)
		}
	}
}

// modeBins is the -modes flag: bins of the target's eigenmodes for the
// per-mode variance ratios (0: none).
var modeBins int

// stats accumulates one monomial's measurements over gauge fields.
type stats struct {
	kl, logDet, logESS []float64
	lambdas            []float64
	modeRatio, modeKL  []float64 // per bin of p's eigenmodes: mean of r, Σ (r − 1 − log r)
	narrow             int       // modes with λ ≤ ½
}

func diagnose(dir string, n int) error {
	cfg, err := config.Load(filepath.Join(dir, "config.toml"))
	if err != nil {
		return err
	}
	if cfg.Action.Kappa == 0 || cfg.Model.Fermions != "pseudofermion" {
		return fmt.Errorf("not a joint model with fermions")
	}
	nc := cfg.Lattice.GaugeGroup().Nc()
	lat, err := decomp.NewLattice(cfg.Lattice.Dims, []int{1, 1}, false)
	if err != nil {
		return err
	}
	ly, err := lat.Layout(0)
	if err != nil {
		return err
	}
	geo := nnlayers.NewGeometry(mpi.Self(), ly)
	defer geo.Close()
	prec, err := nnlayers.ParsePrecision(cfg.Model.Precision)
	if err != nil {
		return err
	}
	mc := cfg.Model
	var f flow.GaugeFlow
	if nc == 3 {
		f, err = flow.NewSU3(geo, flow.SU3Spec{
			Layers: mc.GaugeLayers, Hidden: mc.GaugeHidden, Kernel: mc.GaugeKernel, Dilations: mc.GaugeDilations,
			Modes: mc.SpectralModes, Steps: mc.SpectralSteps, Bound: mc.SpectralBound, Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain,
			Precision: prec, Strings: mc.SU3Coupling != "plaquette", Marginal: mc.SU3MarginalLayers(), Bridge: mc.SU3BridgePlaquettes()})
	} else {
		var bridge int
		if mc.U1Marginal {
			bridge = mc.U1Bridge
		}
		f, err = flow.NewU1(geo, flow.U1Spec{
			Layers: mc.GaugeLayers, Hidden: mc.GaugeHidden, Kernel: mc.GaugeKernel, Dilations: mc.GaugeDilations,
			Transform: mc.GaugeTransform, Bins: mc.SplineBins, Mixtures: mc.NCPMixtures, Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain,
			Precision: prec, Marginal: mc.U1Marginal, Bridge: bridge, Holonomy: cfg.U1HolonomyLayer()})
	}
	if err != nil {
		return err
	}
	var parts []pfflow.Partition
	for _, p := range mc.PFPartition {
		part, err := pfflow.ParsePartition(p)
		if err != nil {
			return err
		}
		parts = append(parts, part)
	}
	monomials := len(cfg.Action.Hasenbusch) + 1
	pf, err := pfflow.New(geo, pfflow.Spec{Nc: nc, EvenOdd: cfg.Action.Precondition == "eo", Monomials: monomials, Layers: mc.PFLayers, MonomialLayers: mc.PFMonomialLayers,
		Partitions: parts, NPT: mc.NPT, Hidden: mc.PTHidden, ContextHidden: mc.PFContextHidden, Kernel: 3,
		ContextDilations: mc.PFContextDilations, HeadKernel: mc.PFHeadKernel,
		Seed: uint64(cfg.Run.Seed), Gain: mc.InitGain, Precision: prec, Polyakov: mc.PFPolyakov})
	if err != nil {
		return err
	}
	defer pf.Close()
	params := append(append(nnlayers.Params(nil), f.Params()...), pf.Params()...)
	step, err := loadParams(filepath.Join(dir, "checkpoints"), params)
	if err != nil {
		return err
	}

	// The sampling monomials (no training regulator) on a field of our own.
	sp, err := gauge.NewSpace(mpi.Self(), ly, nc)
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
	fer := action.Fermions{EvenOdd: cfg.Action.Precondition == "eo", Shifts: cfg.Action.Hasenbusch,
		Solves: action.Solves{MD: 1e-12, Action: 1e-13, MaxIter: 100000}}
	mons, err := action.NewPseudofermions(mpi.Self(), op, fer)
	if err != nil {
		return err
	}
	target, err := flow.NewTarget(u, action.NewGauge(u, cfg.Action.Beta))
	if err != nil {
		return err
	}
	if err := target.SetPseudofermions(mons, mons); err != nil {
		return err
	}
	nv := mons[0].Len() // complex components of a pseudofermion
	ch := pf.Channels()
	per := ch / 2
	sites := nv / per

	tape := nnlayers.NewTape(0)
	defer tape.Close()
	tape.NoGrad = true
	key := rng.New(uint64(cfg.Run.Seed), "pfdiag")
	tape.Reset()
	ug, _, err := f.Forward(tape, f.Prior(n, 0, key))
	if err != nil {
		return err
	}
	gauge1 := &nnlayers.Tensor{V: ug.V, B: n, C: ug.C, Data: append([]float64(nil), ug.Data...)}
	lk := f.Links(tape, ug) // U(1): e^{iθ} of the angles; SU(3): the links themselves
	links1 := &nnlayers.Tensor{V: lk.V, B: n, C: lk.C, Data: append([]float64(nil), lk.Data...)}
	st := make([]stats, monomials)
	tmat := mat.NewCDense(nv, nv, nil)
	kmat := mat.NewCDense(nv, nv, nil)
	e := make([]complex128, nv)
	col := make([]complex128, nv)
	const chunk = 16
	for m := range n {
		target.Load(gauge1, m)
		for i := range monomials {
			// The flow's columns T e_k, a chunk of unit vectors at a time (the
			// heads of a whole lattice's worth of batch members do not fit in
			// memory at 16 × 16).
			sumLogJ := 0.0
			for k0 := 0; k0 < nv; k0 += chunk {
				nb := min(chunk, nv-k0)
				tape.Reset()
				links := tape.Tensor(links1.V, nb, links1.C)
				for s := range links1.V {
					src := links1.Data[links1.At(s, m, 0) : links1.At(s, m, 0)+links1.C]
					for k := range nb {
						copy(links.Data[links.At(s, k, 0):], src)
					}
				}
				ctx, err := pf.Context(tape, links)
				if err != nil {
					return err
				}
				chi := tape.Tensor(gauge1.V, nb, ch)
				clear(chi.Data)
				for k := range nb {
					c := k0 + k
					chi.Data[chi.At(c/per, k, 2*(c%per))] = 1
				}
				phi, logJ, err := pf.Conditional(i).Forward(tape, links, ctx, chi)
				if err != nil {
					return err
				}
				if k0 == 0 {
					for s := range logJ.V {
						sumLogJ += logJ.Data[logJ.At(s, 0, 0)]
					}
				}
				for k := range nb {
					for j := range nv {
						b := phi.At(j/per, k, 2*(j%per))
						tmat.Set(j, k0+k, complex(phi.Data[b], phi.Data[b+1]))
					}
					// odd sites must stay zero with even/odd preconditioning
					for s := sites; s < phi.V; s++ {
						for c := range ch {
							if v := phi.Data[phi.At(s, k, c)]; v != 0 {
								return fmt.Errorf("monomial %d: odd site %d holds %g", i, s, v)
							}
						}
					}
				}
			}
			for k := range nv {
				clear(e)
				e[k] = 1
				if err := mons[i].Kernel(col, e); err != nil {
					return err
				}
				for j := range nv {
					kmat.Set(j, k, col[j])
				}
			}
			lam, logDetT, err := spectrum(tmat, kmat)
			if err != nil {
				return err
			}
			if m == 0 {
				fmt.Printf("  check monomial %d: Σ log J %.6f, log|det T|² %.6f\n", i, sumLogJ, logDetT)
			}
			kl, logDet, logESS := 0.0, 0.0, 0.0
			for _, l := range lam {
				kl += l - 1 - math.Log(l)
				logDet += math.Log(l)
				if l <= 0.5 {
					st[i].narrow++
					logESS = math.Inf(-1)
				} else {
					logESS += math.Log((2*l - 1) / (l * l))
				}
			}
			if modeBins > 0 {
				ratio, klm, err := modeRatios(tmat, kmat, modeBins)
				if err != nil {
					return err
				}
				if st[i].modeRatio == nil {
					st[i].modeRatio = make([]float64, 2*modeBins)
					st[i].modeKL = make([]float64, modeBins*modeBins)
				}
				for b := range ratio {
					st[i].modeRatio[b] += ratio[b] / float64(n)
				}
				for b := range klm {
					st[i].modeKL[b] += klm[b] / float64(n)
				}
			}
			st[i].kl = append(st[i].kl, kl)
			st[i].logDet = append(st[i].logDet, logDet)
			st[i].logESS = append(st[i].logESS, logESS)
			st[i].lambdas = append(st[i].lambdas, lam...)
		}
	}
	fmt.Printf("%s (step %d, %d gauge fields, %d complex components per pseudofermion)\n", dir, step, n, nv)
	fmt.Println("| monomial | KL(q‖p) nats | ± | Σ log λ (log-det mismatch) | sd over U | ESS_cond (median) | fields with ESS_cond = 0 | modes λ ≤ ½ | λ 1% | λ 50% | λ 99% | λ max |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for i, s := range st {
		mk, ek := meanErr(s.kl)
		md, sd := meanSD(s.logDet)
		ess := make([]float64, len(s.logESS))
		zero := 0
		for j, v := range s.logESS {
			ess[j] = math.Exp(v)
			if math.IsInf(v, -1) {
				zero++
			}
		}
		sort.Float64s(ess)
		sort.Float64s(s.lambdas)
		q := func(p float64) float64 { return s.lambdas[int(p*float64(len(s.lambdas)-1))] }
		fmt.Printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3g | %d/%d | %d | %.3f | %.3f | %.3f | %.3f |\n",
			mons[i].Name(), mk, ek, md, sd, ess[len(ess)/2], zero, n, s.narrow, q(0.01), q(0.5), q(0.99), s.lambdas[len(s.lambdas)-1])
	}
	if modeBins > 0 {
		fmt.Printf("\nq's covariance against p's along p's eigenmodes, %d bins of equal size, p's smallest variance first (the lowest modes of M, for every monomial)\n", modeBins)
		for i, s := range st {
			fmt.Printf("%s: mean q/p variance per bin:", mons[i].Name())
			for b := range modeBins {
				fmt.Printf(" %.3f", s.modeRatio[b])
			}
			fmt.Printf("\n  p's mean variance per bin:")
			for b := range modeBins {
				fmt.Printf(" %.3g", s.modeRatio[modeBins+b])
			}
			tot := 0.0
			for _, x := range s.modeKL {
				tot += x
			}
			fmt.Printf("\n  second-order KL ½|E_ab|² by bins (total %.3f):\n", tot)
			for a := range modeBins {
				fmt.Print("   ")
				for b := range modeBins {
					fmt.Printf(" %6.3f", s.modeKL[a*modeBins+b])
				}
				fmt.Println()
			}
		}
	}
	return nil
}

// modeRatios returns, in bins of the eigenmodes of K (largest eigenvalue k,
// i.e. p's smallest variance, first), the mean of r = k v†TT†v — q's
// variance over p's along the mode — and the second-order KL ½‖E‖²
// of the whitened error E_ab = √(k_a k_b) v_a†TT†v_b − δ_ab in blocks of
// bins × bins (row-major): where among p's modes q's covariance is wrong.
// The ratios' slice continues with p's mean variance 1/k per bin.
func modeRatios(t, k *mat.CDense, bins int) ([]float64, []float64, error) {
	n, _ := t.Dims()
	var eig mat.EigenSym
	if !eig.Factorize(realEmbedding(k), true) {
		return nil, nil, fmt.Errorf("eigendecomposition of K failed")
	}
	vals := eig.Values(nil) // ascending, every value twice
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	// one complex eigenvector per pair, largest k first
	v := mat.NewCDense(n, n, nil)
	kv := make([]float64, n)
	for c := range n {
		col := 2*n - 1 - 2*c
		kv[c] = vals[col]
		for i := range n {
			v.Set(i, c, complex(vecs.At(i, col), vecs.At(n+i, col)))
		}
	}
	cq := cmul(t, adjoint(t), false)       // T T†
	e := cmul(v, cmul(cq, v, false), true) // V† T T† V
	ratio := make([]float64, 2*bins)       // then p's mean variance per bin
	kl := make([]float64, bins*bins)
	for a := range n {
		ratio[a*bins/n] += kv[a] * real(e.At(a, a)) / float64(n/bins)
		ratio[bins+a*bins/n] += 1 / kv[a] / float64(n/bins)
		for b := range n {
			w := complex(math.Sqrt(kv[a]*kv[b]), 0) * e.At(a, b)
			if a == b {
				w -= 1
			}
			kl[(a*bins/n)*bins+b*bins/n] += 0.5 * real(w*conj(w))
		}
	}
	return ratio, kl, nil
}

// realEmbedding returns [[A, −B], [B, A]] for the Hermitian part of H =
// A + iB: every eigenvalue of H twice, the eigenvector z = x + iy as (x, y)
// and (−y, x).
func realEmbedding(h *mat.CDense) *mat.SymDense {
	n, _ := h.Dims()
	r := mat.NewSymDense(2*n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			z := (h.At(i, j) + conj(h.At(j, i))) / 2
			r.SetSym(i, j, real(z))
			r.SetSym(n+i, n+j, real(z))
			r.SetSym(i, n+j, -imag(z))
			r.SetSym(j, n+i, imag(z))
		}
	}
	return r
}

// adjoint returns a†.
func adjoint(a *mat.CDense) *mat.CDense {
	n, _ := a.Dims()
	c := mat.NewCDense(n, n, nil)
	for i := range n {
		for j := range n {
			c.Set(j, i, conj(a.At(i, j)))
		}
	}
	return c
}

// spectrum returns the eigenvalues of H = T† K T (Hermitian positive) and
// log|det T|².
func spectrum(t, k *mat.CDense) ([]float64, float64, error) {
	n, _ := t.Dims()
	kt := cmul(k, t, false)
	h := cmul(t, kt, true)
	var eig mat.EigenSym
	if !eig.Factorize(realEmbedding(h), false) {
		return nil, 0, fmt.Errorf("eigendecomposition failed")
	}
	all := eig.Values(nil)
	sort.Float64s(all)
	lam := make([]float64, n)
	for i := range lam {
		lam[i] = all[2*i]
	}
	// log|det T|² from the real embedding of T: det = |det T|²
	rt := mat.NewDense(2*n, 2*n, nil)
	for i := range n {
		for j := range n {
			z := t.At(i, j)
			rt.Set(i, j, real(z))
			rt.Set(n+i, n+j, real(z))
			rt.Set(i, n+j, -imag(z))
			rt.Set(n+i, j, imag(z))
		}
	}
	var lu mat.LU
	lu.Factorize(rt)
	ld, _ := lu.LogDet()
	return lam, ld, nil
}

// cmul returns a·b, or a†·b with adj.
func cmul(a, b *mat.CDense, adj bool) *mat.CDense {
	n, _ := a.Dims()
	c := mat.NewCDense(n, n, nil)
	row := make([]complex128, n)
	for i := range n {
		clear(row)
		for l := range n {
			ail := a.At(i, l)
			if adj {
				ail = conj(a.At(l, i))
			}
			if ail == 0 {
				continue
			}
			for j := range n {
				row[j] += ail * b.At(l, j)
			}
		}
		for j := range n {
			c.Set(i, j, row[j])
		}
	}
	return c
}

func conj(z complex128) complex128 { return complex(real(z), -imag(z)) }

func meanErr(x []float64) (float64, float64) {
	m, sd := meanSD(x)
	return m, sd / math.Sqrt(float64(len(x)))
}

func meanSD(x []float64) (float64, float64) {
	m := 0.0
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	s := 0.0
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	if len(x) > 1 {
		s /= float64(len(x) - 1)
	}
	return m, math.Sqrt(s)
}

// loadParams reads the parameters of the latest training checkpoint and
// returns its step.
func loadParams(dir string, ps nnlayers.Params) (int, error) {
	var ck struct {
		File string
		Step int
	}
	data, err := os.ReadFile(filepath.Join(dir, "train.json"))
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(data, &ck); err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, "train.json"), err)
	}
	fh, err := os.Open(filepath.Join(dir, ck.File))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	return ck.Step, nnlayers.ReadParams(fh, ps)
}
