package gaugeio

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"strings"

	"pfmpi/decomp"
	"pfmpi/gauge"
	"pfmpi/mpi"
)

// Open loads path (any format, with every integrity check) into a gauge
// field on one in-process rank (a configuration file is read whole anyway)
// and calls fn with it.
func Open(path string, fn func(u *gauge.Field, meta Meta) error) error {
	return unwrapRank(mpi.Run(1, func(c mpi.Comm) error {
		cfg, err := Read(path) // geometry first, to size the field
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
		meta, err := Load(u, path)
		if err != nil {
			return err
		}
		return fn(u, meta)
	}))
}

// Summary describes a configuration file (`pfmpi info`, as JSON with -json):
// its geometry and checksum, and what is measured on the field.
type Summary struct {
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

// Inspect reads path and summarises it; beta ≠ 0 overrides the file's β
// for the action.
func Inspect(path string, beta float64) (Summary, error) {
	var rep Summary
	err := Open(path, func(u *gauge.Field, meta Meta) error {
		sp := u.Space()
		rep = Summary{
			File: path, Format: string(meta.Format), Dims: sp.Layout().Lattice().Dims(), Nc: sp.Nc(),
			Group: Group(sp.Nc()), Checksum: meta.Checksum, Plaquette: u.AveragePlaquette(),
			MaxGroupDistance: u.MaxDistanceFromGroup(), Info: meta.Info,
		}
		if !math.IsNaN(meta.Plaquette) {
			p := meta.Plaquette
			rep.PlaquetteRecorded = &p
		}
		b := meta.Beta
		if beta != 0 {
			b = beta
		}
		if b != 0 {
			s := u.Action(b)
			rep.Beta, rep.Action = &b, &s
		}
		if sp.Group().Abelian() && sp.Nd() == 2 {
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
	return rep, err
}

// WriteText prints the summary for a reader.
func (rep *Summary) WriteText(stdout io.Writer) {
	dims := make([]string, len(rep.Dims))
	for i, d := range rep.Dims {
		dims[i] = fmt.Sprint(d)
	}
	fmt.Fprintf(stdout, "%s\n", rep.File)
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
}

// Convert writes the configuration in file in to file out, the format from
// out's extension, recording beta if ≠ 0 (else the input's); it returns
// the input's metadata and the average plaquette.
func Convert(in, out string, beta float64) (meta Meta, plaquette float64, err error) {
	if _, err := FormatOf(out); err != nil {
		return Meta{}, 0, err
	}
	err = Open(in, func(u *gauge.Field, m Meta) error {
		meta = m
		if beta != 0 {
			m.Beta = beta
		}
		if m.Info == "" {
			m.Info = "converted from " + in
		}
		plaquette = u.AveragePlaquette()
		return Save(u, out, m)
	})
	return meta, plaquette, err
}

// unwrapRank drops the in-process rank from an error of Open.
func unwrapRank(err error) error {
	var re *mpi.RankError
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}
