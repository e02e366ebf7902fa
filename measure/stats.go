package measure

import (
	"fmt"
	"math"
)

// Estimate is a value with its statistical error.
type Estimate struct {
	Value float64 `json:"value"`
	Error float64 `json:"error"`
}

func (e Estimate) String() string { return fmt.Sprintf("%.6g ± %.2g", e.Value, e.Error) }

// Autocorrelation is the result of the Γ-method for one primary observable.
type Autocorrelation struct {
	Mean    Estimate // mean with the error including autocorrelations
	TauInt  Estimate // integrated autocorrelation time (½ for independent data)
	Window  int      // summation window W
	N       int      // number of measurements
	Naive   float64  // error of the mean ignoring autocorrelations
	Flagged bool     // the window did not close before N/2: τ_int is a lower bound
}

// GammaS is Wolff's S parameter of the automatic window (his recommended 1.5).
const GammaS = 1.5

// Gamma analyses the time series of one primary observable with the
// Γ-method (Wolff, Comput. Phys. Commun. 156 (2004) 143; hep-lat/0306017):
// the autocorrelation function Γ(t) is summed up to the window W where
// exp(−W/τ) − τ/√(WN) first turns negative, τ = S/ln((2τ_int+1)/(2τ_int−1)),
// with the bias correction of Γ and of the variance (his Eqs. 31, 35, 42).
// Each replica is one independent chain of the same observable; Γ(t) is
// summed over the replicas.
func Gamma(replicas ...[]float64) (Autocorrelation, error) {
	n, sum := 0, 0.0
	shortest := math.MaxInt
	for _, r := range replicas {
		n += len(r)
		shortest = min(shortest, len(r))
		for _, v := range r {
			sum += v
		}
	}
	if n < 2 || shortest < 2 {
		return Autocorrelation{}, fmt.Errorf("measure: the Γ-method needs at least 2 measurements per replica, got %d in %d replica(s)", n, len(replicas))
	}
	mean := sum / float64(n)
	for _, r := range replicas {
		for _, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Autocorrelation{}, fmt.Errorf("measure: the time series holds %v", v)
			}
		}
	}
	gamma := func(t int) float64 {
		s, m := 0.0, 0
		for _, r := range replicas {
			for i := 0; i+t < len(r); i++ {
				s += (r[i] - mean) * (r[i+t] - mean)
			}
			m += max(len(r)-t, 0)
		}
		if m == 0 {
			return 0
		}
		return s / float64(m)
	}
	res := Autocorrelation{N: n}
	g0 := gamma(0)
	res.Naive = math.Sqrt(g0 / float64(n))
	if g0 == 0 {
		res.Mean = Estimate{Value: mean}
		res.TauInt = Estimate{Value: 0.5}
		return res, nil
	}
	// Automatic windowing.
	maxW := shortest / 2
	gs := []float64{g0}
	cf := g0
	w := 0
	for t := 1; t <= maxW; t++ {
		gs = append(gs, gamma(t))
		cf += 2 * gs[t]
		tauInt := cf / (2 * g0)
		tau := 1e-12
		if tauInt > 0.5 {
			tau = GammaS / math.Log((2*tauInt+1)/(2*tauInt-1))
		}
		g := math.Exp(-float64(t)/tau) - tau/math.Sqrt(float64(t*n))
		if g < 0 {
			w = t
			break
		}
	}
	if w == 0 {
		w = maxW
		res.Flagged = true
	}
	// Bias correction: Γ(t) → Γ(t) + C_F/N, C_F → C_F (1 + (2W+1)/N).
	cf = gs[0]
	for t := 1; t <= w; t++ {
		cf += 2 * gs[t]
	}
	corr := cf / float64(n)
	g0c := gs[0] + corr
	cfc := cf * (1 + float64(2*w+1)/float64(n))
	if cfc <= 0 {
		cfc = g0c // anticorrelated noise: fall back to the naive variance
	}
	tauInt := cfc / (2 * g0c)
	res.Window = w
	res.Mean = Estimate{Value: mean, Error: math.Sqrt(cfc / float64(n))}
	res.TauInt = Estimate{Value: tauInt, Error: 2 * tauInt * math.Sqrt(math.Max(float64(w)+0.5-tauInt, 0)/float64(n))}
	return res, nil
}

// Jackknife estimates f(⟨a_0⟩, ⟨a_1⟩, …) and its error from the series
// series[k][i] (observable k, measurement i) in bins of binSize consecutive
// measurements (choose binSize ≳ 2τ_int to absorb autocorrelations). A
// trailing partial bin is dropped.
func Jackknife(series [][]float64, binSize int, f func(means []float64) (float64, error)) (Estimate, error) {
	if len(series) == 0 || binSize < 1 {
		return Estimate{}, fmt.Errorf("measure: jackknife of %d series with bins of %d", len(series), binSize)
	}
	n := len(series[0])
	for _, s := range series {
		if len(s) != n {
			return Estimate{}, fmt.Errorf("measure: jackknife series of lengths %d and %d", n, len(s))
		}
	}
	nb := n / binSize
	if nb < 2 {
		return Estimate{}, fmt.Errorf("measure: jackknife needs at least 2 bins: %d measurements, bins of %d", n, binSize)
	}
	k := len(series)
	bins := make([][]float64, k) // bin sums
	total := make([]float64, k)
	for j, s := range series {
		bins[j] = make([]float64, nb)
		for b := 0; b < nb; b++ {
			for _, v := range s[b*binSize : (b+1)*binSize] {
				bins[j][b] += v
			}
			total[j] += bins[j][b]
		}
	}
	means := make([]float64, k)
	for j := range means {
		means[j] = total[j] / float64(nb*binSize)
	}
	full, err := f(means)
	if err != nil {
		return Estimate{}, err
	}
	samples := make([]float64, nb)
	sum := 0.0
	for b := range samples {
		for j := range means {
			means[j] = (total[j] - bins[j][b]) / float64((nb-1)*binSize)
		}
		v, err := f(means)
		if err != nil {
			return Estimate{}, fmt.Errorf("measure: jackknife sample %d: %w", b, err)
		}
		samples[b] = v
		sum += v
	}
	m := sum / float64(nb)
	variance := 0.0
	for _, v := range samples {
		variance += (v - m) * (v - m)
	}
	variance *= float64(nb-1) / float64(nb)
	return Estimate{Value: full, Error: math.Sqrt(math.Max(variance, 0))}, nil
}
