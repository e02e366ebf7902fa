package specrun

import (
	"fmt"
	"io"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/rng"
	"pfmpi/solver"
	"pfmpi/spectrum"
)

// Report is what `pfmpi spectrum` prints (WriteText), or writes as JSON.
type Report struct {
	File              string   `json:"file"`
	Dims              []int    `json:"dims"`
	Group             string   `json:"group"`
	Kappa             float64  `json:"kappa"`
	EO                bool     `json:"eo"`
	Mu                float64  `json:"mu"`
	Operator          string   `json:"operator"`
	LogAbsDetD2       *float64 `json:"log_abs_det_D_squared,omitempty"`
	LogDetSchur       *float64 `json:"log_det_DscDscdag,omitempty"`
	DenseSkipped      string   `json:"dense_skipped,omitempty"`
	LambdaMin         float64  `json:"lambda_min"`
	LambdaMax         float64  `json:"lambda_max"`
	Condition         float64  `json:"condition_number"`
	LanczosIterations int      `json:"lanczos_iterations"`
	PhiAction         *float64 `json:"phi_action,omitempty"`
	CGIterations      int      `json:"cg_iterations,omitempty"`
	CGResidual        float64  `json:"cg_residual,omitempty"`
}

// Options choose the operator and what is computed.
type Options struct {
	Kappa float64 // Wilson hopping parameter, > 0
	EO    bool    // even/odd preconditioning: M = D_sc D_sc†, else D D†
	Mu    float64 // shift μ ≥ 0 added to M
	Phi   string  // a pseudofermion .npy file for φ†(M + μ)⁻¹φ; "" for none
	Tol   float64 // relative tolerance of CG and Lanczos
}

// Run computes the report for the configuration file path: the dense
// determinants where the lattice is small, the extreme eigenvalues of
// M + μ by Lanczos, and φ†(M + μ)⁻¹φ by CG.
func Run(path string, o Options) (Report, error) {
	var rep Report
	err := gaugeio.Open(path, func(u *gauge.Field, _ gaugeio.Meta) error {
		sp := u.Space()
		ly := sp.Layout()
		w, err := dslash.NewWilson(u, o.Kappa)
		if err != nil {
			return err
		}
		defer w.Close()
		n := w.PerSite()
		rep = Report{File: path, Dims: ly.Lattice().Dims(), Group: gaugeio.Group(sp.Nc()), Kappa: o.Kappa, EO: o.EO, Mu: o.Mu}
		var a dslash.Matrix = w
		parity, size := decomp.All, ly.Volume()*n
		rep.Operator = "D D† + μ"
		if o.EO {
			if ly.EvenCount()*2 != ly.Volume() {
				return fmt.Errorf("even/odd preconditioning needs even extents; the lattice is %v", rep.Dims)
			}
			a, parity, size = dslash.NewSchur(w), decomp.Even, ly.EvenCount()*n
			rep.Operator = "D_sc D_sc† + μ"
		}
		comm := sp.Comm()
		// Dense references.
		full, err := spectrum.NewBasis(comm, ly, decomp.All, n)
		if err != nil {
			return err
		}
		if full.N() <= spectrum.MaxDense {
			d, err := full.Build(w.M)
			if err != nil {
				return err
			}
			l, _ := d.LogDet()
			v := 2 * l
			rep.LogAbsDetD2 = &v
			if o.EO {
				sc := dslash.NewSchur(w)
				ds, err := spectrum.Build(comm, ly, decomp.Even, n, sc.M)
				if err != nil {
					return err
				}
				ls, _ := ds.LogDet()
				v := 2 * ls
				rep.LogDetSchur = &v
			}
		} else {
			rep.DenseSkipped = fmt.Sprintf("N = %d exceeds the dense limit %d: determinants are only computed on small lattices", full.N(), spectrum.MaxDense)
		}
		// Krylov extremes.
		m := dslash.NewNormal(a, o.Mu, size)
		start := make([]complex128, size)
		lo, _ := ly.Sites(parity)
		for s := 0; s < size/n; s++ {
			st := rng.New(1, "lanczos-start").Stream(uint64(ly.GlobalIndex(lo + s)))
			for i := 0; i < n; i++ {
				start[s*n+i] = st.ComplexNormal()
			}
		}
		ext, err := spectrum.Extremes(comm, m, start, o.Tol, 20000)
		if err != nil {
			return err
		}
		rep.LambdaMin, rep.LambdaMax, rep.Condition, rep.LanczosIterations = ext.Min, ext.Max, ext.Condition(), ext.Iterations
		// φ†(M + μ)⁻¹φ
		if o.Phi != "" {
			phi, err := gaugeio.ReadPseudofermion(o.Phi, ly, w.Spins(), sp.Nc(), parity)
			if err != nil {
				return err
			}
			x := make([]complex128, size)
			res, err := solver.NewCG(comm, size).Solve(m, x, phi, o.Tol, 100000)
			if err != nil {
				return err
			}
			v := real(solver.Dot(comm, phi, x))
			rep.PhiAction, rep.CGIterations, rep.CGResidual = &v, res.Iterations, res.Residual
		}
		return nil
	})
	return rep, err
}

// WriteText prints the report for a reader.
func (rep *Report) WriteText(stdout io.Writer) {
	fmt.Fprintf(stdout, "%s: κ = %g, operator %s with μ = %g\n", rep.File, rep.Kappa, rep.Operator, rep.Mu)
	if rep.LogAbsDetD2 != nil {
		fmt.Fprintf(stdout, "  log|det D|²        %.12g\n", *rep.LogAbsDetD2)
	}
	if rep.LogDetSchur != nil {
		fmt.Fprintf(stdout, "  log det D_sc D_sc† %.12g\n", *rep.LogDetSchur)
	}
	if rep.DenseSkipped != "" {
		fmt.Fprintf(stdout, "  dense              %s\n", rep.DenseSkipped)
	}
	fmt.Fprintf(stdout, "  λ_min, λ_max       %.10g, %.10g (Lanczos, %d steps)\n", rep.LambdaMin, rep.LambdaMax, rep.LanczosIterations)
	fmt.Fprintf(stdout, "  condition number   %.6g\n", rep.Condition)
	if rep.PhiAction != nil {
		fmt.Fprintf(stdout, "  φ†(M+μ)⁻¹φ         %.12g (CG, %d iterations, true residual %.2g)\n", *rep.PhiAction, rep.CGIterations, rep.CGResidual)
	}
}
