package flow

import (
	"math"

	"pfmpi/rng"
)

// LogSumExp returns log Σ exp(x_i) without overflow.
func LogSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// ESS is the effective sample size per configuration of Eq. (15),
// (Σw)²/(N Σw²), from log weights log w = log p − log q (any constant
// offset cancels), computed in log space: exp(2 LSE(log w) − LSE(2 log w))/N.
func ESS(logw []float64) float64 {
	if len(logw) == 0 {
		return math.NaN()
	}
	two := make([]float64, len(logw))
	for i, v := range logw {
		two[i] = 2 * v
	}
	return math.Exp(2*LogSumExp(logw)-LogSumExp(two)) / float64(len(logw))
}

// Metropolis runs the independence Metropolis chain of Eq. (16) over
// proposals with log weights logw in order: the first proposal is the
// initial state; proposal i replaces the current state c with probability
// min(1, w_i/w_c), the uniforms drawn from key (stream 0). It returns the
// index of the state after each proposal and the number accepted (of
// len−1 decisions).
func Metropolis(logw []float64, key rng.Key) (chain []int, accepted int) {
	if len(logw) == 0 {
		return nil, 0
	}
	st := key.Stream(0)
	chain = make([]int, len(logw))
	cur := 0
	for i := 1; i < len(logw); i++ {
		if math.Log(st.Float64()) < logw[i]-logw[cur] {
			cur = i
			accepted++
		}
		chain[i] = cur
	}
	return chain, accepted
}

// Reweight returns Σ w_i O_i / Σ w_i (Eq. 17) with w = exp(log w − max).
func Reweight(logw, obs []float64) float64 {
	m := math.Inf(-1)
	for _, v := range logw {
		m = max(m, v)
	}
	var num, den float64
	for i, v := range logw {
		w := math.Exp(v - m)
		num += w * obs[i]
		den += w
	}
	return num / den
}
