// Package avogen holds what pfmpi's avo generators (gemm, vmath, ptc,
// dslash) share: writing the assembly and Go declarations into the target
// package, and the address of a parameter in the argument frame.
package avogen

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
)

// Generate writes the assembly and the Go declarations (avo's -out and
// -stubs flags), the latter in package pkg (avo names the generator's own
// package otherwise).
func Generate(pkg string) {
	flag.Parse()
	build.Generate()
	stubs := flag.Lookup("stubs").Value.String()
	if stubs == "" {
		return
	}
	b, err := os.ReadFile(stubs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := strings.Replace(string(b), "\npackage asmgen\n", "\npackage "+pkg+"\n", 1)
	if err := os.WriteFile(stubs, []byte(s), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Param returns the address of the current function's parameter name in
// the argument frame, for use as a memory operand.
func Param(name string) operand.Mem {
	b, err := build.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
