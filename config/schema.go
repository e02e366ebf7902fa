package config

// The run-file schema. Every key is one struct field; its tags are the single
// source of the parser's defaults, its validation and `pfmpi help config`:
//
//	toml     key name
//	default  TOML literal applied before the file is read (absent: required)
//	example  TOML literal shown in the help for a required key
//	enum     allowed values, separated by |  (strings and string arrays)
//	min, gt  lower bound, inclusive or strict (numbers and number arrays)
//	max, lt  upper bound, inclusive or strict
//	requiredby  phases that need a key without default (absent: always required)
//	doc      one line of documentation
//
// Sections tagged phase:"…" are optional; a section present in the file
// switches its phase on.

import "pfmpi/group"

// Config is a parsed and validated run file.
type Config struct {
	Run      Run      `toml:"run" doc:"run identity: seed and output directory"`
	Lattice  Lattice  `toml:"lattice" doc:"the lattice and the gauge group"`
	Parallel Parallel `toml:"parallel" doc:"process grid and replicas: ranks = replicas × product(grid)"`
	Action   Action   `toml:"action" doc:"gauge action and Nf = 2 Wilson fermions"`
	Model    Model    `toml:"model" doc:"the flow model (train and sample phases)"`
	Solver   Solver   `toml:"solver" doc:"conjugate-gradient tolerances"`
	HMC      *HMC     `toml:"hmc" phase:"hmc" doc:"pseudofermion HMC baseline"`
	Train    *Train   `toml:"train" phase:"train" doc:"training of the flow by reverse KL"`
	Sample   *Sample  `toml:"sample" phase:"sample" doc:"sampling, ESS and independence Metropolis"`
	Bench    *Bench   `toml:"bench" phase:"bench" doc:"kernel benchmarks"`

	file  string
	lines map[string]int // "section.key" → line in the file
}

// Run identifies the run.
type Run struct {
	Seed   int64  `toml:"seed" default:"1234" min:"0" doc:"all randomness derives from this (counter-based, rank-independent)"`
	Output string `toml:"output" default:"\"out\"" doc:"output directory; created if missing"`
	Resume string `toml:"resume" default:"\"auto\"" enum:"auto|never|require" doc:"an existing run in output: resume it (auto), refuse (never), or require one (require)"`
}

// Lattice is the global lattice.
type Lattice struct {
	Dims  []int  `toml:"dims" example:"[8, 8]" min:"1" doc:"global extents, direction 0 is time; 2, 3 or 4 entries"`
	Group string `toml:"group" default:"\"u1\"" enum:"u1|su3" doc:"gauge group"`
}

// GaugeGroup is the group lattice.group names; 0 (no group) for a name the
// validation rejects.
func (l Lattice) GaugeGroup() group.Group {
	g, _ := group.Parse(l.Group)
	return g
}

// Parallel is the process layout.
type Parallel struct {
	Grid     Grid `toml:"grid" default:"\"auto\"" doc:"process grid over the lattice directions, or \"auto\": the grid of least halo surface, or a grid of ones (every rank a replica) when the flow needs each lattice on one rank (model.u1_marginal, u1_holonomy, SU(3) string layers)"`
	Replicas int  `toml:"replicas" default:"0" min:"0" doc:"replicas splitting the batch; 0: ranks / product(grid) (with \"auto\": 1)"`
}

// Action is the lattice action.
type Action struct {
	Beta           float64   `toml:"beta" example:"2.0" requiredby:"hmc|train|sample" gt:"0" doc:"gauge coupling β"`
	Kappa          float64   `toml:"kappa" default:"0.0" min:"0" doc:"Wilson hopping parameter κ; 0 = pure gauge"`
	Precondition   string    `toml:"precondition" default:"\"eo\"" enum:"none|eo" doc:"even/odd preconditioning of the fermion determinant"`
	Hasenbusch     []float64 `toml:"hasenbusch" default:"[]" gt:"0" doc:"Hasenbusch shifts μ₁ < μ₂ < …; empty = one monomial"`
	TrainRegulator float64   `toml:"train_regulator" default:"0.0" min:"0" doc:"μ₀ added to the kernel during training only"`
}

// Model is the flow architecture.
type Model struct {
	GaugeLayers        int      `toml:"gauge_layers" default:"24" min:"0" doc:"gauge coupling layers"`
	GaugeHidden        []int    `toml:"gauge_hidden" default:"[32, 32]" min:"1" doc:"context network channels of the gauge layers"`
	GaugeTransform     string   `toml:"gauge_transform" default:"\"spline\"" enum:"spline|ncp" doc:"gauge kernel: rational-quadratic spline or non-compact projection"`
	GaugeKernel        int      `toml:"gauge_kernel" default:"3" min:"1" doc:"kernel size of the gauge context convolutions (odd)"`
	GaugeDilations     []int    `toml:"gauge_dilations" default:"[1, 2, 3]" min:"1" doc:"dilations of the gauge context convolutions, one per convolution, cycled"`
	SplineBins         int      `toml:"spline_bins" default:"8" min:"2" doc:"bins of the circular splines"`
	NCPMixtures        int      `toml:"ncp_mixtures" default:"6" min:"1" doc:"components of the non-compact projection mixtures"`
	SU3Coupling        string   `toml:"su3_coupling" default:"\"strings\"" enum:"plaquette|strings" doc:"SU(3) gauge layers: strings (rows of plaquettes mapped together, one unmapped seam per row; needs each lattice on one rank; see experiments/su3-flow-diagnosis) or plaquette (one plaquette per active link, whose neighbour across the link changes too; any process grid)"`
	SU3Marginal        bool     `toml:"su3_marginal" default:"true" doc:"SU(3) string flows start with two context-free layers that map every plaquette but one (all rows at once, then the column of their seams); they count in gauge_layers. On by default for string layers (8×8, β = 6: sampling ESS 0.090 against 0.010 without; see experiments/su3-flow-diagnosis); plaquette layers and string flows of a single layer take none (the key is then ignored)"`
	SU3Bridge          int      `toml:"su3_bridge" default:"3" min:"0" doc:"SU(3) marginal layers: plaquettes before the last seam that the column layer maps as bridges, W′ = S h(S†W) with S a trained power of the flux left to the seam, so that the seam the torus holonomies set is drawn from its conditional (8 × 8, β = 6: sampling ESS 0.52–0.62 with the two marginal layers alone, 0.11 without bridges; see experiments/gauge-bridges); at most lattice.dims[1] − 1; 0: none; ignored without marginal layers"`
	U1Marginal         bool     `toml:"u1_marginal" default:"false" doc:"U(1) flows start with two context-free string layers that map every plaquette but one (all rows at once, then the column of their seams), the column one with u1_bridge bridge plaquettes; they count in gauge_layers and need each lattice on one rank (8 × 8, β = 2: sampling ESS 0.84 with these two layers alone; see experiments/gauge-bridges)"`
	U1Holonomy         bool     `toml:"u1_holonomy" default:"true" doc:"2D U(1) flows end with a holonomy layer: a learned map of the two mean Polyakov lines (the holonomies, which every plaquette-local layer leaves uniform given the plaquettes), conditioned on the other holonomy and the topological charge; it adds no gauge layer (beyond the paper: on the 4 × 4 Nf = 2 marginal the ESS after 800 steps rose from 0.20 to 0.36, and a flow without it reaches at most 0.58; see experiments/time-to-ess). It needs each lattice on one rank: parallel.grid = \"auto\" keeps it whole (further ranks are replicas); with a grid that splits the lattice set it to false. Ignored for SU(3) and other dimensions"`
	U1Bridge           int      `toml:"u1_bridge" default:"7" min:"0" doc:"U(1) marginal layers: plaquettes before the last seam that the column layer maps as bridges (conditioned on the flux left to the seam); at most lattice.dims[1] − 1"`
	SpectralModes      int      `toml:"spectral_modes" default:"4" min:"1" max:"16" doc:"SU(3) gauge layers: Fourier modes of the eigenphase map"`
	SpectralSteps      int      `toml:"spectral_steps" default:"1" min:"1" max:"8" doc:"SU(3) gauge layers: residual steps composed in each eigenphase map"`
	SpectralBound      float64  `toml:"spectral_bound" default:"0.9" gt:"0" lt:"1" doc:"SU(3) gauge layers: bound on the derivative of the eigenphase shift (< 1 keeps the map invertible)"`
	InitGain           float64  `toml:"init_gain" default:"0.5" gt:"0" doc:"Xavier-normal gain of the hidden convolutions (the last of each context network starts at zero: the flow starts as the identity)"`
	Fermions           string   `toml:"fermions" default:"\"pseudofermion\"" enum:"pseudofermion|exact" doc:"how a flow treats fermions (kappa > 0): joint pseudofermion model, or the gauge marginal with the exact determinant (small lattices)"`
	PFLayers           int      `toml:"pf_layers" default:"24" min:"0" doc:"pseudofermion layers per monomial"`
	PFMonomialLayers   []int    `toml:"pf_monomial_layers" default:"[]" min:"0" doc:"pseudofermion layers of each monomial, outermost first (the Hasenbusch ratios, then the last; a ratio's non-local target may want more); empty: pf_layers for every one"`
	PFPartition        []string `toml:"pf_partition" default:"[\"rows\"]" enum:"checkerboard|rows|spin" doc:"masking patterns of the pseudofermion layers, cycled"`
	NPT                int      `toml:"n_pt" default:"6" min:"1" doc:"parallel-transport convolutions per PTCN"`
	PTHidden           int      `toml:"pt_hidden" default:"2" min:"1" doc:"hidden channels H of intermediate PTCs"`
	PFContextHidden    int      `toml:"pf_context_hidden" default:"16" min:"1" doc:"channels of the pseudofermion context network"`
	PFContextDilations []int    `toml:"pf_context_dilations" default:"[1]" min:"1" doc:"dilations of the pseudofermion context trunk (shared by every layer of every monomial), one convolution of kernel 3 each: [1] is the paper's single convolution (a 3 × 3 neighbourhood of plaquettes); [1, 2, 3] sees 13 × 13 at the cost of two more small convolutions per forward pass (beyond the paper; on 4 × 4 Schwinger, 800 steps, it made the conditional flows worse: joint ESS 0.02 against 0.17; experiments/time-to-ess)"`
	PFHeadKernel       int      `toml:"pf_head_kernel" default:"3" min:"1" doc:"kernel size (odd) of each pseudofermion layer's head, the convolution from the trunk to the layer's A(x) and PTC weights: 3 is the paper's; 1 maps the trunk's features site by site with 1/9 of the work in 2D (the heads are the largest convolutions of the model: 85 % of its operations at the defaults), but on 4 × 4 Schwinger, 800 steps, it halved the joint ESS (0.08 against 0.17) for 30 % less time per step (experiments/time-to-ess)"`
	PFPolyakov         bool     `toml:"pf_polyakov" default:"false" doc:"pseudofermion flows: add the traces of the Wilson lines winding the torus through each site (Polyakov lines, 2 channels per direction) to the context inputs; the plaquettes alone cannot tell the holonomies, on which log det K depends, so without them the flow's normalisation cannot follow it (beyond the paper; needs each lattice on one rank)"`
	Precision          string   `toml:"precision" default:"\"float64\"" enum:"float64|float32" doc:"arithmetic of the context networks' matrix products and activations (float32: twice the SIMD width); the flows' transforms, log-Jacobians, actions and ESS stay float64"`
}

// Solver sets the CG tolerances (relative residuals |r|/|b|).
type Solver struct {
	Tol     float64 `toml:"tol" default:"1e-12" gt:"0" doc:"actions, heat baths and measurements"`
	TolMD   float64 `toml:"tol_md" default:"1e-10" gt:"0" doc:"forces inside the molecular dynamics"`
	MaxIter int     `toml:"max_iter" default:"100000" min:"1" doc:"iteration limit of one solve (reaching it is an error)"`
}

// HMC is the HMC phase.
type HMC struct {
	Trajectories    int      `toml:"trajectories" default:"1000" min:"1" doc:"trajectories after thermalisation"`
	Thermalize      int      `toml:"thermalize" default:"200" min:"0" doc:"trajectories discarded first"`
	Tau             float64  `toml:"tau" default:"1.0" gt:"0" doc:"trajectory length"`
	Steps           int      `toml:"steps" default:"10" min:"1" doc:"integration steps of the outermost level"`
	Integrator      string   `toml:"integrator" default:"\"omelyan\"" enum:"leapfrog|omelyan" doc:"molecular-dynamics integrator"`
	InnerSteps      []int    `toml:"inner_steps" default:"[]" min:"1" doc:"steps of each inner time scale per step of the level outside it; the gauge force goes on the innermost level"`
	PFLevels        []int    `toml:"pf_levels" default:"[]" min:"0" doc:"time-scale level of each pseudofermion monomial, outermost = 0 (ratios first, then the last); empty: all on level 0"`
	Start           string   `toml:"start" default:"\"cold\"" doc:"initial links: \"cold\", \"hot\" or a configuration file (.pfg, .npy, .lime, .ildg; relative to the run file)"`
	SaveEvery       int      `toml:"save_every" default:"100" min:"0" doc:"write the configuration every N trajectories after thermalisation (0 = never)"`
	CheckpointEvery int      `toml:"checkpoint_every" default:"100" min:"1" doc:"checkpoint the chain every N trajectories (and at the end)"`
	ReverseEvery    int      `toml:"reverse_every" default:"0" min:"0" doc:"check reversibility every N trajectories, at the cost of one more trajectory each (0 = never)"`
	MeasureEvery    int      `toml:"measure_every" default:"10" min:"0" doc:"measure the observables of hmc.measure every N trajectories after thermalisation (0 = never)"`
	Measure         []string `toml:"measure" default:"[\"pion\", \"condition\"]" enum:"pion|condition" doc:"expensive observables: pion correlator, condition numbers of the kernels"`
	PionFit         []int    `toml:"pion_fit" default:"[]" min:"0" doc:"fit range [tmin, tmax] of the pion mass; empty: [T/4, T/2]"`
}

// Train is the training phase.
type Train struct {
	Steps           int     `toml:"steps" default:"2000" min:"1" doc:"optimizer steps"`
	Batch           int     `toml:"batch" default:"64" min:"1" doc:"configurations per step, split over the replicas"`
	Optimizer       string  `toml:"optimizer" default:"\"adamw\"" enum:"adam|adamw" doc:"optimizer"`
	LR              float64 `toml:"lr" default:"1e-3" gt:"0" doc:"learning rate (after the warm-up; the peak of the cosine schedule). The paper's 5e-4 with step decay learns slower: 4 × 4 Schwinger, 800 steps, marginal ESS 0.36 against 0.42 with 1e-3, 50 warm-up steps and cosine decay (experiments/time-to-ess)"`
	Eps             float64 `toml:"eps" default:"1e-8" gt:"0" doc:"Adam ε (the paper's text reads as 0.02, which damps every step: on 4 × 4 Schwinger, 800 steps of the defaults, 0.02 gives marginal ESS 0.0014 and 1e-8 gives 0.135; see experiments/time-to-ess)"`
	LRDecayEvery    int     `toml:"lr_decay_every" default:"1000" min:"0" doc:"multiply the learning rate by lr_decay_factor every N steps (0 = never)"`
	LRSchedule      string  `toml:"lr_schedule" default:"\"cosine\"" was:"\"step\"" enum:"step|cosine" doc:"learning-rate schedule after the warm-up: step (× lr_decay_factor every lr_decay_every steps) or cosine (from lr down to lr_min at the last of train.steps; lr_decay_every and lr_decay_factor unused; a resumed run with more steps stretches the rest of the curve)"`
	LRMin           float64 `toml:"lr_min" default:"0.0" min:"0" doc:"the cosine schedule's final learning rate, at most lr"`
	LRDecayFactor   float64 `toml:"lr_decay_factor" default:"0.5" gt:"0" doc:"learning-rate decay factor, in (0, 1]"`
	LRWarmup        int     `toml:"lr_warmup" default:"50" was:"0" min:"0" doc:"ramp the learning rate up linearly over the first N steps (0 = none): the first Adam steps move every parameter by about lr whatever its gradient, which perturbs deep flows that start as the identity; parameters held by train.marginal_first warm up again over their own first N steps"`
	CheckpointEvery int     `toml:"checkpoint_every" default:"200" min:"0" doc:"checkpoint every N steps (0 = only at the end)"`
	ESSEvery        int     `toml:"ess_every" default:"100" min:"0" doc:"measure the ESS every N steps (0 = never)"`
	ESSBatch        int     `toml:"ess_batch" default:"1024" min:"1" doc:"fresh samples per ESS measurement"`
	WeightDecay     float64 `toml:"weight_decay" default:"0.01" min:"0" doc:"AdamW decoupled weight decay (Adam: L2 term)"`
	MicroBatch      int     `toml:"micro_batch" default:"0" min:"0" doc:"configurations per micro-batch: a replica's share of the batch is differentiated in micro-batches whose gradients add up in order (a working set that stays in cache); with the lattice on one rank they run at once on copies of the model, one per core, with the same result as on one core; 0: about 1024 sites × configurations per rank, at least one micro-batch per core (on a small lattice the size then depends on the number of cores, and so do the last bits of the step: set it to reproduce a run bit for bit on another core count)"`
	MarginalFirst   int     `toml:"marginal_first" default:"0" min:"0" doc:"flows with marginal layers (model.su3_marginal, model.u1_marginal): for the first N steps only the two marginal layers train and every other parameter (the regular gauge layers and any pseudofermion flows) waits at its initial value, then all train (staged training; the joint optimisation otherwise spreads the plaquette map over all layers and leaves the marginal ones idle); 0 = all from the start"`
	PFFirst         int     `toml:"pf_first" default:"0" min:"0" doc:"joint models: for the first N steps only the pseudofermion flows train and the gauge flow waits at its initial value, then all train (staged training after a gauge flow trained on the exact determinant: init_from a run with model.fermions = \"exact\" loads its gauge flow, and the pseudofermion flows learn against it first); 0 = all from the start; not with marginal_first"`
	GaugeLoss       string  `toml:"gauge_loss" default:"\"auto\"" enum:"auto|joint|marginal" doc:"joint models: the loss the gauge flow trains on. joint: the joint reverse KL (the paper); marginal: the reverse KL of the gauge marginal with the exact determinant, while the pseudofermion flows keep the joint loss (the same sampler; one exact determinant per sample and step; the lattice on one rank). The joint loss pulls the gauge flow away from the marginal through a noisy determinant estimate (4 × 4 Schwinger: marginal ESS 0.36 against 0.09–0.14 after 800 steps, joint ESS 0.13 with the path gradient against 0.02; experiments/time-to-ess). auto: marginal when the Dirac matrix has at most 128 rows (volume × spins × colours: 2D U(1) up to 8 × 8, SU(3) up to 4 × 4, where the determinant costs less than the pseudofermion solves) and the lattice is on one rank, else joint"`
	GaugeSteps      int     `toml:"gauge_steps" default:"0" was:"1" min:"0" doc:"with the gauge flow on the exact marginal (gauge_loss = \"marginal\", or \"auto\" where it means marginal): its optimizer steps per training step. 0 (auto): 4 there, unless train.pf_first or train.marginal_first stages the training, else 1. 1: one Adam step of all parameters, as in the paper. k ≥ 2: the joint step trains the pseudofermion flows alone, then the gauge flow takes k steps of an Adam of its own (the same lr, its warm-up and schedule stretched k-fold), the first on the step's gauge fields, the others on fresh draws. The marginal ESS depends on the gauge flow alone, and its step costs a fraction of the joint step (8 × 8: 0.26 s against 1.54 s on 2 cores); at equal core time on 4 × 4 Schwinger (EO + μ = 0.01) 800 steps with k = 4 reach marginal ESS 0.58 against 0.53 for 1600 steps with k = 1 (experiments/time-to-ess)"`
	GradClip        float64 `toml:"grad_clip" default:"0.0" min:"0" doc:"clip the global gradient norm to this (0 = no clipping)"`
	GradClipMedian  float64 `toml:"grad_clip_median" default:"10.0" min:"0" doc:"clip the global gradient norm to this multiple of the median norm of the last 100 steps, from step 21 on (0 = off; with grad_clip too, the smaller bound holds). One proposal deep in the tail can give a gradient 10⁶× the usual; unclipped it fills Adam's second moment and stalls training for ~1000 steps (4 × 4 Schwinger, seed 1: experiments/time-to-ess). In 17 logged runs 99 % of steps stay below 5× the running median, and 0–3 steps per run exceed 10×"`
	InitFrom        string  `toml:"init_from" default:"\"\"" doc:"output directory of an earlier run (relative to the run file) whose last training checkpoint gives the initial parameters (transfer: the same [model] on another lattice size, then fine-tuning; when only the pseudofermion keys or the Hasenbusch masses differ, the gauge flow alone, and the pseudofermion flows start afresh); the optimizer starts afresh; a run resumed from its own checkpoint ignores it; empty: random initialisation"`
	InitGaugeFrom   string  `toml:"init_gauge_from" default:"\"\"" doc:"with train.init_from: output directory of another run whose last training checkpoint's gauge flow replaces the one init_from gave (the same gauge-flow keys), e.g. a gauge flow fine-tuned on this lattice with pseudofermion flows trained on a smaller one; empty: none"`
	InitGaugeOnly   bool    `toml:"init_gauge_only" default:"false" doc:"joint models with train.init_from: take the gauge flow alone from it, and start the pseudofermion flows from their initialisation even where its model has the same ones (to compare pseudofermion architectures or recipes on one trained gauge flow)"`
	PFGradient      string  `toml:"pf_gradient" default:"\"path\"" enum:"reparam|path" doc:"gradient estimator of the pseudofermion flows' share of the loss: reparam (through log J, as in the paper) or path (through φ alone, with the flow's score −2T^{−†}χ: the same expectation, and no χ-noise where q(φ|U) fits; Vaitl et al., arXiv:2207.08219); joint models only. path is the default since it paid wherever measured with the gauge flow on the marginal or with SU(3): 4 × 4 Schwinger, gauge_loss = marginal, joint ESS 0.13 against 0.04 and no conditional modes narrower than half the target's (experiments/time-to-ess); 2D SU(3) 8 × 8, conditional KL 5–10× lower (experiments/su3-nf2-l8). One 4 × 4 Schwinger run with the joint gauge loss sampled worse with it"`
}

// Sample is the sampling phase.
type Sample struct {
	N          int   `toml:"n" default:"20000" min:"1" doc:"proposals"`
	NPF        []int `toml:"npf" default:"[1]" min:"1" doc:"pseudofermion draws per gauge field, one ESS/acceptance measurement each"`
	Metropolis bool  `toml:"metropolis" default:"true" doc:"run the independence Metropolis chain"`
	SaveEvery  int   `toml:"save_every" default:"0" min:"0" doc:"write accepted configurations every N (0 = never)"`
	Batch      int   `toml:"batch" default:"256" min:"1" doc:"proposals drawn at a time (the last batch may be smaller), split over the replicas"`
	// CheckpointEvery bounds the work a killed job loses.
	CheckpointEvery int `toml:"checkpoint_every" default:"4096" min:"0" doc:"checkpoint the proposals drawn so far every N (rounded up to whole batches; 0 = only at the end)"`
}

// Bench is the benchmark phase.
type Bench struct {
	Ops     []string `toml:"ops" default:"[\"dslash\", \"cg\", \"halo\", \"train_step\"]" enum:"dslash|cg|halo|train_step" doc:"kernels to time"`
	Repeats int      `toml:"repeats" default:"20" min:"1" doc:"timed repetitions per kernel"`
}

// SU3MarginalLayers reports whether an SU(3) gauge flow starts with the
// marginal layers: su3_marginal applies to string flows of two layers or
// more; plaquette flows and single-layer flows take none.
func (m Model) SU3MarginalLayers() bool {
	return m.SU3Marginal && m.SU3Coupling == "strings" && m.GaugeLayers >= 2
}

// FlowNeedsOneRank reports whether the run builds a flow (a train or sample
// phase) whose layers need each lattice on one rank: U(1) marginal or
// holonomy layers, SU(3) string layers, Polyakov context features, or
// training on the exact marginal.
func (c *Config) FlowNeedsOneRank() bool {
	if c.Train == nil && c.Sample == nil {
		return false
	}
	m := c.Model
	if c.Lattice.GaugeGroup() == group.SU3 {
		return m.SU3Coupling != "plaquette"
	}
	return m.U1Marginal || c.U1HolonomyLayer() || m.PFPolyakov || c.MarginalGaugeLoss()
}

// U1HolonomyLayer reports whether the gauge flow ends with the holonomy
// layer (model.u1_holonomy, for 2D U(1)).
func (c *Config) U1HolonomyLayer() bool {
	return c.Model.U1Holonomy && c.Lattice.GaugeGroup() == group.U1 && len(c.Lattice.Dims) == 2
}

// MarginalLossRows is the largest Dirac matrix (rows) on which
// train.gauge_loss = "auto" trains the gauge flow on the exact marginal.
const MarginalLossRows = 128

// DiracRows is the dimension of the Wilson–Dirac matrix: volume × spins ×
// colours.
func (c *Config) DiracRows() int {
	rows := 1 << (len(c.Lattice.Dims) / 2) // spins
	for _, l := range c.Lattice.Dims {
		rows *= l
	}
	return rows * c.Lattice.GaugeGroup().Nc()
}

// MarginalGaugeLoss reports whether the gauge flow of a joint model trains
// on the exact marginal (train.gauge_loss "marginal", or "auto" on a Dirac
// matrix of at most MarginalLossRows rows).
func (c *Config) MarginalGaugeLoss() bool {
	t := c.Train
	switch {
	case t == nil:
		return false
	case t.GaugeLoss == "marginal":
		return true // refused later when the model has no pseudofermion flows
	}
	return t.GaugeLoss == "auto" && c.Action.Kappa > 0 && c.Model.Fermions == "pseudofermion" && c.DiracRows() <= MarginalLossRows
}

// SU3BridgePlaquettes returns the bridge plaquettes of the marginal column
// layer: su3_bridge with marginal layers, else 0.
func (m Model) SU3BridgePlaquettes() int {
	if !m.SU3MarginalLayers() {
		return 0
	}
	return m.SU3Bridge
}
