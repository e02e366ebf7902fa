package gaugeio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"

	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/gauge"
	"pfmpi/internal/mpitest"
	"pfmpi/mpi"
	"pfmpi/rng"
)

func TestMain(m *testing.M) { mpitest.Main(m) }

func newField(c mpi.Comm, dims, grid []int, nc int) (*gauge.Field, error) {
	lat, err := decomp.NewLattice(dims, grid, false)
	if err != nil {
		return nil, err
	}
	ly, err := lat.Layout(c.Rank())
	if err != nil {
		return nil, err
	}
	sp, err := gauge.NewSpace(c, ly, nc)
	if err != nil {
		return nil, err
	}
	return sp.NewField(), nil
}

// TestRoundTripAcrossGrids writes a hot field on one process grid and reads it
// on another, in every format, and compares the links bitwise.
func TestRoundTripAcrossGrids(t *testing.T) {
	dir := mpitest.TempDir(t)
	for _, c := range []struct {
		nc                int
		dims, write, read []int
		exts              []string
	}{
		{1, []int{8, 12}, []int{2, 1}, []int{1, 2}, []string{".pfg", ".npy", ".lime"}},
		{3, []int{4, 6}, []int{2, 2}, []int{1, 1}, []string{".pfg", ".npy", ".lime"}},
		{3, []int{4, 4, 4, 4}, []int{2, 1, 1, 2}, []int{1, 2, 2, 1}, []string{".pfg", ".npy", ".ildg"}},
		{1, []int{4, 4, 6, 4}, []int{1, 2, 2, 1}, []int{2, 1, 1, 1}, []string{".pfg", ".npy", ".lime"}},
	} {
		for _, ext := range c.exts {
			name := fmt.Sprintf("Nc%d-%dD%s", c.nc, len(c.dims), ext)
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(dir, name)
				key := rng.New(31, name)
				mpitest.Run(t, ranks(c.write), func(comm mpi.Comm) error {
					u, err := newField(comm, c.dims, c.write, c.nc)
					if err != nil {
						return err
					}
					defer u.Space().Close()
					u.SetHot(key)
					return Save(u, path, Meta{Beta: 2.25, Info: "test"})
				})
				mpitest.Run(t, ranks(c.read), func(comm mpi.Comm) error {
					u, err := newField(comm, c.dims, c.read, c.nc)
					if err != nil {
						return err
					}
					defer u.Space().Close()
					meta, err := Load(u, path)
					if err != nil {
						return err
					}
					got := field.Gather(comm, u.Data(), 0)
					// The reference: the same hot field generated on one rank.
					self := comm.Split(comm.Rank(), 0)
					defer self.Free()
					ref, err := newField(self, c.dims, ones(len(c.dims)), c.nc)
					if err != nil {
						return err
					}
					defer ref.Space().Close()
					ref.SetHot(key)
					want := field.Gather(self, ref.Data(), 0)
					if comm.Rank() != 0 {
						return nil
					}
					for i := range want {
						if math.Float64bits(real(got[i])) != math.Float64bits(real(want[i])) ||
							math.Float64bits(imag(got[i])) != math.Float64bits(imag(want[i])) {
							return fmt.Errorf("value %d: read %v, wrote %v", i, got[i], want[i])
						}
					}
					if ext != ".npy" && (meta.Beta != 2.25 || meta.Info != "test" || math.IsNaN(meta.Plaquette)) {
						return fmt.Errorf("metadata lost: %+v", meta)
					}
					if ext != ".npy" && !strings.HasSuffix(meta.Checksum, "ok") {
						return fmt.Errorf("checksum not verified: %q", meta.Checksum)
					}
					return nil
				})
			})
		}
	}
}

func ranks(grid []int) int {
	n := 1
	for _, g := range grid {
		n *= g
	}
	return n
}

// encodedConfig is a 4D SU(3) configuration (not unitary) whose values say
// where they belong: U_μ(t,x,y,z)_ij = (1000t + 100x + 10y + z + μ/2) + i(3i + j + 1/4).
func encodedConfig(dims []int) *Config {
	c := &Config{Dims: dims, Nc: 3, Meta: Meta{Plaquette: math.NaN()}}
	lt, lx, ly, lz := dims[0], dims[1], dims[2], dims[3]
	for t := 0; t < lt; t++ {
		for x := 0; x < lx; x++ {
			for y := 0; y < ly; y++ {
				for z := 0; z < lz; z++ {
					for mu := 0; mu < 4; mu++ {
						for k := 0; k < 9; k++ {
							c.Links = append(c.Links, complex(float64(1000*t+100*x+10*y+z)+0.5*float64(mu), float64(k)+0.25))
						}
					}
				}
			}
		}
	}
	return c
}

// TestILDGLayoutKnownAnswer: the ILDG binary record and its SciDAC checksum
// for an encoded configuration equal what an independent implementation
// (Python struct + zlib.crc32, see the closing note of issue 3) computed:
// sites x fastest, links x, y, z, t, big-endian float64.
func TestILDGLayoutKnownAnswer(t *testing.T) {
	c := encodedConfig([]int{2, 3, 2, 3}) // (t, x, y, z)
	var buf bytes.Buffer
	if err := writeLIME(&buf, c); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
	recs, err := readLIMERecords(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var data, sum []byte
	var format string
	for _, r := range recs {
		switch r.typ {
		case "ildg-binary-data":
			data = r.data
		case "scidac-checksum":
			sum = r.data
		case "ildg-format":
			format = string(r.data)
		}
	}
	h := sha256.Sum256(data)
	if got := hex.EncodeToString(h[:]); len(data) != 20736 || got != "d9151985d3c1fa59a01c2ae9fdc9800e880debf7fbe714d65dd597a39d48a723" {
		t.Errorf("ildg-binary-data: %d bytes, sha256 %s", len(data), got)
	}
	if !strings.Contains(string(sum), "<suma>9f20dac</suma>") || !strings.Contains(string(sum), "<sumb>615c4c60</sumb>") {
		t.Errorf("scidac-checksum record %s", sum)
	}
	for _, want := range []string{"<field>su3gauge</field>", "<precision>64</precision>", "<lx>3</lx>", "<ly>2</ly>", "<lz>3</lz>", "<lt>2</lt>"} {
		if !strings.Contains(format, want) {
			t.Errorf("ildg-format lacks %s: %s", want, format)
		}
	}
	// Reading it back restores pfmpi's order.
	back, err := readLIME(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Links {
		if back.Links[i] != c.Links[i] {
			t.Fatalf("value %d: %v after the round trip, want %v", i, back.Links[i], c.Links[i])
		}
	}
}

// writeTo writes c to a file of the given extension in dir.
func writeTo(t *testing.T, dir, name string, c *Config) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := Write(p, c); err != nil {
		t.Fatal(err)
	}
	return p
}

func hotConfig(t *testing.T, dims []int, nc int) *Config {
	t.Helper()
	var c *Config
	mpitest.Run(t, 1, func(comm mpi.Comm) error {
		u, err := newField(comm, dims, ones(len(dims)), nc)
		if err != nil {
			return err
		}
		defer u.Space().Close()
		u.SetHot(rng.New(5, "hot-config"))
		c = &Config{Dims: dims, Nc: nc, Links: field.Gather(comm, u.Data(), 0), Meta: Meta{Plaquette: u.AveragePlaquette(), Beta: 1}}
		return nil
	})
	return c
}

func ones(n int) []int {
	g := make([]int, n)
	for i := range g {
		g[i] = 1
	}
	return g
}

func corrupt(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func expectError(t *testing.T, what, path string, want ...string) {
	t.Helper()
	_, err := Read(path)
	if err == nil {
		t.Errorf("%s: read without error", what)
		return
	}
	for _, w := range append(want, filepath.Base(path)) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not contain %q", what, err, w)
		}
	}
}

func TestCorruptedFilesAreRejected(t *testing.T) {
	dir := t.TempDir()
	c := hotConfig(t, []int{4, 4, 4, 4}, 3)
	c2 := hotConfig(t, []int{8, 8}, 1)

	// pfmpi format
	p := writeTo(t, dir, "flip.pfg", c)
	corrupt(t, p, func(b []byte) []byte { b[len(b)-40] ^= 0x10; return b })
	expectError(t, "flipped payload byte", p, "")
	p = writeTo(t, dir, "short.pfg", c)
	corrupt(t, p, func(b []byte) []byte { return b[:len(b)*2/3] })
	expectError(t, "truncated payload", p, "truncated")
	p = writeTo(t, dir, "header.pfg", c)
	corrupt(t, p, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"dims":[4,4,4,4]`), []byte(`"dims":[4,4,4,2]`), 1)
	})
	expectError(t, "edited dims", p, "payload bytes")
	p = writeTo(t, dir, "cut.pfg", c)
	corrupt(t, p, func(b []byte) []byte { return b[:30] })
	expectError(t, "truncated header", p, "header")

	// NumPy
	p = writeTo(t, dir, "short.npy", c2)
	corrupt(t, p, func(b []byte) []byte { return b[:len(b)-100] })
	expectError(t, "truncated .npy", p, "")
	p = filepath.Join(dir, "float.npy")
	f, _ := os.Create(p)
	npyio.Write(f, make([]float64, 16))
	f.Close()
	expectError(t, "float64 .npy", p, "complex128")

	// LIME / ILDG
	p = writeTo(t, dir, "flip.ildg", c)
	corrupt(t, p, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
	expectError(t, "flipped ILDG byte", p, "checksum mismatch")
	p = writeTo(t, dir, "short.lime", c2)
	corrupt(t, p, func(b []byte) []byte { return b[:len(b)-300] })
	expectError(t, "truncated LIME", p, "truncated")
	p = writeTo(t, dir, "flip.lime", c2)
	corrupt(t, p, func(b []byte) []byte { b[len(b)/2] ^= 0x04; return b })
	expectError(t, "flipped LIME byte", p, "checksum mismatch")

	// Not a configuration at all.
	p = filepath.Join(dir, "junk.pfg")
	os.WriteFile(p, []byte("hello, world\n"), 0o644)
	expectError(t, "junk", p, "not a gauge configuration")
}

// TestLoadChecks: a valid file of the wrong geometry, an array that is not a
// gauge field, and a header whose plaquette disagrees are refused by Load.
func TestLoadChecks(t *testing.T) {
	dir := t.TempDir()
	c := hotConfig(t, []int{8, 8}, 1)
	good := writeTo(t, dir, "good.pfg", c)
	noise := &Config{Dims: []int{8, 8}, Nc: 1, Links: make([]complex128, len(c.Links)), Meta: Meta{Plaquette: math.NaN()}}
	s := rng.New(1, "noise").Stream(0)
	for i := range noise.Links {
		noise.Links[i] = s.ComplexNormal()
	}
	junk := writeTo(t, dir, "noise.npy", noise)
	bad := c
	bad.Meta.Plaquette += 0.01
	wrongPlaq := writeTo(t, dir, "plaq.pfg", bad)
	mpitest.Run(t, 2, func(comm mpi.Comm) error {
		u, err := newField(comm, []int{8, 12}, []int{2, 1}, 1)
		if err != nil {
			return err
		}
		defer u.Space().Close()
		if _, err := Load(u, good); err == nil || !strings.Contains(err.Error(), "holds a [8 8] u1 configuration; the run needs [8 12] u1") {
			return fmt.Errorf("geometry mismatch: %v", err)
		}
		v, _ := newField(comm, []int{8, 8}, []int{2, 1}, 1)
		defer v.Space().Close()
		if _, err := Load(v, junk); err == nil || !strings.Contains(err.Error(), "away from U1") {
			return fmt.Errorf("noise loaded as a gauge field: %v", err)
		}
		if _, err := Load(v, wrongPlaq); err == nil || !strings.Contains(err.Error(), "inconsistent") {
			return fmt.Errorf("wrong plaquette accepted: %v", err)
		}
		if _, err := Load(v, good); err != nil {
			return err
		}
		return nil
	})
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{"a.pfg": Native, "b.NPY": NumPy, "c.lime": LIME, "d.ildg": LIME} {
		if f, err := FormatOf(path); f != want || err != nil {
			t.Errorf("FormatOf(%s) = %v, %v", path, f, err)
		}
	}
	if _, err := FormatOf("x.cfg"); err == nil || !strings.Contains(err.Error(), ".pfg") {
		t.Errorf("unknown extension: %v", err)
	}
}
