package gaugeio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
)

// The NumPy array is [Nd, L₀, …, L_{D−1}, Nc, Nc]: direction-major, while
// Config is site-major; the transposition happens here.

// writeNPY writes the header (NPY format 1.0) by hand, because the npyio
// writer only writes one-dimensional shapes for slices, and the data as
// little-endian complex128.
func writeNPY(w io.Writer, c *Config) error {
	nd, n := len(c.Dims), c.Nc*c.Nc
	shape := []string{fmt.Sprint(nd)}
	for _, l := range c.Dims {
		shape = append(shape, fmt.Sprint(l))
	}
	shape = append(shape, fmt.Sprint(c.Nc), fmt.Sprint(c.Nc))
	dict := fmt.Sprintf("{'descr': '<c16', 'fortran_order': False, 'shape': (%s), }", strings.Join(shape, ", "))
	// magic (6) + version (2) + length (2) + dict + padding + '\n' ≡ 0 mod 64
	total := (10 + len(dict) + 1 + 63) / 64 * 64
	dict += strings.Repeat(" ", total-10-len(dict)-1) + "\n"
	hdr := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	binary.LittleEndian.PutUint16(hdr[8:], uint16(len(dict)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(w, dict); err != nil {
		return err
	}
	v := c.Volume()
	out := make([]complex128, 0, v*n)
	for mu := 0; mu < nd; mu++ {
		out = out[:0]
		for s := 0; s < v; s++ {
			out = append(out, c.Links[(s*nd+mu)*n:(s*nd+mu+1)*n]...)
		}
		if err := encodeLE(w, out); err != nil {
			return err
		}
	}
	return nil
}

func readNPY(r io.Reader) (*Config, error) {
	nr, err := npy.NewReader(r)
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
	if nc != 1 && nc != 3 {
		return nil, fmt.Errorf("shape %v: Nc = %d; pfmpi handles U(1) and SU(3)", shape, nc)
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
