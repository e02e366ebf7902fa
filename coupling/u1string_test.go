package coupling

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/nnlayers"
	"pfmpi/rng"
)

// u1StringCase is a U(1) string layer under test: a marginal pattern and
// its bridge plaquettes.
type u1StringCase struct {
	index, bridge int
}

func (c u1StringCase) String() string { return fmt.Sprintf("marginal%d-bridge%d", c.index, c.bridge) }

// newU1StringLayer builds the case on geo with parameters away from the
// identity, so that every term of the map is exercised.
func newU1StringLayer(geo *nnlayers.Geometry, c u1StringCase) (*U1StringLayer, error) {
	sp, err := NewSpline(4)
	if err != nil {
		return nil, err
	}
	dims := geo.Layout().Lattice().Dims()
	l, err := NewU1StringLayer(geo, U1StringLayerSpec{Index: c.index, Pattern: MarginalStringPatterns(dims)[c.index], Map: sp, Bridge: c.bridge})
	if err != nil {
		return nil, err
	}
	for i, p := range l.Params() {
		init := append([]float64(nil), p.Value...)
		p.Init(uint64(31+i+10*c.index), 0.25)
		for j := range p.Value {
			p.Value[j] += init[j]
		}
	}
	return l, nil
}

// uniformAngles returns angles in [0, 2π) keyed by global site and member.
func uniformAngles(geo *nnlayers.Geometry, b int, key rng.Key) *nnlayers.Tensor {
	x := nnlayers.NewTensor(geo.Volume(), b, 2)
	ly := geo.Layout()
	for s := 0; s < x.V; s++ {
		for k := range b {
			st := key.Derive(uint64(k)).Stream(uint64(ly.GlobalIndex(s)))
			x.Data[x.At(s, k, 0)] = 2 * math.Pi * st.Float64()
			x.Data[x.At(s, k, 1)] = 2 * math.Pi * st.Float64()
		}
	}
	return x
}

// angleDiff returns |a − b| mod 2π, in [0, π].
func angleDiff(a, b float64) float64 { return math.Abs(centred(a - b)) }

// u1LayerUnderTest is a U(1) gauge layer: Forward, Inverse and Params.
type u1LayerUnderTest interface {
	Forward(t *nnlayers.Tape, theta, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
	Inverse(t *nnlayers.Tape, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error)
	Params() nnlayers.Params
}

// checkU1Layer checks inverse∘forward = id, gauge equivariance with
// invariant log J, and the VJP (angles and parameters) against central
// differences, for layer l on geo (up: the neighbour tables).
func checkU1Layer(geo *nnlayers.Geometry, l u1LayerUnderTest, up [2][]int32) error {
	tape := nnlayers.NewTape(2)
	defer tape.Close()
	const b = 3
	u := uniformAngles(geo, b, rng.New(1, "u1s-angles"))
	forward := func(x *nnlayers.Tensor, noGrad bool) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
		tape.Reset()
		tape.NoGrad = noGrad
		return l.Forward(tape, x, tape.Tensor(x.V, x.B, 1))
	}
	out, ld, err := forward(u, true)
	if err != nil {
		return err
	}
	outD, ldD := append([]float64(nil), out.Data...), append([]float64(nil), ld.Data...)
	sumLD, moved := 0.0, 0.0
	for _, v := range ldD {
		sumLD += math.Abs(v)
	}
	for i := range outD {
		moved += angleDiff(outD[i], u.Data[i])
	}
	if sumLD < 1e-3 || moved < 1e-3 {
		return fmt.Errorf("the layer is the identity (Σ|log J| = %g, Σ|Δθ| = %g)", sumLD, moved)
	}
	tape.Reset()
	tape.NoGrad = true
	back, ldb, err := l.Inverse(tape, &nnlayers.Tensor{V: u.V, B: b, C: 2, Data: outD})
	if err != nil {
		return err
	}
	for i := range back.Data {
		if angleDiff(back.Data[i], u.Data[i]) > 1e-10 {
			return fmt.Errorf("inverse misses an angle by %g", centred(back.Data[i]-u.Data[i]))
		}
	}
	for i := range ldb.Data {
		if math.Abs(ldb.Data[i]-ldD[i]) > 1e-9 {
			return fmt.Errorf("inverse log J differs at %d: %g vs %g", i, ldb.Data[i], ldD[i])
		}
	}
	// Equivariance: θ_μ(x) → θ_μ(x) + ω(x) − ω(x+μ̂).
	om := uniformAngles(geo, b, rng.New(2, "u1s-omega"))
	transform := func(x []float64) *nnlayers.Tensor {
		y := nnlayers.NewTensor(u.V, b, 2)
		for s := 0; s < u.V; s++ {
			for k := range b {
				for d := range 2 {
					up := int(up[d][s])
					y.Data[y.At(s, k, d)] = x[y.At(s, k, d)] + om.Data[om.At(s, k, 0)] - om.Data[om.At(up, k, 0)]
				}
			}
		}
		return y
	}
	rot, ldr, err := forward(transform(u.Data), true)
	if err != nil {
		return err
	}
	want := transform(outD)
	for i := range want.Data {
		if angleDiff(rot.Data[i], want.Data[i]) > 1e-10 {
			return fmt.Errorf("f(θ^ω) differs from f(θ)^ω by %g", centred(rot.Data[i]-want.Data[i]))
		}
	}
	for i := range ldD {
		if math.Abs(ldr.Data[i]-ldD[i]) > 1e-9 {
			return fmt.Errorf("log J not gauge invariant")
		}
	}
	// VJP: L = Σ cw·sin(θ′) + Σ vw·log J (periodic in θ′).
	cw := uniformAngles(geo, b, rng.New(3, "u1s-c"))
	vw := uniformAngles(geo, b, rng.New(4, "u1s-v"))
	loss := func() (float64, error) {
		out, ld, err := forward(u, true)
		if err != nil {
			return 0, err
		}
		s := 0.0
		for i := range out.Data {
			s += cw.Data[i] * math.Sin(out.Data[i])
		}
		for i := range ld.Data {
			s += vw.Data[2*i] * ld.Data[i]
		}
		return s, nil
	}
	out2, ld2, err := forward(u, false)
	if err != nil {
		return err
	}
	for i := range out2.Grad {
		out2.Grad[i] = cw.Data[i] * math.Cos(out2.Data[i])
	}
	for i := range ld2.Grad {
		ld2.Grad[i] = vw.Data[2*i]
	}
	clear(u.Grad)
	l.Params().ZeroGrad()
	tape.Backward()
	st := rng.New(5, "u1s-dir").Stream(0)
	dir := make([]float64, len(u.Data))
	want0 := 0.0
	for i := range dir {
		dir[i] = st.Normal()
		want0 += dir[i] * u.Grad[i]
	}
	saved := append([]float64(nil), u.Data...)
	const eps = 1e-6
	for i := range u.Data {
		u.Data[i] = saved[i] + eps*dir[i]
	}
	lp, _ := loss()
	for i := range u.Data {
		u.Data[i] = saved[i] - eps*dir[i]
	}
	lm, _ := loss()
	copy(u.Data, saved)
	if fd := (lp - lm) / (2 * eps); math.Abs(fd-want0) > 1e-6*(1+math.Abs(want0)) {
		return fmt.Errorf("angles: gradient %.10g, central difference %.10g", want0, fd)
	}
	for _, p := range l.Params() {
		st := rng.New(6, p.Name).Stream(0)
		dir := make([]float64, p.Size())
		gsum := 0.0
		for i := range dir {
			dir[i] = st.Normal()
			gsum += dir[i] * p.Grad[i]
		}
		sv := append([]float64(nil), p.Value...)
		for i := range dir {
			p.Value[i] = sv[i] + eps*dir[i]
		}
		lp, _ := loss()
		for i := range dir {
			p.Value[i] = sv[i] - eps*dir[i]
		}
		lm, _ := loss()
		copy(p.Value, sv)
		if fd := (lp - lm) / (2 * eps); math.Abs(fd-gsum) > 1e-6*(1+math.Abs(gsum)) || gsum == 0 {
			return fmt.Errorf("parameter %s: %.10g, central difference %.10g", p.Name, gsum, fd)
		}
	}
	return nil
}

// TestU1StringLayerInverseEquivarianceVJP: inverse∘forward = id, gauge
// equivariance with invariant log J, and the VJP (angles and parameters)
// against central differences, for the marginal patterns with and without
// bridge plaquettes.
func TestU1StringLayerInverseEquivarianceVJP(t *testing.T) {
	for _, tc := range []u1StringCase{{0, 0}, {0, 3}, {1, 0}, {1, 7}} {
		t.Run(tc.String(), func(t *testing.T) {
			mpitest.Run(t, 1, func(c mpi.Comm) error {
				geo, err := testGeometry(c, []int{8, 8}, []int{1, 1})
				if err != nil {
					return err
				}
				defer geo.Close()
				l, err := newU1StringLayer(geo, tc)
				if err != nil {
					return err
				}
				return checkU1Layer(geo, l, l.up)
			})
		})
	}
}

// checkU1LogJacobian compares layer l's Σ log J with the log determinant
// of the numerical Jacobian of all 2V angles, at one random configuration.
func checkU1LogJacobian(t *testing.T, geo *nnlayers.Geometry, l u1LayerUnderTest, seed uint64) error {
	tape := nnlayers.NewTape(1)
	defer tape.Close()
	tape.NoGrad = true
	u := uniformAngles(geo, 1, rng.New(seed, "u1-brute"))
	apply := func() (*nnlayers.Tensor, *nnlayers.Tensor) {
		tape.Reset()
		out, ld, err := l.Forward(tape, u, tape.Tensor(u.V, 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		return out, ld
	}
	out0, ld := apply()
	base := append([]float64(nil), out0.Data...)
	sumLD := 0.0
	for _, v := range ld.Data {
		sumLD += v
	}
	n := len(u.Data)
	saved := append([]float64(nil), u.Data...)
	jac := mat.NewDense(n, n, nil)
	const eps = 1e-6
	for col := range n {
		copy(u.Data, saved)
		u.Data[col] += eps
		op, _ := apply()
		yp := append([]float64(nil), op.Data...)
		u.Data[col] -= 2 * eps
		om, _ := apply()
		for r := range n {
			jac.Set(r, col, (centred(yp[r]-base[r])-centred(om.Data[r]-base[r]))/(2*eps))
		}
	}
	copy(u.Data, saved)
	var lu mat.LU
	lu.Factorize(jac)
	brute, _ := lu.LogDet()
	t.Logf("Σ log J = %.10g, brute-force log|det| = %.10g (%d × %d)", sumLD, brute, n, n)
	if math.Abs(brute-sumLD) > 1e-6*(1+math.Abs(sumLD)) || math.Abs(sumLD) < 1e-3 {
		return fmt.Errorf("Σ log J = %.10g, brute force %.10g", sumLD, brute)
	}
	return nil
}

// TestU1StringLogJacobianBruteForce compares Σ log J with the log
// determinant of the numerical Jacobian of all 2V angles (4×4 lattice).
func TestU1StringLogJacobianBruteForce(t *testing.T) {
	for _, tc := range []u1StringCase{{0, 2}, {1, 3}} {
		t.Run(tc.String(), func(t *testing.T) {
			mpitest.Run(t, 1, func(c mpi.Comm) error {
				geo, err := testGeometry(c, []int{4, 4}, []int{1, 1})
				if err != nil {
					return err
				}
				defer geo.Close()
				l, err := newU1StringLayer(geo, tc)
				if err != nil {
					return err
				}
				return checkU1LogJacobian(t, geo, l, 7)
			})
		})
	}
}

// TestU1StringLayerNeedsOneRank: a split lattice is refused clearly.
func TestU1StringLayerNeedsOneRank(t *testing.T) {
	mpitest.Run(t, 2, func(c mpi.Comm) error {
		geo, err := testGeometry(c, []int{8, 8}, []int{2, 1})
		if err != nil {
			return err
		}
		defer geo.Close()
		_, err = newU1StringLayer(geo, u1StringCase{0, 0})
		if err == nil || !strings.Contains(err.Error(), "one rank") {
			return fmt.Errorf("a string layer on 2 ranks per lattice: %v", err)
		}
		return nil
	})
}
