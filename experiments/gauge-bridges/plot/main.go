// Command plot draws training curves of pfmpi runs side by side:
//
//	go run ./experiments/gauge-bridges/plot -o FILE.png -title TITLE LABEL=OUTDIR ...
//
// LABEL may contain "=" (the last one separates it from OUTDIR). For every run it reads OUTDIR/metrics.jsonl and plots the training KL
// (running mean of 25 steps; for pure-gauge runs the exact KL) against the
// step, one line per run, on a logarithmic KL axis; with -ess, the
// training-time ESS estimates instead.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var palette = []color.Color{
	color.RGBA{B: 200, A: 255}, color.RGBA{R: 200, A: 255}, color.RGBA{G: 140, A: 255},
	color.RGBA{R: 200, G: 120, A: 255}, color.RGBA{R: 120, B: 160, A: 255}, color.RGBA{G: 150, B: 200, A: 255},
}

func main() {
	out := flag.String("o", "curves.png", "PNG to write")
	title := flag.String("title", "training KL", "plot title")
	window := flag.Int("window", 25, "steps of the running mean")
	ess := flag.Bool("ess", false, "plot the training-time ESS estimates instead of the KL")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: plot -o FILE.png [-title T] LABEL=OUTDIR ...")
		os.Exit(2)
	}
	p := plot.New()
	p.Title.Text = *title
	p.X.Label.Text = "step"
	if *ess {
		p.Y.Label.Text = "ESS (training-time estimate)"
		p.Y.Min, p.Y.Max = 0, 1
	} else {
		p.Y.Label.Text = "KL (nats), running mean"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	for i, arg := range flag.Args() {
		cut := strings.LastIndex(arg, "=") // labels may hold "=", directories do not
		if cut <= 0 {
			fail(fmt.Errorf("argument %q is not LABEL=OUTDIR", arg))
		}
		label, dir := arg[:cut], arg[cut+1:]
		xy, err := trainingCurve(filepath.Join(dir, "metrics.jsonl"), *window, *ess)
		if err != nil {
			fail(err)
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			fail(err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.2)
		p.Add(line)
		p.Legend.Add(label, line)
	}
	if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, *out); err != nil {
		fail(err)
	}
}

// trainingCurve returns the running mean of the training records' KL, or
// with ess their ESS estimates.
func trainingCurve(path string, window int, ess bool) (plotter.XYs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps, kls []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Phase string   `json:"phase"`
			Step  int      `json:"step"`
			KL    *float64 `json:"kl"`
			ESS   *float64 `json:"ess"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if r.Phase == "train" && ess && r.ESS != nil {
			steps = append(steps, float64(r.Step))
			kls = append(kls, *r.ESS)
		}
		if r.Phase == "train" && !ess && r.KL != nil {
			steps = append(steps, float64(r.Step))
			kls = append(kls, *r.KL)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(kls) == 0 {
		return nil, fmt.Errorf("%s: no training records to plot", path)
	}
	if ess {
		window = 1
	}
	var xy plotter.XYs
	sum := 0.0
	for i, v := range kls {
		sum += v
		if i >= window {
			sum -= kls[i-window]
		}
		n := min(i+1, window)
		if m := sum / float64(n); i+1 >= n && m > 0 && !math.IsInf(m, 0) {
			xy = append(xy, plotter.XY{X: steps[i], Y: m})
		}
	}
	return xy, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}
