// Command plot draws training curves of pfmpi runs side by side:
//
//	go run ./experiments/gauge-bridges/plot -o FILE.png -title TITLE LABEL=OUTDIR ...
//
// LABEL may contain "=" (the last one separates it from OUTDIR). For every run it reads OUTDIR/metrics.jsonl and plots the training KL
// (running mean of 25 steps; for pure-gauge runs the exact KL) against the
// step, one line per run, on a logarithmic KL axis; with -ess, the
// training-time ESS estimates instead; with -key K, the metric K (for the
// joint Nf = 2 runs "kl_minus_logz", on a linear axis); with -time, against
// the accumulated training time in minutes instead of the step; -ymin and
// -ymax fix the y range. With -ess, OUTDIR#joint and OUTDIR#marginal plot
// the joint or marginal ESS estimates of a joint (pseudofermion) run.
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
	key := flag.String("key", "kl", "metric of the training records to plot (kl, kl_minus_logz, loss, grad_norm)")
	vsTime := flag.Bool("time", false, "x axis: accumulated training time in minutes instead of the step")
	ymin := flag.Float64("ymin", math.NaN(), "lower end of the y axis (default: the data's)")
	ymax := flag.Float64("ymax", math.NaN(), "upper end of the y axis (default: the data's)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: plot -o FILE.png [-title T] LABEL=OUTDIR ...")
		os.Exit(2)
	}
	p := plot.New()
	p.Title.Text = *title
	p.X.Label.Text = "step"
	if *vsTime {
		p.X.Label.Text = "training time (minutes)"
	}
	if *ess {
		p.Y.Label.Text = "ESS (training-time estimate)"
		p.Y.Min, p.Y.Max = 0, 1
	} else if *key != "kl" {
		p.Y.Label.Text = *key + " (nats), running mean"
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
		k := *key
		if d, which, ok := strings.Cut(dir, "#"); ok && *ess {
			dir, k = d, "ess_"+which
		}
		xy, err := trainingCurve(filepath.Join(dir, "metrics.jsonl"), *window, *ess, k, *vsTime)
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
	if !math.IsNaN(*ymin) {
		p.Y.Min = *ymin
	}
	if !math.IsNaN(*ymax) {
		p.Y.Max = *ymax
	}
	if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, *out); err != nil {
		fail(err)
	}
}

// trainingCurve returns the running mean of the training records' metric
// key, or with ess their ESS estimates, against the step or with vsTime
// against the accumulated seconds (in minutes).
func trainingCurve(path string, window int, ess bool, key string, vsTime bool) (plotter.XYs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps, kls []float64
	elapsed := 0.0
	positive := key == "kl" || ess
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if r["phase"] != "train" {
			continue
		}
		step, _ := r["step"].(float64)
		if s, ok := r["seconds"].(float64); ok {
			elapsed += s
		}
		x := step
		if vsTime {
			x = elapsed / 60
		}
		want := key
		if ess && !strings.HasPrefix(key, "ess_") {
			want = "ess"
		}
		if v, ok := r[want].(float64); ok {
			steps = append(steps, x)
			kls = append(kls, v)
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
		if m := sum / float64(n); i+1 >= n && (m > 0 || !positive) && !math.IsInf(m, 0) {
			xy = append(xy, plotter.XY{X: steps[i], Y: m})
		}
	}
	return xy, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}
