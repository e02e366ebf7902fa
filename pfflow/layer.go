package pfflow

import (
	"fmt"
	"math"
	"math/cmplx"

	"pfmpi/nnlayers"
)

// Partition is how a pseudofermion layer splits the field into active and
// frozen variables (Eqs. 27–32).
type Partition int

const (
	// Checkerboard: the sites of one parity are active, all spins
	// (Eq. 29); A(x) is a spin matrix, log J = 2Nc Σ log|det A|.
	Checkerboard Partition = iota
	// Rows: the sites of the time slices x_0 ≡ r (mod 2) are active, all
	// spins; with even/odd preconditioning only their even sites (Sec.
	// III D 1), the odd sites stay zero.
	Rows
	// Spin: one spin component is active on every site (on every even
	// site with even/odd), P± = (1 ± σ_z)/2 (Eq. 31); A(x) is a scalar,
	// log J = 2Nc Σ log|A| (Eq. 32).
	Spin
)

var partitionNames = []string{"checkerboard", "rows", "spin"}

func (p Partition) String() string { return partitionNames[p] }

// ParsePartition returns the partition named "checkerboard", "rows" or "spin".
func ParsePartition(s string) (Partition, error) {
	for i, n := range partitionNames {
		if n == s {
			return Partition(i), nil
		}
	}
	return 0, fmt.Errorf("pfflow: unknown partition %q (checkerboard, rows or spin)", s)
}

// Layer is a pseudofermion coupling layer (Eq. 28):
//
//	φ′_a(x) = A(x) φ_a(x) + PTCN[U, φ_f](x),   φ′_f = φ_f,
//
// with the PTCN a chain of n_PT PTCs (Spins → H → … → H → Spins features)
// whose matrices, and A(x) − 1, are the outputs of the layer's head of the
// context network.
type Layer struct {
	part     Partition
	alt      int // which of the two alternatives (parity, rows, spin)
	ns, nc   int
	eo       bool
	active   []bool // per local site
	head     *nnlayers.Conv
	bank     *nnlayers.Bank // the head cut into the slices the layer reads
	ptcs     []*PTC
	aPar     int // channels of A(x) − 1
	frz      nnlayers.Records[frozenOp]
	cmb      nnlayers.Records[combineOp]
	name     string
	adjBuf   []complex128      // inverseAdjoint's scratch
	adjViews []nnlayers.Tensor // inverseAdjoint's views of the links and matrices
}

// Head channels: A first, then the PTC matrices in order.
func (l *Layer) outputs() int {
	n := l.aPar
	for _, p := range l.ptcs {
		n += p.Params()
	}
	return n
}

// Params returns the parameters of the layer's head.
func (l *Layer) Params() nnlayers.Params { return l.head.Params() }

// Head is the layer's head: one convolution of the context trunk's output
// to A − 1 and the PTC matrices, tanh fused (a member of the model's bank
// of heads).
func (l *Layer) Head() *nnlayers.Conv { return l.head }

// isActive reports whether spin component a at local site s is active.
func (l *Layer) isActive(s, a int) bool {
	if !l.active[s] {
		return false
	}
	return l.part != Spin || a == l.alt
}

// slices returns the parts of the head the layer reads: A − 1, then the
// matrices of each PTC (channels of the head's output, each returned in a
// tensor of its own by the layer's bank).
func (l *Layer) slices() []nnlayers.Outputs {
	s := []nnlayers.Outputs{l.head.Outputs(0, l.aPar)}
	off := l.aPar
	for _, p := range l.ptcs {
		s = append(s, l.head.Outputs(off, off+p.Params()))
		off += p.Params()
	}
	return s
}

// Heads returns the layer's head outputs for the trunk's output ctx: A − 1,
// then the matrices of each PTC (the slice is the layer's and is overwritten
// by its next evaluation on t's next pass).
func (l *Layer) Heads(t *nnlayers.Tape, ctx *nnlayers.Tensor) []*nnlayers.Tensor {
	return l.bank.Apply(t, ctx)
}

// forward applies the layer to phi (V × B × Spins·Nc·2) given the links
// and its head's output par (A − 1, then the matrices of each PTC) and
// returns φ′ and logJ plus the layer's log-Jacobian density.
func (l *Layer) forward(t *nnlayers.Tape, links *nnlayers.Tensor, par []*nnlayers.Tensor, phi, logJ *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	h, err := l.ptcn(t, links, par[1:], l.frozen(t, phi))
	if err != nil {
		return nil, nil, err
	}
	out, ld := l.combine(t, phi, h, par[0], false)
	return out, nnlayers.Add(t, logJ, ld), nil
}

// inverse maps φ′ back through the layer (t in NoGrad mode) and returns φ
// and the log-Jacobian density of the forward map.
func (l *Layer) inverse(t *nnlayers.Tape, links *nnlayers.Tensor, par []*nnlayers.Tensor, out *nnlayers.Tensor) (*nnlayers.Tensor, *nnlayers.Tensor, error) {
	if !t.NoGrad {
		return nil, nil, fmt.Errorf("pfflow: %s: Inverse needs a tape in NoGrad mode", l.name)
	}
	h, err := l.ptcn(t, links, par[1:], l.frozen(t, out))
	if err != nil {
		return nil, nil, err
	}
	in, ld := l.combine(t, out, h, par[0], true)
	return in, ld, nil
}

func (l *Layer) ptcn(t *nnlayers.Tape, links *nnlayers.Tensor, ms []*nnlayers.Tensor, h *nnlayers.Tensor) (*nnlayers.Tensor, error) {
	for i, p := range l.ptcs {
		var err error
		if h, err = p.Apply(t, links, h, ms[i], 0); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// frozen returns φ_f = (1 − P)φ.
func (l *Layer) frozen(t *nnlayers.Tape, phi *nnlayers.Tensor) *nnlayers.Tensor {
	start := t.Begin()
	defer t.End(layerKind, start, 0, false)
	out := t.Tensor(phi.V, phi.B, phi.C)
	o := l.frz.Next(t)
	*o = frozenOp{l: l, in: phi, out: out}
	o.apply(false)
	t.RecordCustom(o)
	return out
}

type frozenOp struct {
	l       *Layer
	in, out *nnlayers.Tensor
}

func (o *frozenOp) apply(back bool) {
	l := o.l
	per := l.nc * 2
	for s := 0; s < o.in.V; s++ {
		for b := 0; b < o.in.B; b++ {
			base := o.in.At(s, b, 0)
			for a := range l.ns {
				if l.isActive(s, a) {
					continue
				}
				r := o.in.Data[base+a*per : base+(a+1)*per]
				if !back {
					copy(o.out.Data[base+a*per:], r)
					continue
				}
				for i := range per {
					o.in.Grad[base+a*per+i] += o.out.Grad[base+a*per+i]
				}
			}
		}
	}
}

// layerKind is the pseudofermion layers' own work in a Profile (masks, A).
const layerKind = "pseudofermion layers"

// Kind names the operation's kind in a tape's Profile.
func (o *frozenOp) Kind() string { return layerKind }

// Kind names the operation's kind in a tape's Profile.
func (o *combineOp) Kind() string { return layerKind }

func (o *frozenOp) Backward(*nnlayers.Tape) error {
	if o.in.Grad != nil {
		o.apply(true)
	}
	return nil
}

// combine returns φ′ (or, inverse, φ) and the log-Jacobian density; A − 1
// is read from a.
func (l *Layer) combine(t *nnlayers.Tape, phi, h, a *nnlayers.Tensor, inverse bool) (*nnlayers.Tensor, *nnlayers.Tensor) {
	start := t.Begin()
	defer t.End(layerKind, start, 0, false)
	out := t.Tensor(phi.V, phi.B, phi.C)
	ld := t.Tensor(phi.V, phi.B, 1)
	o := l.cmb.Next(t)
	*o = combineOp{l: l, phi: phi, h: h, a: a, out: out, ld: ld, inverse: inverse, work: o.work}
	o.ensure(t.Workers())
	t.Run(nnlayers.Chunks(phi.B), o)
	if !inverse {
		t.RecordCustom(o)
	}
	return out, ld
}

type combineOp struct {
	l                  *Layer
	phi, h, a, out, ld *nnlayers.Tensor
	inverse, back      bool
	work               [][]complex128
}

func (o *combineOp) ensure(w int) {
	n := o.l.ns
	for len(o.work) < w {
		o.work = append(o.work, make([]complex128, 6*n*n+2*n))
	}
}

func (o *combineOp) Run(w, chunk int) {
	l := o.l
	ns, nc := l.ns, l.nc
	k := ns // size of A
	if l.part == Spin {
		k = 1
	}
	buf := o.work[w]
	A, inv, work := buf[:k*k], buf[k*k:2*k*k], buf[2*k*k:4*k*k]
	ga := buf[4*k*k : 5*k*k]
	vec := buf[6*ns*ns:]
	first := 0 // first active spin
	if l.part == Spin {
		first = l.alt
	}
	lo, hi := nnlayers.ChunkRange(chunk, o.phi.B)
	per := nc * 2
	for s := 0; s < o.phi.V; s++ {
		for b := lo; b < hi; b++ {
			base := o.phi.At(s, b, 0)
			if !o.back {
				copy(o.out.Data[base:base+o.phi.C], o.phi.Data[base:base+o.phi.C])
			}
			if !l.active[s] {
				if o.back && o.phi.Grad != nil {
					for i := range o.phi.C {
						o.phi.Grad[base+i] += o.out.Grad[base+i]
					}
				}
				continue
			}
			ab := o.a.At(s, b, 0)
			for i := range k * k {
				A[i] = cget(o.a.Data, ab+2*i)
			}
			for i := range k {
				A[i*k+i]++
			}
			det := invert(inv, A, work, k)
			li := o.ld.At(s, b, 0)
			switch {
			case o.inverse: // φ_a = A⁻¹(φ′_a − h_a)
				o.ld.Data[li] = 2 * float64(nc) * math.Log(cmplx.Abs(det))
				for c := range nc {
					for i := range k {
						vec[i] = cget(o.phi.Data, base+(first+i)*per+2*c) - cget(o.h.Data, base+(first+i)*per+2*c)
					}
					for i := range k {
						var z complex128
						for j := range k {
							z += inv[i*k+j] * vec[j]
						}
						cset(o.out.Data, base+(first+i)*per+2*c, z)
					}
				}
			case !o.back: // φ′_a = A φ_a + h_a
				o.ld.Data[li] = 2 * float64(nc) * math.Log(cmplx.Abs(det))
				for c := range nc {
					for i := range k {
						z := cget(o.h.Data, base+(first+i)*per+2*c)
						for j := range k {
							z += A[i*k+j] * cget(o.phi.Data, base+(first+j)*per+2*c)
						}
						cset(o.out.Data, base+(first+i)*per+2*c, z)
					}
				}
			default:
				// G_A = Σ_c G′_a φ_a† + g·2Nc (A⁻¹)†; G_φa = A† G′_a; G_ha = G′_a.
				gld := o.ld.Grad[li] * 2 * float64(nc)
				for i := range k {
					for j := range k {
						ga[i*k+j] = complex(gld, 0) * conj(inv[j*k+i])
					}
				}
				for c := range nc {
					for i := range k {
						g := cget(o.out.Grad, base+(first+i)*per+2*c)
						cadd(o.h.Grad, base+(first+i)*per+2*c, g)
						for j := range k {
							ga[i*k+j] += g * conj(cget(o.phi.Data, base+(first+j)*per+2*c))
						}
					}
					if o.phi.Grad != nil {
						for j := range k {
							var z complex128
							for i := range k {
								z += conj(A[i*k+j]) * cget(o.out.Grad, base+(first+i)*per+2*c)
							}
							cadd(o.phi.Grad, base+(first+j)*per+2*c, z)
						}
					}
				}
				for i := range k * k {
					cadd(o.a.Grad, ab+2*i, ga[i])
				}
				if o.phi.Grad != nil {
					// The frozen spins of an active site (spin partition).
					for a := range ns {
						if a >= first && a < first+k {
							continue
						}
						for i := range per {
							o.phi.Grad[base+a*per+i] += o.out.Grad[base+a*per+i]
						}
					}
				}
			}
		}
	}
}

func (o *combineOp) Backward(t *nnlayers.Tape) error {
	o.a.GradForAdd() // A's gradient may be a head's, left uncleared
	o.back = true
	t.Run(nnlayers.Chunks(o.phi.B), o)
	o.back = false
	return nil
}
