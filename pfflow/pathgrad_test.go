package pfflow

import (
	"fmt"
	"math"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// cdot returns the real and imaginary parts of Σ conj(x)·y over the rank's
// sites, summed over the domain.
func cdot(c mpi.Comm, x, y *nnlayers.Tensor) complex128 {
	var z complex128
	for i := 0; i < len(x.Data); i += 2 {
		z += complex(x.Data[i], -x.Data[i+1]) * complex(y.Data[i], y.Data[i+1])
	}
	s := []float64{real(z), imag(z)}
	c.Allreduce(mpi.Sum, s)
	return complex(s[0], s[1])
}

// TestInverseAdjoint checks ⟨T^{−†}χ, T y⟩ = ⟨χ, y⟩ for random χ, y on
// every variant and process grid: T^{−†} is the adjoint of the inverse of
// the flow's linear map, member by member.
func TestInverseAdjoint(t *testing.T) {
	for _, grid := range [][]int{{1, 1}, {2, 1}, {2, 2}} {
		mpitest.Run(t, grid[0]*grid[1], func(c mpi.Comm) error {
			for _, v := range variants {
				if v.poly && c.Size() > 1 {
					continue // one rank per lattice
				}
				w, err := newWorld(c, []int{4, 4}, grid, v.spec())
				if err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
				defer w.close()
				const b = 2
				links := randomLinks(w.geo, b, v.nc, rng.New(1, "links"))
				chi := randomField(w, b, rng.New(2, "chi"), v.eo)
				y := randomField(w, b, rng.New(3, "y"), v.eo)
				scratch := nnlayers.NewTape(2)
				defer scratch.Close()
				w.tape.Reset()
				w.tape.NoGrad = false
				ctx, err := w.model.Context(w.tape, links)
				if err != nil {
					return err
				}
				cond := w.model.Conditional(0)
				heads := cond.Heads(w.tape, ctx)
				adj, err := cond.InverseAdjoint(scratch, links, heads, chi)
				if err != nil {
					return err
				}
				adj = copyTensor(adj)
				ty, _, err := cond.ForwardHeads(w.tape, links, heads, y)
				if err != nil {
					return err
				}
				for k := range b {
					got := cdot(c, member(adj, k), member(ty, k))
					want := cdot(c, member(chi, k), member(y, k))
					if d := got - want; math.Hypot(real(d), imag(d)) > 1e-11*(1+math.Hypot(real(want), imag(want))) {
						return fmt.Errorf("%s grid %v member %d: ⟨T^{−†}χ, Ty⟩ = %.12g, ⟨χ, y⟩ = %.12g", v.name, grid, k, got, want)
					}
					if math.Abs(real(got)) < 1e-3 {
						return fmt.Errorf("%s: ⟨χ, y⟩ = %g is too small to test anything", v.name, want)
					}
				}
				// The flow must not be close to the identity, or the test
				// would not see the PTCN's adjoint.
				if d := maxDiff(adj.Data, chi.Data); d < 1e-2 {
					return fmt.Errorf("%s: T^{−†}χ differs from χ by only %g", v.name, d)
				}
				if v.eo {
					for s := 0; s < adj.V; s++ {
						if !w.model.Even(s) && maxDiff(adj.Data[adj.At(s, 0, 0):adj.At(s, b-1, adj.C-1)+1], make([]float64, b*adj.C)) != 0 {
							return fmt.Errorf("%s: odd site %d of T^{−†}χ is not zero", v.name, s)
						}
					}
				}
			}
			return nil
		})
	}
}

// member returns member k of x as a tensor of one member.
func member(x *nnlayers.Tensor, k int) *nnlayers.Tensor {
	m := &nnlayers.Tensor{V: x.V, B: 1, C: x.C, Data: make([]float64, x.V*x.C)}
	for s := 0; s < x.V; s++ {
		copy(m.Data[s*x.C:(s+1)*x.C], x.Data[x.At(s, k, 0):x.At(s, k, 0)+x.C])
	}
	return m
}

// TestScoreMatchesLogJacobian checks the identity behind the path-gradient
// estimator: the score term's gradient, −2 Re⟨T^{−†}χ, ∂φ/∂ϑ⟩, has
// expectation −∂(Σ log J)/∂ϑ over χ ~ r, for the parameters ϑ and the
// links alike. Its expectation over complex normal χ is a trace, which the
// sum over the unit vectors χ = e_k gives exactly (one member each).
func TestScoreMatchesLogJacobian(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			w, err := newWorld(mpi.Self(), []int{4, 4}, []int{1, 1}, v.spec())
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			scratch := nnlayers.NewTape(2)
			defer scratch.Close()
			ps := w.model.Params()
			per := w.model.Channels() / 2
			var unit []int // sites × components the pseudofermion lives on
			for s := 0; s < w.geo.Volume(); s++ {
				if !v.eo || w.model.Even(s) {
					unit = append(unit, s)
				}
			}
			n := len(unit) * per
			one := randomLinks(w.geo, 1, v.nc, rng.New(1, "links"))
			links := nnlayers.NewTensor(one.V, n, one.C)
			for s := 0; s < one.V; s++ {
				for k := range n {
					copy(links.Data[links.At(s, k, 0):], one.Data[one.At(s, 0, 0):one.At(s, 0, 0)+one.C])
				}
			}
			chi := nnlayers.NewTensor(one.V, n, w.model.Channels())
			for k := range n {
				chi.Data[chi.At(unit[k/per], k, 2*(k%per))] = 1
			}
			grads := func(score bool) ([]float64, []float64, error) {
				ps.ZeroGrad()
				clear(links.Grad)
				w.tape.Reset()
				w.tape.NoGrad = false
				lk, x := links, chi
				if !score {
					lk = &nnlayers.Tensor{V: one.V, B: 1, C: one.C, Data: one.Data, Grad: make([]float64, len(one.Data))}
					x = member(chi, 0)
					x.Grad = make([]float64, len(x.Data))
				}
				ctx, err := w.model.Context(w.tape, lk)
				if err != nil {
					return nil, nil, err
				}
				cond := w.model.Conditional(0)
				heads := cond.Heads(w.tape, ctx)
				var adj *nnlayers.Tensor
				if score {
					if adj, err = cond.InverseAdjoint(scratch, lk, heads, x); err != nil {
						return nil, nil, err
					}
				}
				phi, lj, err := cond.ForwardHeads(w.tape, lk, heads, x)
				if err != nil {
					return nil, nil, err
				}
				if score {
					for i, a := range adj.Data {
						phi.Grad[i] = -2 * a
					}
				} else {
					for i := range lj.Grad {
						lj.Grad[i] = -1
					}
				}
				if err := w.tape.Backward(); err != nil {
					return nil, nil, err
				}
				var g []float64
				for _, p := range ps {
					g = append(g, p.Grad...)
				}
				gl := make([]float64, len(one.Data))
				for s := 0; s < one.V; s++ {
					for k := range lk.B {
						for c := range one.C {
							gl[one.At(s, 0, c)] += lk.Grad[lk.At(s, k, c)]
						}
					}
				}
				return g, gl, nil
			}
			gs, ls, err := grads(true)
			if err != nil {
				t.Fatal(err)
			}
			gj, lj, err := grads(false)
			if err != nil {
				t.Fatal(err)
			}
			scale := 0.0
			for _, x := range gj {
				scale = math.Max(scale, math.Abs(x))
			}
			if scale < 1e-3 {
				t.Fatalf("the log-Jacobian gradient vanishes (%g)", scale)
			}
			if d := maxDiff(gs, gj); d > 1e-10*scale {
				t.Errorf("parameters: Σ_k score gradient differs from −∂ log J by %g (scale %g)", d, scale)
			}
			if d := maxDiff(ls, lj); d > 1e-10*(1+scale) {
				t.Errorf("links: Σ_k score gradient differs from −∂ log J by %g", d)
			}
		})
	}
}
