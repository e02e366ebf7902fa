package flow

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
	"pfmpi/su3"
)

// su3Config is the SU(3) pure-gauge setup of the tests below.
func su3Config(dims, grid []int, beta float64, batch int, random bool) config {
	return config{nc: 3, dims: dims, grid: grid, layers: 4, beta: beta, batch: batch, random: random}
}

// TestSU3Flow: the trainer's gradient for pure-gauge SU(3) (β = 6) equals central
// differences of its loss; log q from the inverse equals that of the
// forward pass; samples, log w and gradients agree on grids 2×1, 2×2 and
// with two replicas.
func TestSU3Flow(t *testing.T) {
	for _, strs := range []bool{false, true} {
		checkSU3Flow(t, strs, false)
	}
	checkSU3Flow(t, true, true)
}

// checkSU3Flow is TestSU3Flow for plaquette or string layers (these on one
// rank per lattice: grid 1×1 with replicas).
func checkSU3Flow(t *testing.T, strs, marginal bool) {
	t.Helper()
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		cfg := su3Config([]int{4, 4}, []int{1, 1}, 6, 3, true)
		cfg.strings, cfg.marginal = strs, marginal
		s, err := newSetup(c, cfg)
		if err != nil {
			return err
		}
		defer s.close()
		want, fd, err := lossGradient(s.trainer, 2)
		if err != nil {
			return err
		}
		if math.Abs(fd-want) > 1e-5*(1+math.Abs(want)) || want == 0 {
			return fmt.Errorf("SU(3): ⟨dir, ∇loss⟩ = %.10g, central difference %.10g", want, fd)
		}
		// Inverse: log q of a sample.
		tp := s.tape
		tp.Reset()
		tp.NoGrad = true
		z := s.flow.Prior(2, 0, rng.New(1, "inverse"))
		u, logJ, err := s.flow.Forward(tp, z)
		if err != nil {
			return err
		}
		var fwdBuf []float64
		fwd := s.trainer.main.logQ(logJ, &fwdBuf)
		uc := &nnlayers.Tensor{V: u.V, B: u.B, C: u.C, Data: append([]float64(nil), u.Data...)}
		zc := append([]float64(nil), z.Data...)
		tp.Reset()
		back, logJ2, err := s.flow.Inverse(tp, uc)
		if err != nil {
			return err
		}
		var invBuf []float64
		inv := s.trainer.main.logQ(logJ2, &invBuf)
		for k := range fwd {
			if math.Abs(fwd[k]-inv[k]) > 1e-8*(1+math.Abs(fwd[k])) {
				return fmt.Errorf("member %d: log q %.12g forward, %.12g from the inverse", k, fwd[k], inv[k])
			}
		}
		for i := range zc {
			if math.Abs(back.Data[i]-zc[i]) > 1e-9 {
				return fmt.Errorf("the inverse misses the prior by %g", back.Data[i]-zc[i])
			}
		}
		tp.NoGrad = false
		return nil
	})
	type result struct{ logw, grad []float64 }
	run := func(grid []int, replicas int) *result {
		var res *result
		mpitest.Run(t, grid[0]*grid[1]*replicas, func(world mpi.Comm) error {
			cfg := su3Config([]int{8, 8}, grid, 6, 4, true)
			cfg.strings, cfg.marginal = strs, marginal
			s, err := newSetup(world, cfg)
			if err != nil {
				return err
			}
			defer s.close()
			smp, err := s.trainer.Sample(8, 4, "distributed")
			if err != nil {
				return err
			}
			if _, err := s.trainer.Gradient(3); err != nil {
				return err
			}
			r := &result{logw: smp.LogW}
			for _, p := range s.flow.Params() {
				r.grad = append(r.grad, p.Grad...)
			}
			if world.Rank() == 0 {
				res = r
			}
			return nil
		})
		return res
	}
	ref := run([]int{1, 1}, 1)
	if ref == nil {
		return
	}
	for _, c := range []struct {
		grid     []int
		replicas int
	}{{[]int{2, 1}, 1}, {[]int{2, 2}, 1}, {[]int{1, 1}, 2}} {
		if strs && c.replicas == 1 {
			continue // string layers need the lattice on one rank
		}
		got := run(c.grid, c.replicas)
		if got == nil {
			continue
		}
		worst, worstG := 0.0, 0.0
		for i := range ref.logw {
			worst = max(worst, math.Abs(got.logw[i]-ref.logw[i])/math.Abs(ref.logw[i]))
		}
		for i := range ref.grad {
			worstG = max(worstG, math.Abs(got.grad[i]-ref.grad[i])/(1e-3+math.Abs(ref.grad[i])))
		}
		t.Logf("SU(3) strings %v, grid %v × %d replicas: max relative |Δ log w| %.2g, gradient %.2g", strs, c.grid, c.replicas, worst, worstG)
		if worst > 1e-12 || worstG > 1e-9 {
			t.Errorf("SU(3) strings %v, grid %v × %d replicas: log w differ by %g, gradients by %g", strs, c.grid, c.replicas, worst, worstG)
		}
	}
}

// TestSU3StringFlowStaysInSU3: a deep string flow on 8×8 with non-trivial
// parameters keeps its links in SU(3) to rounding (the recursion along a
// row would otherwise pass each plaquette's rounding on to the next link
// and amplify it layer after layer, until log J no longer describes the
// map).
func TestSU3StringFlowStaysInSU3(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		cfg := su3Config([]int{8, 8}, []int{1, 1}, 6, 4, true)
		cfg.strings, cfg.layers = true, 32
		s, err := newSetup(c, cfg)
		if err != nil {
			return err
		}
		defer s.close()
		tp := s.tape
		tp.Reset()
		tp.NoGrad = true
		defer func() { tp.NoGrad = false }()
		z := s.flow.Prior(4, 0, rng.New(3, "deep"))
		u, _, err := s.flow.Forward(tp, z)
		if err != nil {
			return err
		}
		worst := 0.0
		for i := 0; i < len(u.Data); i += 18 {
			var m su3.Matrix
			for j := range m {
				m[j] = complex(u.Data[i+2*j], u.Data[i+2*j+1])
			}
			worst = max(worst, m.MulAdj(m).Sub(su3.Identity()).MaxAbs(), cmplx.Abs(m.Det()-1))
		}
		if !(worst <= 1e-12) { // NaN too
			return fmt.Errorf("after 32 string layers the links are %g away from SU(3)", worst)
		}
		return nil
	})
}
