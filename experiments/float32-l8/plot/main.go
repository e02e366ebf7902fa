// Command plot draws the training curves of the float64 and float32 runs of
// experiments/float32-l8 into one PNG: KL(q‖p) − log Z of the marginal theory
// (the metric kl_minus_logz, a running mean over 50 steps) against the step.
//
//	go run ./experiments/float32-l8/plot out/float32-l8 experiments/float32-l8/kl.png
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: plot OUTDIR PNG")
		os.Exit(2)
	}
	p := plot.New()
	p.Title.Text = "Schwinger L = 8 joint model: float64 vs float32 context networks"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "KL(q‖p) − log Z (running mean of 50 steps)"
	colours := map[string]color.Color{"float64": color.RGBA{B: 200, A: 255}, "float32": color.RGBA{R: 220, G: 90, A: 255}}
	for _, prec := range []string{"float64", "float32"} {
		xy, err := curve(filepath.Join(os.Args[1], prec, "metrics.jsonl"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		l.Color = colours[prec]
		p.Add(l)
		p.Legend.Add(prec, l)
	}
	p.Legend.Top = true
	if err := p.Save(8*vg.Inch, 5*vg.Inch, os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// curve reads kl_minus_logz per step and returns its running mean.
func curve(path string) (plotter.XYs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps, kl []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct {
			Step *float64 `json:"step"`
			KL   *float64 `json:"kl_minus_logz"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Step == nil || r.KL == nil {
			continue
		}
		steps, kl = append(steps, *r.Step), append(kl, *r.KL)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	const w = 50
	var xy plotter.XYs
	sum := 0.0
	for i := range kl {
		sum += kl[i]
		if i >= w {
			sum -= kl[i-w]
		}
		if i >= w-1 {
			xy = append(xy, plotter.XY{X: steps[i], Y: sum / w})
		}
	}
	if len(xy) == 0 {
		return nil, fmt.Errorf("%s: no kl_minus_logz", path)
	}
	return xy, nil
}
