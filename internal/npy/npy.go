package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteComplex128 writes data, C order, with the given shape.
func WriteComplex128(w io.Writer, shape []int, data []complex128) error {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		n *= d
		dims[i] = fmt.Sprint(d)
	}
	if n != len(data) {
		return fmt.Errorf("npy: %d values for shape %v", len(data), shape)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': '<c16', 'fortran_order': False, 'shape': (%s), }", tuple)
	// magic (6) + version (2) + length (2) + dict + padding + '\n' ≡ 0 mod 64
	total := (10 + len(dict) + 1 + 63) / 64 * 64
	dict += strings.Repeat(" ", total-10-len(dict)-1) + "\n"
	hdr := []byte("\x93NUMPY\x01\x00\x00\x00")
	binary.LittleEndian.PutUint16(hdr[8:], uint16(len(dict)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(w, dict); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, z := range data {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(real(z)))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(imag(z)))
		if len(buf) == cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}
