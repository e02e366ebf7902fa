package flowrun

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"pfmpi/internal/rundir"
)

// plotTraining draws plots/ess.png (ESS against step) and plots/loss.png
// from the train records (rank 0).
func plotTraining(dir *rundir.Dir) error {
	raws, err := dir.Records("train")
	if err != nil {
		return err
	}
	recs, err := decode[TrainRecord](raws)
	if err != nil {
		return err
	}
	var ess, loss plotter.XYs
	for _, r := range recs {
		loss = append(loss, plotter.XY{X: float64(r.Step + 1), Y: r.Loss})
		if r.ESS != nil {
			ess = append(ess, plotter.XY{X: float64(r.Step + 1), Y: *r.ESS})
		}
	}
	out := filepath.Join(dir.Path(), "plots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if len(ess) > 0 {
		if err := linePlot(filepath.Join(out, "ess.png"), "ESS during training", "step", "ESS", ess, true); err != nil {
			return err
		}
	}
	if len(loss) > 0 {
		return linePlot(filepath.Join(out, "loss.png"), "loss (1/B) Σ [log q + S]", "step", "loss", loss, false)
	}
	return nil
}

func linePlot(path, title, x, y string, pts plotter.XYs, unit bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	if unit {
		p.Y.Min, p.Y.Max = 0, 1
	}
	p.Add(plotter.NewGrid())
	line, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.Add(line)
	if len(pts) <= 200 {
		sc, err := plotter.NewScatter(pts)
		if err == nil {
			sc.GlyphStyle.Radius = vg.Points(2)
			p.Add(sc)
		}
	}
	tmp := path + ".tmp.png"
	if err := p.Save(6*vg.Inch, 4*vg.Inch, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
