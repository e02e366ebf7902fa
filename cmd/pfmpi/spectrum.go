package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"codeberg.org/sbinet/npyio/npy"

	"pfmpi/decomp"
	"pfmpi/dslash"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/rng"
	"pfmpi/solver"
	"pfmpi/spectrum"
)

// spectrumReport is `pfmpi spectrum --json`.
type spectrumReport struct {
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

func spectrumCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	kappa := fs.Float64("kappa", 0, "Wilson hopping parameter κ (required)")
	eo := fs.Bool("eo", false, "even/odd preconditioning: M_sc = D_sc D_sc†")
	mu := fs.Float64("mu", 0, "shift μ ≥ 0 added to M (Hasenbusch)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	phiPath := fs.String("phi", "", "pseudofermion `FILE.npy` (complex128 [L0, …, Ns, Nc]) for φ†(M+μ)⁻¹φ")
	tol := fs.Float64("tol", 1e-10, "relative tolerance of CG and Lanczos")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || *kappa <= 0 || *mu < 0 {
		fmt.Fprintln(stderr, "pfmpi spectrum: usage: pfmpi spectrum CONFIG -kappa K [-eo] [-mu μ ≥ 0] [-json] [-phi PHI.npy]")
		return exitUsage
	}
	path := pos[0]
	var rep spectrumReport
	err := withConfig(path, func(u *gauge.Field, _ gaugeio.Meta) error {
		sp := u.Space()
		ly := sp.Layout()
		w, err := dslash.NewWilson(u, *kappa)
		if err != nil {
			return err
		}
		defer w.Close()
		n := w.PerSite()
		rep = spectrumReport{File: path, Dims: ly.Lattice().Dims(), Group: gaugeio.Group(sp.Nc()), Kappa: *kappa, EO: *eo, Mu: *mu}
		var a dslash.Matrix = w
		parity, size := decomp.All, ly.Volume()*n
		rep.Operator = "D D† + μ"
		if *eo {
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
			if *eo {
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
		m := dslash.NewNormal(a, *mu, size)
		start := make([]complex128, size)
		lo, _ := ly.Sites(parity)
		for s := 0; s < size/n; s++ {
			st := rng.New(1, "lanczos-start").Stream(uint64(ly.GlobalIndex(lo + s)))
			for i := 0; i < n; i++ {
				start[s*n+i] = st.ComplexNormal()
			}
		}
		ext, err := spectrum.Extremes(comm, m, start, *tol, 20000)
		if err != nil {
			return err
		}
		rep.LambdaMin, rep.LambdaMax, rep.Condition, rep.LanczosIterations = ext.Min, ext.Max, ext.Condition(), ext.Iterations
		// φ†(M + μ)⁻¹φ
		if *phiPath != "" {
			phi, err := readPseudofermion(*phiPath, ly, w.Spins(), sp.Nc(), parity)
			if err != nil {
				return err
			}
			x := make([]complex128, size)
			res, err := solver.NewCG(comm, size).Solve(m, x, phi, *tol, 100000)
			if err != nil {
				return err
			}
			v := real(solver.Dot(comm, phi, x))
			rep.PhiAction, rep.CGIterations, rep.CGResidual = &v, res.Iterations, res.Residual
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi spectrum:", unwrap(err))
		return exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return exitOK
	}
	fmt.Fprintf(stdout, "%s: κ = %g, operator %s with μ = %g\n", path, rep.Kappa, rep.Operator, rep.Mu)
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
	return exitOK
}

// readPseudofermion reads a complex128 array of shape [L0, …, L_{D−1}, Ns, Nc]
// (C order) into a vector on the sites of parity p of the (one-rank) layout.
func readPseudofermion(path string, ly *decomp.Layout, ns, nc int, p decomp.Parity) ([]complex128, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable .npy file: %w", path, err)
	}
	dims := ly.Lattice().Dims()
	want := append(append([]int(nil), dims...), ns, nc)
	if dt := strings.Trim(r.Header.Descr.Type, `'"`); dt != "<c16" && dt != ">c16" {
		return nil, fmt.Errorf("%s: dtype %s; a pseudofermion is complex128", path, dt)
	}
	if r.Header.Descr.Fortran || fmt.Sprint(r.Header.Descr.Shape) != fmt.Sprint(want) {
		return nil, fmt.Errorf("%s: shape %v (Fortran order %v); this lattice needs %v in C order", path, r.Header.Descr.Shape, r.Header.Descr.Fortran, want)
	}
	var data []complex128
	if err := r.Read(&data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n := ns * nc
	lo, hi := ly.Sites(p)
	phi := make([]complex128, (hi-lo)*n)
	for s := lo; s < hi; s++ {
		g := int(ly.GlobalIndex(s))
		copy(phi[(s-lo)*n:(s-lo+1)*n], data[g*n:(g+1)*n])
	}
	return phi, nil
}
