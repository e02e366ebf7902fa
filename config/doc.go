// Package config reads pfmpi run files: TOML documents whose sections and keys
// are a stable contract that examples, tests and job scripts rely on
// (examples/contract.toml holds every key of it; `pfmpi help config`
// documents them).
//
// The schema is the set of struct types in schema.go. Their tags are the only
// definition of each key's name, default, allowed values and documentation:
// the parser applies the defaults from them, validates against them, and
// [Help] (`pfmpi help config`) prints them. A key cannot be documented
// differently from how it is parsed.
//
// Parsing is strict. An unknown section or key is an error (with a "did you
// mean" suggestion), as is a value of the wrong type or outside its range, a
// missing required key, or keys that contradict each other. Every error is a
// [*Error] naming the file, the line where the parser knows it, the key, and
// what would be valid; all problems of a file are reported together.
//
// This package checks each file on its own. What depends on the number of
// ranks (process grid, replicas, batch split) is checked where the ranks are
// known, with [Config.Errorf] so that those errors point into the file too.
//
// Sections [hmc], [train], [sample] and [bench] are optional; their presence
// switches the phase on ([Config.Phases]). [Config.WriteTOML] writes the
// resolved file, every default filled in, for provenance.
package config
