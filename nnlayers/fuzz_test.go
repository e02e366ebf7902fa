package nnlayers

import (
	"bytes"
	"testing"
)

// FuzzReadCheckpoint feeds arbitrary bytes to the checkpoint readers of a
// small network (parameters, then optimizer state), seeded with a valid
// checkpoint: they must return an error or accept, never panic, and an
// accepted record must round-trip to the same bytes.
func FuzzReadCheckpoint(f *testing.F) {
	net := func() (Params, *Adam) {
		ps := Params{NewParam("conv.w", 2, 3), NewParam("conv.b", 3), NewParam("head", 1)}
		for i, p := range ps {
			for j := range p.Value {
				p.Value[j] = float64(i*10 + j)
			}
		}
		opt, err := NewAdam(ps, AdamConfig{LR: 1e-3, Eps: 0.01})
		if err != nil {
			f.Fatal(err)
		}
		return ps, opt
	}
	ps, opt := net()
	var seed bytes.Buffer
	if err := WriteParams(&seed, ps); err != nil {
		f.Fatal(err)
	}
	if err := opt.WriteState(&seed); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Add(seed.Bytes()[:20])
	f.Add([]byte("PFMPI-PARAMS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, opt := net()
		r := bytes.NewReader(data)
		if err := ReadParams(r, ps); err != nil {
			return
		}
		var again bytes.Buffer
		if err := WriteParams(&again, ps); err != nil {
			t.Fatal(err)
		}
		if consumed := data[:len(data)-r.Len()]; !bytes.Equal(again.Bytes(), consumed) {
			t.Fatalf("accepted a parameter record that does not round-trip")
		}
		_ = opt.ReadState(r)
	})
}
