package gaugeio

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"codeberg.org/sbinet/npyio/npy"

	"pfmpi/decomp"
	npyw "pfmpi/internal/npy"
)

// The NumPy array is [Nd, L₀, …, L_{D−1}, Nc, Nc]: direction-major, while
// Config is site-major; the transposition happens here.

// writeNPY writes the configuration transposed to [Nd, L₀, …, Nc, Nc].
func writeNPY(w io.Writer, c *Config) error {
	nd, n := len(c.Dims), c.Nc*c.Nc
	shape := append(append([]int{nd}, c.Dims...), c.Nc, c.Nc)
	v := c.Volume()
	out := make([]complex128, 0, len(c.Links))
	for mu := 0; mu < nd; mu++ {
		for s := 0; s < v; s++ {
			out = append(out, c.Links[(s*nd+mu)*n:(s*nd+mu+1)*n]...)
		}
	}
	return npyw.WriteComplex128(w, shape, out)
}

// newNPYReader is npy.NewReader with its panics on malformed headers (npyio
// v0.14.0 slices with a negative bound on some, found by FuzzRead) turned
// into errors.
func newNPYReader(r io.Reader) (nr *npy.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			nr, err = nil, fmt.Errorf("malformed header (%v)", p)
		}
	}()
	return npy.NewReader(r)
}

func readNPY(r io.Reader, size int64) (*Config, error) {
	nr, err := newNPYReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a readable .npy file: %w", err)
	}
	h := nr.Header.Descr
	if dtype := strings.Trim(h.Type, `'"`); dtype != "<c16" && dtype != ">c16" {
		return nil, fmt.Errorf("array of dtype %s; a gauge field is complex128 ('<c16')", dtype)
	}
	if h.Fortran {
		return nil, fmt.Errorf("array in Fortran order; save it in C order (numpy.ascontiguousarray)")
	}
	shape := h.Shape
	if len(shape) < 5 || shape[0] != len(shape)-3 || shape[len(shape)-1] != shape[len(shape)-2] {
		return nil, fmt.Errorf("shape %v is not [Nd, L0, L1(, L2, L3), Nc, Nc]", shape)
	}
	nd, nc := shape[0], shape[len(shape)-1]
	c := &Config{Dims: append([]int(nil), shape[1:1+nd]...), Nc: nc, Meta: Meta{Plaquette: math.NaN(), Format: NumPy, Checksum: "none in .npy"}}
	if !validNc(nc) {
		return nil, fmt.Errorf("shape %v: Nc = %d; pfmpi handles U(1) and SU(3)", shape, nc)
	}
	if err := plausible(c.Dims, nc); err != nil {
		return nil, fmt.Errorf("shape %v: %w", shape, err)
	}
	if need := int64(nd) * int64(c.Volume()) * int64(nc*nc) * 16; need > size {
		return nil, fmt.Errorf("shape %v needs %d bytes of data, the file has %d (truncated?)", shape, need, size)
	}
	var data []complex128
	if err := nr.Read(&data); err != nil {
		return nil, fmt.Errorf("reading the array: %w", err)
	}
	n := nc * nc
	v := c.Volume()
	if len(data) != nd*v*n {
		return nil, fmt.Errorf("%d values for shape %v (truncated?)", len(data), shape)
	}
	c.Links = make([]complex128, len(data))
	for mu := 0; mu < nd; mu++ {
		for s := 0; s < v; s++ {
			copy(c.Links[(s*nd+mu)*n:(s*nd+mu+1)*n], data[(mu*v+s)*n:(mu*v+s+1)*n])
		}
	}
	return c, nil
}

// ReadPseudofermion reads a complex128 array of shape [L0, …, L_{D−1}, Ns, Nc]
// (C order) into a vector on the sites of parity p of the (one-rank) layout.
func ReadPseudofermion(path string, ly *decomp.Layout, ns, nc int, p decomp.Parity) ([]complex128, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable .npy file: %w", path, err)
	}
	dims := ly.Lattice().Dims()
	want := append(append([]int(nil), dims...), ns, nc)
	if dt := strings.Trim(r.Header.Descr.Type, `'"`); dt != "<c16" && dt != ">c16" {
		return nil, fmt.Errorf("%s: dtype %s; a pseudofermion is complex128", path, dt)
	}
	if r.Header.Descr.Fortran || fmt.Sprint(r.Header.Descr.Shape) != fmt.Sprint(want) {
		return nil, fmt.Errorf("%s: shape %v (Fortran order %v); this lattice needs %v in C order", path, r.Header.Descr.Shape, r.Header.Descr.Fortran, want)
	}
	var data []complex128
	if err := r.Read(&data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n := ns * nc
	lo, hi := ly.Sites(p)
	phi := make([]complex128, (hi-lo)*n)
	for s := lo; s < hi; s++ {
		g := int(ly.GlobalIndex(s))
		copy(phi[(s-lo)*n:(s-lo+1)*n], data[g*n:(g+1)*n])
	}
	return phi, nil
}
