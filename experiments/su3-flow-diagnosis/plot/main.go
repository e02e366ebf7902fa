// Command plot draws the curves of experiments/su3-flow-diagnosis:
//
//	go run ./experiments/su3-flow-diagnosis/plot OUTDIR FOLDER
//
// reads the diagnose JSON files and training metrics under OUTDIR and
// writes into FOLDER:
//
//   - kl-by-layer.png: KL(q_k‖p) and the plaquettes' total correlation
//     after k layers, plaquette layers against string layers;
//   - training-kl.png: the training KL (running mean of 25 steps) of the
//     L = 4 runs at the same budget;
//   - l8-training.png: the training KL and ESS of the L = 8 string run.
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
	"gonum.org/v1/plot/vg/draw"
)

// runs are the L = 4 models compared, with their labels.
var runs = []struct{ name, label string }{
	{"l4-base", "plaquette layers, constant lr"},
	{"l4-decay200", "plaquette layers, lr halved every 200"},
	{"l4-strings", "string layers, constant lr"},
	{"l4-strings-lr5e-3-decay75", "string layers, lr 5e-3 halved every 75"},
}

var palette = []color.Color{
	color.RGBA{B: 200, A: 255}, color.RGBA{G: 150, B: 220, A: 255},
	color.RGBA{R: 220, G: 90, A: 255}, color.RGBA{R: 200, A: 255},
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: plot OUTDIR FOLDER")
		os.Exit(2)
	}
	out, folder := os.Args[1], os.Args[2]
	if err := byLayer(out, filepath.Join(folder, "kl-by-layer.png")); err != nil {
		fail(err)
	}
	if err := training(out, filepath.Join(folder, "training-kl.png")); err != nil {
		fail(err)
	}
	if err := l8(filepath.Join(out, "l8-strings", "metrics.jsonl"), filepath.Join(folder, "l8-training.png")); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

func byLayer(out, png string) error {
	p := plot.New()
	p.Title.Text = "SU(3) β = 6, 4×4, 16 layers, 600 steps of batch 32"
	p.X.Label.Text = "layers applied k"
	p.Y.Label.Text = "nats (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, r := range runs {
		data, err := os.ReadFile(filepath.Join(out, r.name+".json"))
		if err != nil {
			return err
		}
		var res []struct {
			Layers []struct {
				K  int     `json:"k"`
				KL float64 `json:"kl"`
				TC float64 `json:"total_correlation"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(data, &res); err != nil || len(res) == 0 {
			return fmt.Errorf("%s: %v", r.name, err)
		}
		var kl, tc plotter.XYs
		for _, l := range res[0].Layers {
			kl = append(kl, plotter.XY{X: float64(l.K), Y: l.KL})
			tc = append(tc, plotter.XY{X: float64(l.K), Y: max(l.TC, 1e-3)})
		}
		lk, err := plotter.NewLine(kl)
		if err != nil {
			return err
		}
		lt, err := plotter.NewLine(tc)
		if err != nil {
			return err
		}
		lk.Color, lt.Color = palette[i], palette[i]
		lt.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(lk, lt)
		p.Legend.Add("KL: "+r.label, lk)
		p.Legend.Add("total correlation", lt)
	}
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Inch/2, 1.6*vg.Inch
	return p.Save(9*vg.Inch, 6*vg.Inch, png)
}

func training(out, png string) error {
	p := plot.New()
	p.Title.Text = "SU(3) β = 6, 4×4: training KL (running mean of 25 steps)"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "KL(q‖p), nats"
	for i, r := range runs {
		xy, err := series(filepath.Join(out, r.name, "metrics.jsonl"), "kl", 25)
		if err != nil {
			return err
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = palette[i]
		p.Add(l)
		p.Legend.Add(r.label, l)
	}
	p.Y.Max = 4
	p.Y.Min = 0
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 5*vg.Inch, png)
}

func l8(metrics, png string) error {
	kl, err := series(metrics, "kl", 50)
	if err != nil {
		return err
	}
	ess, err := series(metrics, "ess", 1)
	if err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = "SU(3) β = 6, 8×8, string layers: training KL (mean of 50 steps) and ESS on 1024"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "KL(q‖p), nats; ESS × 10"
	l, err := plotter.NewLine(kl)
	if err != nil {
		return err
	}
	l.Color = palette[3]
	for i := range ess {
		ess[i].Y *= 10
	}
	s, err := plotter.NewScatter(ess)
	if err != nil {
		return err
	}
	s.Shape = draw.CircleGlyph{}
	s.Color = palette[0]
	p.Add(l, s)
	p.Legend.Add("KL", l)
	p.Legend.Add("ESS × 10 (training estimate)", s)
	p.Y.Min, p.Y.Max = 0, 10
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 5*vg.Inch, png)
}

// series reads metric key of the training records and returns its running
// mean over w records.
func series(path, key string, w int) (plotter.XYs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps, vals []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) != nil || r["phase"] != "train" {
			continue
		}
		st, ok1 := r["step"].(float64)
		v, ok2 := r[key].(float64)
		if ok1 && ok2 {
			steps, vals = append(steps, st), append(vals, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var xy plotter.XYs
	sum := 0.0
	for i := range vals {
		sum += vals[i]
		if i >= w {
			sum -= vals[i-w]
		}
		if i >= w-1 {
			xy = append(xy, plotter.XY{X: steps[i], Y: sum / float64(w)})
		}
	}
	if len(xy) == 0 {
		return nil, fmt.Errorf("%s: no %s", path, key)
	}
	return xy, nil
}
