package gaugeio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"pfmpi/field"
	"pfmpi/gauge"
	"pfmpi/group"
	"pfmpi/internal/atomicfile"
	"pfmpi/mpi"
)

// Config is a gauge configuration held on one rank.
type Config struct {
	Dims  []int        // global extents, direction 0 = time
	Nc    int          // 1: U(1), 3: SU(3)
	Links []complex128 // Σ sites × Nd × Nc² values, in the order described in the package doc
	Meta  Meta
}

// Meta is what a file records besides the links.
type Meta struct {
	Beta      float64 // gauge coupling, 0 if unknown
	Plaquette float64 // average plaquette (1/Nc) Re Tr P recorded in the file, NaN if none
	Checksum  string  // how the file's content was verified when read, e.g. "crc32c ok"
	Format    Format  // the format the configuration was read from
	Info      string  // free text (provenance)
}

// Format is a file format.
type Format string

const (
	Native Format = "pfmpi" // .pfg
	NumPy  Format = "npy"   // .npy
	LIME   Format = "lime"  // .lime, .ildg
)

// FormatOf returns the format that the extension of path names.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pfg":
		return Native, nil
	case ".npy":
		return NumPy, nil
	case ".lime", ".ildg":
		return LIME, nil
	}
	return "", fmt.Errorf("%s: unknown extension %q; use .pfg (pfmpi), .npy (NumPy) or .lime/.ildg (ILDG/LIME)", path, filepath.Ext(path))
}

// Group names the gauge group of Nc colours.
func Group(nc int) string {
	if g, err := group.Of(nc); err == nil {
		return g.String()
	}
	return fmt.Sprintf("su%d", nc)
}

// Volume is the number of lattice sites.
func (c *Config) Volume() int {
	v := 1
	for _, l := range c.Dims {
		v *= l
	}
	return v
}

// check verifies that the geometry is one pfmpi handles and that Links has
// the matching length.
func (c *Config) check() error {
	if len(c.Dims) < 2 || len(c.Dims) > 4 {
		return fmt.Errorf("%d directions; pfmpi reads 2, 3 or 4", len(c.Dims))
	}
	for mu, l := range c.Dims {
		if l < 1 {
			return fmt.Errorf("extent %d of direction %d", l, mu)
		}
	}
	if c.Nc != 1 && c.Nc != 3 {
		return fmt.Errorf("Nc = %d; pfmpi handles U(1) and SU(3)", c.Nc)
	}
	if want := c.Volume() * len(c.Dims) * c.Nc * c.Nc; len(c.Links) != want {
		return fmt.Errorf("%d link values for %v × %d directions × %d², want %d", len(c.Links), c.Dims, len(c.Dims), c.Nc, want)
	}
	return nil
}

// Write writes c to path in the format its extension names, atomically.
func Write(path string, c *Config) error {
	f, err := FormatOf(path)
	if err != nil {
		return err
	}
	return WriteFormat(path, c, f)
}

// WriteFormat writes c to path in format f, atomically.
func WriteFormat(path string, c *Config, f Format) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var write func(io.Writer, *Config) error
	switch f {
	case Native:
		write = writeNative
	case NumPy:
		write = writeNPY
	case LIME:
		write = writeLIME
	default:
		return fmt.Errorf("%s: unknown format %q", path, f)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return write(w, c) })
}

// maxExtent bounds the extents a header may claim: a damaged header must
// not make a reader allocate terabytes.
const maxExtent = 1 << 14

// validNc reports whether nc is the Nc of a group pfmpi implements.
func validNc(nc int) bool {
	_, err := group.Of(nc)
	return err == nil
}

// plausible reports whether a header's geometry is one pfmpi could have
// written (2 to 4 extents of 1 … maxExtent, Nc 1 or 3), before anything is
// allocated for it.
func plausible(dims []int, nc int) error {
	if len(dims) < 2 || len(dims) > 4 || !validNc(nc) {
		return fmt.Errorf("geometry dims %v, nc %d is not one pfmpi writes", dims, nc)
	}
	for _, l := range dims {
		if l < 1 || l > maxExtent {
			return fmt.Errorf("extent %d in dims %v is outside 1 … %d (corrupted header?)", l, dims, maxExtent)
		}
	}
	return nil
}

// Read reads a configuration in any of the formats, recognised by content.
func Read(path string) (*Config, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var magic [12]byte
	n, _ := io.ReadFull(file, magic[:])
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	var c *Config
	switch {
	case bytes.HasPrefix(magic[:n], []byte(nativeMagic)):
		c, err = readNative(file)
	case bytes.HasPrefix(magic[:n], []byte("\x93NUMPY")):
		c, err = readNPY(file, info.Size())
	case n >= 4 && binary.BigEndian.Uint32(magic[:4]) == limeMagic:
		c, err = readLIME(file)
	default:
		return nil, fmt.Errorf("%s: not a gauge configuration pfmpi knows (pfmpi .pfg, NumPy .npy or ILDG/LIME)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save gathers u to rank 0 of its domain communicator and writes it to path
// (format from the extension), recording meta.Beta, meta.Info and the average
// plaquette. It is collective; every rank returns the same error.
func Save(u *gauge.Field, path string, meta Meta) error {
	sp := u.Space()
	comm := sp.Comm()
	meta.Plaquette = u.AveragePlaquette()
	links := field.Gather(comm, u.Data(), 0)
	var err error
	if comm.Rank() == 0 {
		c := &Config{Dims: sp.Layout().Lattice().Dims(), Nc: sp.Nc(), Links: links, Meta: meta}
		err = Write(path, c)
	}
	return mpi.RootError(comm, err)
}

// Load reads path on rank 0 and scatters it into u, which must have the
// file's geometry; it checks that every link is a group element and that the
// recorded plaquette, if any, matches. It is collective; every rank returns
// the same meta and error.
func Load(u *gauge.Field, path string) (Meta, error) {
	sp := u.Space()
	comm := sp.Comm()
	dims := sp.Layout().Lattice().Dims()
	var c *Config
	var err error
	if comm.Rank() == 0 {
		c, err = Read(path)
		if err == nil && (!equal(c.Dims, dims) || c.Nc != sp.Nc()) {
			err = fmt.Errorf("%s holds a %v %s configuration; the run needs %v %s (lattice.dims, lattice.group)",
				path, c.Dims, Group(c.Nc), dims, Group(sp.Nc()))
		}
	}
	if err := mpi.RootError(comm, err); err != nil {
		return Meta{}, err
	}
	var links []complex128
	var m Meta
	if comm.Rank() == 0 {
		links, m = c.Links, c.Meta
	}
	field.Scatter(comm, u.Data(), 0, links)
	m = broadcastMeta(comm, m)
	if d := u.MaxDistanceFromGroup(); d > 1e-10 {
		return m, fmt.Errorf("%s: a link is %.3g away from %s: not a gauge field of this group, or stored in another index order",
			path, d, strings.ToUpper(Group(sp.Nc())))
	}
	if !math.IsNaN(m.Plaquette) {
		if p := u.AveragePlaquette(); math.Abs(p-m.Plaquette) > 1e-12*max(1, math.Abs(p)) {
			return m, fmt.Errorf("%s: the links give average plaquette %.15g, the header records %.15g: the file is inconsistent",
				path, p, m.Plaquette)
		}
	}
	return m, nil
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// broadcastMeta gives every rank rank 0's meta.
func broadcastMeta(comm mpi.Comm, m Meta) Meta {
	nums := []float64{m.Beta, m.Plaquette}
	comm.Bcast(0, mpi.Bytes(nums))
	m.Beta, m.Plaquette = nums[0], nums[1]
	strs := []string{m.Checksum, string(m.Format), m.Info}
	for i, s := range strs {
		b := []byte(s)
		n := []float64{float64(len(b))}
		comm.Bcast(0, mpi.Bytes(n))
		if comm.Rank() != 0 {
			b = make([]byte, int(n[0]))
		}
		comm.Bcast(0, b)
		strs[i] = string(b)
	}
	m.Checksum, m.Format, m.Info = strs[0], Format(strs[1]), strs[2]
	return m
}
