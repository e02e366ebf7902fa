package coupling

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// newU1HolonomyLayer builds a holonomy layer on geo with weights away from
// zero (every class and feature exercised).
func newU1HolonomyLayer(geo *nnlayers.Geometry) (*U1HolonomyLayer, error) {
	sp, err := NewSpline(4)
	if err != nil {
		return nil, err
	}
	l, err := NewU1HolonomyLayer(geo, 9, sp)
	if err != nil {
		return nil, err
	}
	for i, p := range l.Params() {
		p.Init(uint64(41+i), 0.3)
	}
	return l, nil
}

// TestU1HolonomyLayerInverseEquivarianceVJP: inverse∘forward = id, gauge
// equivariance, VJPs against central differences (8 × 8 and 6 × 4).
func TestU1HolonomyLayerInverseEquivarianceVJP(t *testing.T) {
	for _, dims := range [][]int{{8, 8}, {6, 4}} {
		t.Run(fmt.Sprint(dims), func(t *testing.T) {
			mpitest.Run(t, 1, func(c mpi.Comm) error {
				geo, err := testGeometry(c, dims, []int{1, 1})
				if err != nil {
					return err
				}
				defer geo.Close()
				l, err := newU1HolonomyLayer(geo)
				if err != nil {
					return err
				}
				return checkU1Layer(geo, l, l.up)
			})
		})
	}
}

// TestU1HolonomyLogJacobianBruteForce: Σ log J against the numerical
// Jacobian determinant of all 2V angles, at configurations of several
// topological charges.
func TestU1HolonomyLogJacobianBruteForce(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		geo, err := testGeometry(c, []int{4, 4}, []int{1, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		l, err := newU1HolonomyLayer(geo)
		if err != nil {
			return err
		}
		for seed := uint64(1); seed <= 4; seed++ {
			if err := checkU1LogJacobian(t, geo, l, seed); err != nil {
				return fmt.Errorf("seed %d: %w", seed, err)
			}
		}
		return nil
	})
}

// TestU1HolonomyLayerMovesOnlyHolonomies: the output has the input's
// plaquettes; every Polyakov line P_0(x_1) moves by one α and every P_1(x_0)
// by one β, with H the mean Polyakov line and H′ = g(H) as the doc
// states; the untrained layer is the
// identity.
func TestU1HolonomyLayerMovesOnlyHolonomies(t *testing.T) {
	mpitest.Run(t, 1, func(c mpi.Comm) error {
		dims := []int{6, 4}
		geo, err := testGeometry(c, dims, []int{1, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		sp, _ := NewSpline(4)
		id, err := NewU1HolonomyLayer(geo, 0, sp)
		if err != nil {
			return err
		}
		l, err := newU1HolonomyLayer(geo)
		if err != nil {
			return err
		}
		tape := nnlayers.NewTape(1)
		defer tape.Close()
		tape.NoGrad = true
		const b = 8
		u := uniformAngles(geo, b, rng.New(11, "hol-moves"))
		out0, ld0, err := id.Forward(tape, u, tape.Tensor(u.V, b, 1))
		if err != nil {
			return err
		}
		for i := range u.Data {
			if math.Abs(out0.Data[i]-u.Data[i]) > 1e-12 || math.Abs(ld0.Data[i/2]) > 1e-12 {
				return fmt.Errorf("the untrained layer is not the identity")
			}
		}
		out, ld, err := l.Forward(tape, u, tape.Tensor(u.V, b, 1))
		if err != nil {
			return err
		}
		lines := func(x *nnlayers.Tensor, k, dir int) []float64 {
			p := make([]float64, dims[1-dir])
			for s := range x.V {
				p[l.coord[1-dir][s]] += x.Data[x.At(s, k, dir)]
			}
			return p
		}
		moved := 0.0
		for k := range b {
			for s := range u.V {
				w := func(x *nnlayers.Tensor) float64 {
					return x.Data[x.At(s, k, 0)] + x.Data[x.At(int(l.up[0][s]), k, 1)] - x.Data[x.At(int(l.up[1][s]), k, 0)] - x.Data[x.At(s, k, 1)]
				}
				if d := angleDiff(w(out), w(u)); d > 1e-12 {
					return fmt.Errorf("member %d: a plaquette moved by %g", k, d)
				}
			}
			fr := l.frame(u, k)
			h := l.polyakov(u, k)
			for dir := range 2 {
				pin, pout := lines(u, k, dir), lines(out, k, dir)
				shift := pout[0] - pin[0]
				for i := range pin {
					if angleDiff(pout[i]-pin[i], shift) > 1e-12 {
						return fmt.Errorf("member %d: Polyakov lines of direction %d move unequally", k, dir)
					}
				}
				moved += angleDiff(shift, 0)
				h[dir] = wrap(h[dir] + fr.c[dir])
				// H is the mean Polyakov line: L·H ≡ Σ P (mod 2π).
				sum := 0.0
				for _, v := range pin {
					sum += v
				}
				if angleDiff(float64(len(pin))*h[dir], sum) > 1e-10 {
					return fmt.Errorf("member %d: H_%d is not the mean Polyakov line", k, dir)
				}
			}
			// Stage 0 from the doc: H′_0 = g(H_0; W_0[t] φ(H_1)).
			p := make([]float64, sp.Params())
			work := make([]float64, sp.ScratchLen())
			l.mapParams(0, fr.class, holPhi(h[1]), p)
			y0, d0 := sp.Forward(p, h[0], work)
			l.mapParams(1, fr.class, holPhi(y0), p)
			y1, d1 := sp.Forward(p, h[1], work)
			got := lines(out, k, 0)[0] - lines(u, k, 0)[0]
			if angleDiff(got, y0-h[0]) > 1e-10 || angleDiff(lines(out, k, 1)[0]-lines(u, k, 1)[0], y1-h[1]) > 1e-10 {
				return fmt.Errorf("member %d: the twists are not H′ − H", k)
			}
			sum := 0.0
			for s := range u.V {
				sum += ld.Data[ld.At(s, k, 0)]
			}
			if math.Abs(sum-d0-d1) > 1e-12 {
				return fmt.Errorf("member %d: log J %g, want log g′(H_0) + log g′(H_1) = %g", k, sum, d0+d1)
			}
		}
		if moved < 1e-2 {
			return fmt.Errorf("the trained layer moves no holonomy (Σ|α|+|β| = %g)", moved)
		}
		return nil
	})
}

// TestU1HolonomyLayerNeedsOneRank: a split lattice is refused clearly.
func TestU1HolonomyLayerNeedsOneRank(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		geo, err := testGeometry(c, []int{8, 8}, []int{2, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		_, err = newU1HolonomyLayer(geo)
		if err == nil || !strings.Contains(err.Error(), "one rank") {
			return fmt.Errorf("a holonomy layer on 2 ranks per lattice: %v", err)
		}
		return nil
	})
}
