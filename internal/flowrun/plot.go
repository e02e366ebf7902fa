package flowrun

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"pfmpi/internal/rundir"
	"pfmpi/measure"
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
	var ess, joint, marginal, loss plotter.XYs
	for _, r := range recs {
		x := float64(r.Step + 1)
		loss = append(loss, plotter.XY{X: x, Y: r.Loss})
		if r.ESS != nil {
			ess = append(ess, plotter.XY{X: x, Y: *r.ESS})
		}
		if r.ESSJoint != nil {
			joint = append(joint, plotter.XY{X: x, Y: *r.ESSJoint})
		}
		if r.ESSMarginal != nil {
			marginal = append(marginal, plotter.XY{X: x, Y: *r.ESSMarginal})
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
	if len(joint) > 0 {
		curves := []curve{{"joint ESS", joint}}
		if len(marginal) > 0 {
			curves = append(curves, curve{"marginal ESS", marginal})
		}
		if err := multiPlot(filepath.Join(out, "ess.png"), "joint and marginal ESS during training", "gradient steps", "ESS", curves); err != nil {
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

type curve struct {
	name string
	pts  plotter.XYs
}

// multiPlot draws several labelled curves on [0, 1] (Fig. 2 style).
func multiPlot(path, title, x, y string, curves []curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		line, err := plotter.NewLine(c.pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(c.name, line)
	}
	p.Legend.Top, p.Legend.Left = true, true
	return savePlot(p, path)
}

func savePlot(p *plot.Plot, path string) error {
	tmp := path + ".tmp.png"
	if err := p.Save(6*vg.Inch, 4*vg.Inch, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// plotNpf draws plots/ess_npf.png: ESS against 1/Npf with error bars, the
// Eq. 45 fit and the marginal ESS at 1/Npf = 0 (Fig. 3 style).
func plotNpf(dir *rundir.Dir, x, y, e []float64, fit *essFit, marginal *measure.Estimate) error {
	if len(x) == 0 {
		return nil
	}
	out := filepath.Join(dir.Path(), "plots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = "ESS with Npf pseudofermion draws per gauge field"
	p.X.Label.Text = "1/Npf"
	p.Y.Label.Text = "ESS"
	p.Y.Min, p.X.Min = 0, 0
	p.Add(plotter.NewGrid())
	pts := make(plotter.XYs, len(x))
	errs := make(plotter.YErrors, len(x))
	for i := range x {
		pts[i] = plotter.XY{X: x[i], Y: y[i]}
		errs[i].Low, errs[i].High = e[i], e[i]
	}
	data := struct {
		plotter.XYs
		plotter.YErrors
	}{pts, errs}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Color = plotutil.Color(1)
	sc.GlyphStyle.Radius = vg.Points(3)
	p.Add(sc)
	p.Legend.Add("ESS(Npf)", sc)
	if bars, err := plotter.NewYErrorBars(data); err == nil {
		p.Add(bars)
	}
	if fit != nil {
		f := plotter.NewFunction(func(t float64) float64 { return fit.essInf.Value / (1 + fit.c.Value*t) })
		f.Color = plotutil.Color(0)
		f.XMin, f.XMax = 0, 1.05
		p.Add(f)
		p.Legend.Add("fit ESS(∞)/(1 + C/Npf)", f)
	}
	if marginal != nil {
		mk, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: marginal.Value}})
		if err == nil {
			mk.GlyphStyle.Shape = draw.TriangleGlyph{}
			mk.GlyphStyle.Color = plotutil.Color(2)
			mk.GlyphStyle.Radius = vg.Points(4)
			p.Add(mk)
			p.Legend.Add("marginal ESS", mk)
		}
	}
	p.Legend.Top = true
	return savePlot(p, filepath.Join(out, "ess_npf.png"))
}
