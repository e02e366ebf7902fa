package gaugeio

import (
	"math"
	"os"
	"path/filepath"
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
