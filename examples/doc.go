// Package examples holds the run files shipped with pfmpi.
//
// quickstart.toml is embedded in the binary as [Quickstart]: `pfmpi check` and
// `pfmpi run` without a file use it. contract.toml is the example of the
// stable run-file contract, every key of it, so that a test proves the parser
// accepts them all.
package examples
