package config

import (
	"io/fs"
	"testing"

	"pfmpi/examples"
)

// FuzzParse feeds arbitrary run files to the parser, seeded with every
// shipped run file and a few malformed ones: it must return a config or an
// error, never panic, and a config it accepts must report its phases.
func FuzzParse(f *testing.F) {
	names, err := fs.Glob(examples.Files, "*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(examples.Files, n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "[", "[lattice]\ndims = []\n", "[lattice]\ndims = [8, -8]\n", "[lattice]\ndims = [4, 4]\ngroup = \"su2\"\n",
		"[lattice]\ndims = [8, 8]\n[parallel]\ngrid = \"auto\"\n[action]\nbeta = 1e400\n",
		"[lattice]\ndims = [8, 8]\n[action]\nbeta = 2.0\nhasenbusch = [0.1, 0.01]\n[hmc]\n",
		"[lattice]\ndims = [8, 8]\n[model]\nspectral_steps = 0\n[train]\nbatch = 3\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		_ = c.Phases()
	})
}
