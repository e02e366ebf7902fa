package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"pfmpi/internal/specrun"
)

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
	rep, err := specrun.Run(pos[0], specrun.Options{Kappa: *kappa, EO: *eo, Mu: *mu, Phi: *phiPath, Tol: *tol})
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi spectrum:", err)
		return exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return exitOK
	}
	rep.WriteText(stdout)
	return exitOK
}
