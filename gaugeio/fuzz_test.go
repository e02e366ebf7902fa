package gaugeio

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// FuzzRead feeds arbitrary files to Read, seeded with small valid
// configurations in each format (a 2×2 U(1) field natively and as NumPy, a
// 2⁴ SU(3) field as ILDG/LIME): it must return a configuration or an error,
// never panic.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	seed := func(name string, c *Config, format Format) {
		p := filepath.Join(dir, name)
		if err := WriteFormat(p, c, format); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	unit := func(dims []int, nc int) *Config {
		c := &Config{Dims: dims, Nc: nc, Meta: Meta{Beta: 1, Plaquette: math.NaN()}}
		n := c.Volume() * len(dims)
		for range n {
			for i := range nc * nc {
				v := complex(0, 0)
				if i%(nc+1) == 0 {
					v = 1
				}
				c.Links = append(c.Links, v)
			}
		}
		return c
	}
	seed("u1.pfg", unit([]int{2, 2}, 1), Native)
	seed("u1.npy", unit([]int{2, 2}, 1), NumPy)
	seed("su3.lime", unit([]int{2, 2, 2, 2}, 3), LIME)
	f.Add([]byte("PFMPI"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "x")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if c, err := Read(p); err == nil && len(c.Links) != c.Volume()*len(c.Dims)*c.Nc*c.Nc {
			t.Fatalf("accepted a configuration with %d link values for %v, Nc = %d", len(c.Links), c.Dims, c.Nc)
		}
	})
}

// TestDamagedHeadersDoNotAllocate: headers that claim far more data than
// the file holds (a flipped bit in an extent, a corrupted record length)
// are refused without allocating what they claim.
func TestDamagedHeadersDoNotAllocate(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Dims: []int{2, 2}, Nc: 1, Links: make([]complex128, 8), Meta: Meta{Plaquette: math.NaN()}}
	for i := range c.Links {
		c.Links[i] = 1
	}
	valid := func(name string, format Format) []byte {
		p := filepath.Join(dir, name)
		if err := WriteFormat(p, c, format); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		return b
	}
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in the file", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	native := valid("ok.pfg", Native)
	npyFile := valid("ok.npy", NumPy)
	lime := valid("ok.lime", LIME)
	limeLen := bytes.Clone(lime)
	binary.BigEndian.PutUint64(limeLen[8:], 1<<39) // the first record claims 512 GiB
	cases := map[string][]byte{
		// 8 GiB of links claimed, consistently, in a 4 KiB file.
		"native huge":   replace(replace(native, `"dims":[2,2]`, `"dims":[16384,16384]`), `"payload_bytes":128`, `"payload_bytes":8589934592`),
		"native absurd": replace(native, `"dims":[2,2]`, `"dims":[4294967296,4294967296]`),
		"npy huge":      replace(npyFile, "(2, 2, 2, 1, 1)", "(2,9999,99,1,1)"), // 32 MB, same header length
		"lime length":   limeLen,
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Read(p)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
			t.Errorf("%s: allocated %d MiB before refusing: %v", name, grew>>20, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
