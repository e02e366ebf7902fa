package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"strings"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/gaugeio"
	"pfmpi/mpi"
)

// The configuration tools run on one in-process rank: a configuration file
// is read whole anyway.

// withConfig loads path (any format, with every integrity check) into a gauge
// field on one in-process rank and calls fn with it.
func withConfig(path string, fn func(u *gauge.Field, meta gaugeio.Meta) error) error {
	return mpi.Run(1, func(c mpi.Comm) error {
		cfg, err := gaugeio.Read(path) // geometry first, to size the field
		if err != nil {
			return err
		}
		grid := make([]int, len(cfg.Dims))
		for i := range grid {
			grid[i] = 1
		}
		lat, err := decomp.NewLattice(cfg.Dims, grid, false)
		if err != nil {
			return err
		}
		ly, _ := lat.Layout(0)
		sp, err := gauge.NewSpace(c, ly, cfg.Nc)
		if err != nil {
			return err
		}
		defer sp.Close()
		u := sp.NewField()
		meta, err := gaugeio.Load(u, path)
		if err != nil {
			return err
		}
		return fn(u, meta)
	})
}

// unwrap drops the in-process rank from an error.
func unwrap(err error) error {
	var re *mpi.RankError
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}

// infoReport is `pfmpi info --json`.
type infoReport struct {
	File              string   `json:"file"`
	Format            string   `json:"format"`
	Dims              []int    `json:"dims"`
	Nc                int      `json:"nc"`
	Group             string   `json:"group"`
	Checksum          string   `json:"checksum"`
	Plaquette         float64  `json:"plaquette"`
	PlaquetteRecorded *float64 `json:"plaquette_recorded,omitempty"`
	Beta              *float64 `json:"beta,omitempty"`
	Action            *float64 `json:"action,omitempty"`
	TopologicalCharge *float64 `json:"topological_charge,omitempty"`
	PolyakovRe        float64  `json:"polyakov_re"`
	PolyakovIm        float64  `json:"polyakov_im"`
	MaxGroupDistance  float64  `json:"max_group_distance"`
	Info              string   `json:"info,omitempty"`
}

func infoCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	asJSON := fs.Bool("json", false, "print one JSON object")
	beta := fs.Float64("beta", 0, "gauge coupling β for the action (default: the file's)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "pfmpi info: give one configuration file: pfmpi info CONFIG [-json] [-beta B]")
		return exitUsage
	}
	path := pos[0]
	var rep infoReport
	err := withConfig(path, func(u *gauge.Field, meta gaugeio.Meta) error {
		sp := u.Space()
		rep = infoReport{
			File: path, Format: string(meta.Format), Dims: sp.Layout().Lattice().Dims(), Nc: sp.Nc(),
			Group: gaugeio.Group(sp.Nc()), Checksum: meta.Checksum, Plaquette: u.AveragePlaquette(),
			MaxGroupDistance: u.MaxDistanceFromGroup(), Info: meta.Info,
		}
		if !math.IsNaN(meta.Plaquette) {
			p := meta.Plaquette
			rep.PlaquetteRecorded = &p
		}
		b := meta.Beta
		if *beta != 0 {
			b = *beta
		}
		if b != 0 {
			s := u.Action(b)
			rep.Beta, rep.Action = &b, &s
		}
		if sp.Nc() == 1 && sp.Nd() == 2 {
			q, err := u.TopologicalCharge()
			if err != nil {
				return err
			}
			rep.TopologicalCharge = &q
		}
		p := u.PolyakovLoop()
		rep.PolyakovRe, rep.PolyakovIm = real(p), imag(p)
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi info:", unwrap(err))
		return exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return exitOK
	}
	dims := make([]string, len(rep.Dims))
	for i, d := range rep.Dims {
		dims[i] = fmt.Sprint(d)
	}
	fmt.Fprintf(stdout, "%s\n", path)
	fmt.Fprintf(stdout, "  format       %s\n", rep.Format)
	fmt.Fprintf(stdout, "  lattice      %s, %s (direction 0 = time)\n", strings.Join(dims, " × "), rep.Group)
	fmt.Fprintf(stdout, "  checksum     %s\n", rep.Checksum)
	fmt.Fprintf(stdout, "  plaquette    %.15f  (1/Nc Re Tr P, averaged over sites and planes)\n", rep.Plaquette)
	if rep.PlaquetteRecorded != nil {
		fmt.Fprintf(stdout, "  recorded     %.15f  (agrees)\n", *rep.PlaquetteRecorded)
	}
	if rep.Action != nil {
		fmt.Fprintf(stdout, "  action       S_g = %.12g at β = %g\n", *rep.Action, *rep.Beta)
	} else {
		fmt.Fprintf(stdout, "  action       β unknown: give -beta B\n")
	}
	if rep.TopologicalCharge != nil {
		fmt.Fprintf(stdout, "  charge       Q = %.6f\n", *rep.TopologicalCharge)
	}
	fmt.Fprintf(stdout, "  polyakov     %.6f%+.6fi (|P| = %.6f)\n", rep.PolyakovRe, rep.PolyakovIm, cmplx.Abs(complex(rep.PolyakovRe, rep.PolyakovIm)))
	fmt.Fprintf(stdout, "  unitarity    max distance from %s = %.2g\n", strings.ToUpper(rep.Group), rep.MaxGroupDistance)
	if rep.Info != "" {
		fmt.Fprintf(stdout, "  info         %s\n", rep.Info)
	}
	return exitOK
}

func convertCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	beta := fs.Float64("beta", 0, "record this gauge coupling β (default: the input's)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "pfmpi convert: give an input and an output file: pfmpi convert IN OUT (format from OUT's extension: .pfg, .npy, .lime, .ildg)")
		return exitUsage
	}
	in, out := pos[0], pos[1]
	if _, err := gaugeio.FormatOf(out); err != nil {
		fmt.Fprintln(stderr, "pfmpi convert:", err)
		return exitUsage
	}
	err := withConfig(in, func(u *gauge.Field, meta gaugeio.Meta) error {
		if *beta != 0 {
			meta.Beta = *beta
		}
		if meta.Info == "" {
			meta.Info = "converted from " + in
		}
		if err := gaugeio.Save(u, out, meta); err != nil {
			return err
		}
		f, _ := gaugeio.FormatOf(out)
		fmt.Fprintf(stdout, "pfmpi convert: %s (%s) -> %s (%s), average plaquette %.15f\n", in, meta.Format, out, f, u.AveragePlaquette())
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi convert:", unwrap(err))
		return exitError
	}
	return exitOK
}
