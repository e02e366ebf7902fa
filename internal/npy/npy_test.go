package npy

import (
	"bytes"
	"testing"

	"codeberg.org/sbinet/npyio/npy"
)

func TestRoundTripWithNpyio(t *testing.T) {
	for _, shape := range [][]int{{5}, {2, 3}, {2, 4, 4, 1, 1}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]complex128, n)
		for i := range data {
			data[i] = complex(float64(i), -float64(i)/3)
		}
		var buf bytes.Buffer
		if err := WriteComplex128(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		if (buf.Len()-16*n)%64 != 0 {
			t.Errorf("header of %d bytes is not 64-byte aligned", buf.Len()-16*n)
		}
		r, err := npy.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Header.Descr.Shape; len(got) != len(shape) {
			t.Fatalf("shape %v, want %v", got, shape)
		}
		var back []complex128
		if err := r.Read(&back); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			if back[i] != data[i] {
				t.Fatalf("value %d: %v, want %v", i, back[i], data[i])
			}
		}
	}
	if err := WriteComplex128(new(bytes.Buffer), []int{2, 2}, make([]complex128, 3)); err == nil {
		t.Error("a shape that does not match the data must be refused")
	}
}
