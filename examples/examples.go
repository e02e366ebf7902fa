package examples

import (
	"embed"
	_ "embed"
)

// Quickstart is the default run file.
//
//go:embed quickstart.toml
var Quickstart []byte

// Files holds every shipped run file.
//
//go:embed *.toml
var Files embed.FS
