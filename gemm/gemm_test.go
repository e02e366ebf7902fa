package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func randomDense[T Float](r *rand.Rand, rows, cols, pad int, trans bool) Dense[T] {
	sr, sc := rows, cols
	if trans {
		sr, sc = cols, rows
	}
	d := Dense[T]{Stride: sc + pad, Trans: trans}
	d.Data = make([]T, sr*d.Stride)
	for i := range d.Data {
		d.Data[i] = T(r.NormFloat64())
	}
	return d
}

func eps[T Float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 0x1p-23
	}
	return 0x1p-52
}

// coverage records the blocks an epilogue saw.
type coverage struct {
	seen []int
	ldc  int
}

func (cv *coverage) Finish(c []float64, ldc, i, m, j, n int) {
	for r := i; r < i+m; r++ {
		for s := j; s < j+n; s++ {
			cv.seen[r*ldc+s]++
		}
	}
}

type coverage32 struct{ coverage }

func (cv *coverage32) Finish(c []float32, ldc, i, m, j, n int) {
	cv.coverage.Finish(nil, ldc, i, m, j, n)
}

// shapes cover single tiles, ragged edges in m, n and k, several k blocks
// and several column blocks.
var shapes = [][3]int{
	{1, 1, 1}, {3, 5, 7}, {12, 16, 1}, {12, 32, 9}, {13, 17, 19}, {25, 33, 256}, {6, 8, 257},
	{37, 70, 300}, {96, 248, 144}, {100, 530, 40}, {7, 1030, 5}, {200, 3, 600},
}

func testKernel[T Float](t *testing.T, a Arch) {
	k, err := New[T](a)
	if err != nil {
		t.Skip(err)
	}
	r := rand.New(rand.NewPCG(1, uint64(a)))
	var w Workspace[T]
	for _, sh := range shapes {
		m, n, kk := sh[0], sh[1], sh[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					for _, packed := range []bool{false, true} {
						name := fmt.Sprintf("%s/%dx%dx%d/tA=%v/tB=%v/acc=%v/packed=%v", k, m, n, kk, tA, tB, acc, packed)
						A := randomDense[T](r, m, kk, 3, tA)
						B := randomDense[T](r, kk, n, 1, tB)
						ldc := n + 2
						c := make([]T, m*ldc)
						for i := range c {
							c[i] = T(r.NormFloat64())
						}
						want := append([]T(nil), c...)
						Ref(m, n, kk, A, B, want, ldc, acc)
						cv := &coverage{seen: make([]int, len(c)), ldc: ldc}
						var epi Epilogue[T]
						if _, f32 := any(c[0]).(float32); f32 {
							epi = any(&coverage32{*cv}).(Epilogue[T])
							cv = &any(epi).(*coverage32).coverage
						} else {
							epi = any(cv).(Epilogue[T])
						}
						var as ASource[T] = A
						var bs BSource[T] = B
						if packed {
							pa, pb := new(Packed[T]), new(Packed[T])
							k.PackA(pa, A, m, kk)
							k.PackB(pb, B, kk, n)
							as, bs = pa, pb
						}
						k.Mul(&w, m, n, kk, as, bs, c, ldc, acc, epi)
						tol := 4 * float64(kk+1) * eps[T]() * 4
						for i := range m {
							for j := range ldc {
								got, ref := float64(c[i*ldc+j]), float64(want[i*ldc+j])
								if j >= n {
									if got != ref {
										t.Fatalf("%s: wrote outside C at (%d, %d)", name, i, j)
									}
									continue
								}
								if math.Abs(got-ref) > tol*(1+math.Abs(ref)) {
									t.Fatalf("%s: C(%d,%d) = %g, want %g", name, i, j, got, ref)
								}
								if cv.seen[i*ldc+j] != 1 {
									t.Fatalf("%s: epilogue saw (%d,%d) %d times", name, i, j, cv.seen[i*ldc+j])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestEveryVariantTested: the shapes of TestKernels use every micro-kernel
// of every family.
func TestEveryVariantTested(t *testing.T) {
	check := func(name string, nrs []int, pick func(n int) int) {
		seen := map[int]bool{}
		for _, sh := range shapes {
			seen[pick(sh[1])] = true
		}
		for _, nr := range nrs {
			if !seen[nr] {
				t.Errorf("%s: no test shape uses the kernel with NR = %d", name, nr)
			}
		}
	}
	for _, a := range Archs() {
		k64, k32 := MustNew[float64](a), MustNew[float32](a)
		var n64, n32 []int
		for _, v := range k64.vars {
			n64 = append(n64, v.nr)
		}
		for _, v := range k32.vars {
			n32 = append(n32, v.nr)
		}
		check(k64.String(), n64, func(n int) int { return k64.pick(n).nr })
		check(k32.String(), n32, func(n int) int { return k32.pick(n).nr })
	}
}

func TestKernels(t *testing.T) {
	for _, a := range []Arch{Generic, AVX2, AVX512} {
		t.Run(a.String()+"/float64", func(t *testing.T) { testKernel[float64](t, a) })
		t.Run(a.String()+"/float32", func(t *testing.T) { testKernel[float32](t, a) })
	}
}

// TestRowsIndependentOfSplit: a row of C is the same bit for bit whether
// it is computed in a product of many rows or of a few, at any offset.
func TestRowsIndependentOfSplit(t *testing.T) {
	for _, a := range Archs() {
		k := MustNew[float64](a)
		r := rand.New(rand.NewPCG(2, 3))
		m, n, kk := 61, 45, 530
		A := randomDense[float64](r, m, kk, 0, false)
		B := randomDense[float64](r, kk, n, 0, false)
		full := make([]float64, m*n)
		var w Workspace[float64]
		k.Mul(&w, m, n, kk, A, B, full, n, false, nil)
		for _, split := range [][2]int{{0, 1}, {5, 3}, {17, 29}, {60, 1}} {
			i0, rows := split[0], split[1]
			part := make([]float64, rows*n)
			sub := Dense[float64]{Data: A.Data[i0*kk:], Stride: kk}
			k.Mul(&w, rows, n, kk, sub, B, part, n, false, nil)
			for i := range rows {
				for j := range n {
					if part[i*n+j] != full[(i0+i)*n+j] {
						t.Fatalf("%s: row %d of a %d-row product differs from the full product in column %d", k, i0+i, rows, j)
					}
				}
			}
		}
		// Columns too: a product of the first columns only.
		part := make([]float64, m*7)
		k.Mul(&w, m, 7, kk, A, Dense[float64]{Data: B.Data, Stride: n}, part, 7, false, nil)
		for i := range m {
			for j := range 7 {
				if part[i*7+j] != full[i*n+j] {
					t.Fatalf("%s: column %d differs in a narrower product", k, j)
				}
			}
		}
	}
}

func TestEmptyK(t *testing.T) {
	k := MustNew[float64](Best())
	c := []float64{1, 2, 3, 4}
	var w Workspace[float64]
	k.Mul(&w, 2, 2, 0, Dense[float64]{}, Dense[float64]{}, c, 2, true, nil)
	if c[3] != 4 {
		t.Fatal("C += A·B with k = 0 changed C")
	}
	k.Mul(&w, 2, 2, 0, Dense[float64]{}, Dense[float64]{}, c, 2, false, nil)
	for _, v := range c {
		if v != 0 {
			t.Fatal("C = A·B with k = 0 is not zero")
		}
	}
}

func TestMulAllocates(t *testing.T) {
	k := MustNew[float64](Best())
	r := rand.New(rand.NewPCG(4, 5))
	A := randomDense[float64](r, 50, 300, 0, false)
	B := randomDense[float64](r, 300, 40, 0, true)
	c := make([]float64, 50*40)
	var w Workspace[float64]
	// Operands held behind pointers (as a layer holds them) are not copied.
	var as ASource[float64] = &A
	var bs BSource[float64] = &B
	k.Mul(&w, 50, 40, 300, as, bs, c, 40, false, nil)
	if n := testing.AllocsPerRun(10, func() { k.Mul(&w, 50, 40, 300, as, bs, c, 40, true, nil) }); n != 0 {
		t.Fatalf("Mul allocates %v times per call with a sized workspace", n)
	}
}

func TestPeakFlops(t *testing.T) {
	for _, a := range Archs() {
		p64 := PeakFlops[float64](a, 20*time.Millisecond)
		p32 := PeakFlops[float32](a, 20*time.Millisecond)
		if !(p64 > 0 && p32 > 0) {
			t.Fatalf("%s: peak %g (float64), %g (float32)", a, p64, p32)
		}
		t.Logf("%s: %.1f GFLOP/s float64, %.1f float32", a, p64/1e9, p32/1e9)
	}
}

func TestParseArch(t *testing.T) {
	for _, a := range []Arch{Generic, AVX2, AVX512} {
		if got, err := ParseArch(a.String()); err != nil || got != a {
			t.Fatalf("ParseArch(%q) = %v, %v", a.String(), got, err)
		}
	}
	if got, _ := ParseArch("auto"); got != Best() {
		t.Fatal("auto is not Best")
	}
	if _, err := ParseArch("sse"); err == nil {
		t.Fatal("ParseArch accepted sse")
	}
}

// TestPackedViews: products with views of packed operands (rows of A,
// columns of B) equal the corresponding part of the full product bit for
// bit.
func TestPackedViews(t *testing.T) {
	for _, a := range Archs() {
		k := MustNew[float64](a)
		mr := k.mr
		r := rand.New(rand.NewPCG(6, 7))
		m, n, kk := 5*mr+3, 133, 300
		A := randomDense[float64](r, m, kk, 0, false)
		B := randomDense[float64](r, kk, n, 0, false)
		pa, pb := new(Packed[float64]), new(Packed[float64])
		k.PackA(pa, &A, m, kk)
		k.PackB(pb, &B, kk, n)
		nr := pb.tile
		full := make([]float64, m*n)
		var w Workspace[float64]
		k.Mul(&w, m, n, kk, pa, pb, full, n, false, nil)
		var va, vb Packed[float64]
		pa.View(&va, 2*mr, m-2*mr)
		pb.View(&vb, nr, 2*nr+3)
		part := make([]float64, (m-2*mr)*(2*nr+3))
		k.Mul(&w, m-2*mr, 2*nr+3, kk, &va, &vb, part, 2*nr+3, false, nil)
		for i := range m - 2*mr {
			for j := range 2*nr + 3 {
				if part[i*(2*nr+3)+j] != full[(2*mr+i)*n+nr+j] {
					t.Fatalf("%s: view product (%d, %d) differs from the full product", k, i, j)
				}
			}
		}
	}
}

// Packing an operand in pieces (rows of A, columns of B, in any order, as
// goroutines do) gives the same packed operand as packing it whole.
func TestPackInPieces(t *testing.T) {
	for _, a := range Archs() {
		k := MustNew[float64](a)
		r := rand.New(rand.NewPCG(8, 9))
		m, n, kk := 7*k.RowTile()+5, 141, k.KC()+37
		A := randomDense[float64](r, m, kk, 0, false)
		B := randomDense[float64](r, kk, n, 0, false)
		wa, wb := new(Packed[float64]), new(Packed[float64])
		k.PackA(wa, &A, m, kk)
		k.PackB(wb, &B, kk, n)
		pa, pb := new(Packed[float64]), new(Packed[float64])
		k.PrepareA(pa, m, kk)
		for i := range pa.data {
			pa.data[i] = 99 // stale contents must be overwritten
		}
		step := 2 * k.RowTile()
		for i0 := (m - 1) / step * step; i0 >= 0; i0 -= step {
			k.PackARows(pa, &A, i0, min(i0+step, m))
		}
		k.PrepareB(pb, kk, n)
		for i := range pb.data {
			pb.data[i] = 99
		}
		cs := 3 * pb.ColTile()
		for j0 := (n - 1) / cs * cs; j0 >= 0; j0 -= cs {
			k.PackBCols(pb, &B, j0, min(j0+cs, n))
		}
		for name, pair := range map[string][2]*Packed[float64]{"A": {wa, pa}, "B": {wb, pb}} {
			whole, pieces := pair[0], pair[1]
			if len(whole.data) != len(pieces.data) {
				t.Fatalf("%s: packed %s sizes %d and %d", k, name, len(whole.data), len(pieces.data))
			}
			for i := range whole.data {
				if whole.data[i] != pieces.data[i] {
					t.Fatalf("%s: packed %s element %d: whole %g, in pieces %g", k, name, i, whole.data[i], pieces.data[i])
				}
			}
		}
	}
}
