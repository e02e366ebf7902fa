package nnlayers

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"

	"pfmpi/mpi"
	"pfmpi/rng"
)

// Param is a trainable parameter: values and the gradient accumulated by
// backward passes, with a name unique in its network and a shape.
type Param struct {
	Name  string
	Shape []int
	Value []float64
	Grad  []float64
}

// NewParam returns a zero parameter.
func NewParam(name string, shape ...int) *Param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Param{Name: name, Shape: slices.Clone(shape), Value: make([]float64, n), Grad: make([]float64, n)}
}

// Size is the number of values.
func (p *Param) Size() int { return len(p.Value) }

// Init fills the values: Normal(0, std²) from rng key (seed, "nnlayers/"+name),
// the same on every rank.
func (p *Param) Init(seed uint64, std float64) {
	st := rng.New(seed, "nnlayers/"+p.Name).Stream(0)
	for i := range p.Value {
		p.Value[i] = std * st.Normal()
	}
}

// XavierStd is the standard deviation of Xavier (Glorot) normal
// initialisation with the given gain: gain·√(2/(fanIn + fanOut)).
func XavierStd(gain float64, fanIn, fanOut int) float64 {
	return gain * math.Sqrt(2/float64(fanIn+fanOut))
}

// Params is an ordered set of parameters (a network's).
type Params []*Param

// Get returns the parameter with the given name, or nil.
func (ps Params) Get(name string) *Param {
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Size is the total number of values.
func (ps Params) Size() int {
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	return n
}

// ZeroGrad clears every gradient.
func (ps Params) ZeroGrad() {
	for _, p := range ps {
		clear(p.Grad)
	}
}

// Check reports duplicate names.
func (ps Params) Check() error {
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name] {
			return fmt.Errorf("nnlayers: two parameters named %q", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// AllreduceGrads sums every gradient over the ranks of comm (the world:
// domain and replica ranks) in a fixed order, in one message.
func AllreduceGrads(comm mpi.Comm, ps Params, buf []float64) []float64 {
	n := ps.Size()
	if cap(buf) < n {
		buf = make([]float64, n)
	}
	buf = buf[:n]
	i := 0
	for _, p := range ps {
		i += copy(buf[i:], p.Grad)
	}
	comm.Allreduce(mpi.Sum, buf)
	i = 0
	for _, p := range ps {
		i += copy(p.Grad, buf[i:])
	}
	return buf
}

// BroadcastParams gives every rank of comm rank 0's values.
func BroadcastParams(comm mpi.Comm, ps Params) {
	for _, p := range ps {
		comm.Bcast(0, mpi.Bytes(p.Value))
	}
}

// GradNorm returns the Euclidean norm of all gradients together.
func (ps Params) GradNorm() float64 {
	s := 0.0
	for _, p := range ps {
		for _, g := range p.Grad {
			s += g * g
		}
	}
	return math.Sqrt(s)
}

// The serialised form of a parameter set (little endian):
//
//	"PFNNPAR1", count uint32, then per parameter: name length uint32, name,
//	rank uint32, dims uint32…, values float64…; finally CRC-32C (Castagnoli)
//	of everything before it, uint32.
const paramsMagic = "PFNNPAR1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteParams writes the values of ps.
func WriteParams(w io.Writer, ps Params) error {
	return writeChecked(w, func(w io.Writer) error {
		return writeSet(w, paramsMagic, ps, func(p *Param) []float64 { return p.Value })
	})
}

// ReadParams sets the values of ps from r, which must hold parameters of the
// same names and shapes (in any order).
func ReadParams(r io.Reader, ps Params) error {
	return readChecked(r, func(r io.Reader) error {
		return readSet(r, paramsMagic, ps, false, func(p *Param) []float64 { return p.Value })
	})
}

// ReadParamsSubset sets the values of ps from r, which must hold every one
// of them (same names and shapes) and may hold others, which it skips: the
// gauge flow of a joint model's checkpoint whose pseudofermion flows differ.
func ReadParamsSubset(r io.Reader, ps Params) error {
	return readChecked(r, func(r io.Reader) error {
		return readSet(r, paramsMagic, ps, true, func(p *Param) []float64 { return p.Value })
	})
}

func writeSet(w io.Writer, magic string, ps Params, values func(*Param) []float64) error {
	le := binary.LittleEndian
	if _, err := io.WriteString(w, magic); err != nil {
		return err
	}
	if err := binary.Write(w, le, uint32(len(ps))); err != nil {
		return err
	}
	for _, p := range ps {
		hdr := []uint32{uint32(len(p.Name))}
		if err := binary.Write(w, le, hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(w, p.Name); err != nil {
			return err
		}
		dims := []uint32{uint32(len(p.Shape))}
		for _, d := range p.Shape {
			dims = append(dims, uint32(d))
		}
		if err := binary.Write(w, le, dims); err != nil {
			return err
		}
		if err := binary.Write(w, le, values(p)); err != nil {
			return err
		}
	}
	return nil
}

func readSet(r io.Reader, magic string, ps Params, subset bool, values func(*Param) []float64) error {
	le := binary.LittleEndian
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return fmt.Errorf("nnlayers: not a %s record", magic)
	}
	var count uint32
	if err := binary.Read(r, le, &count); err != nil {
		return err
	}
	if int(count) != len(ps) && !(subset && int(count) > len(ps)) {
		return fmt.Errorf("nnlayers: the record holds %d parameters, the network has %d", count, len(ps))
	}
	seen := map[string]bool{}
	for range count {
		var n uint32
		if err := binary.Read(r, le, &n); err != nil {
			return err
		}
		if n > 1<<16 {
			return fmt.Errorf("nnlayers: parameter name of %d bytes", n)
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return err
		}
		var rank uint32
		if err := binary.Read(r, le, &rank); err != nil {
			return err
		}
		if rank > 8 {
			return fmt.Errorf("nnlayers: parameter %q of rank %d", name, rank)
		}
		dims := make([]uint32, rank)
		if err := binary.Read(r, le, dims); err != nil {
			return err
		}
		p := ps.Get(string(name))
		if p == nil && subset {
			var elems uint64 = 1
			for _, d := range dims {
				elems *= uint64(d)
			}
			if _, err := io.CopyN(io.Discard, r, int64(8*elems)); err != nil {
				return err
			}
			continue
		}
		if p == nil || seen[p.Name] {
			return fmt.Errorf("nnlayers: the record holds parameter %q, which the network does not (or twice)", name)
		}
		seen[p.Name] = true
		shape := make([]int, rank)
		for i, d := range dims {
			shape[i] = int(d)
		}
		if !slices.Equal(shape, p.Shape) {
			return fmt.Errorf("nnlayers: parameter %q has shape %v in the record, %v in the network", name, shape, p.Shape)
		}
		if err := binary.Read(r, le, values(p)); err != nil {
			return err
		}
	}
	if len(seen) != len(ps) {
		for _, p := range ps {
			if !seen[p.Name] {
				return fmt.Errorf("nnlayers: the record lacks parameter %q", p.Name)
			}
		}
	}
	return nil
}

// writeChecked writes what body writes followed by its CRC-32C.
func writeChecked(w io.Writer, body func(io.Writer) error) error {
	h := crc32.New(castagnoli)
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	if err := body(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, h.Sum32())
}

// readChecked reads what body reads and verifies the CRC-32C after it. It
// reads no further than the record (no read-ahead).
func readChecked(r io.Reader, body func(io.Reader) error) error {
	h := crc32.New(castagnoli)
	if err := body(io.TeeReader(r, h)); err != nil {
		return err
	}
	var sum uint32
	if err := binary.Read(r, binary.LittleEndian, &sum); err != nil {
		return fmt.Errorf("nnlayers: missing checksum: %w", err)
	}
	if sum != h.Sum32() {
		return errors.New("nnlayers: checksum mismatch: the record is damaged")
	}
	return nil
}
