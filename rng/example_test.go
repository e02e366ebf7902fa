package rng_test

import (
	"fmt"

	"pfmpi/rng"
)

// Every random number is a function of (seed, purpose, global site, position
// in the stream): drawing for site 42 gives the same numbers on any rank.
func ExampleKey_Stream() {
	key := rng.New(1234, "pseudofermion")
	a, b := key.Stream(42), key.Stream(42)
	fmt.Println(a.ComplexNormal() == b.ComplexNormal())
	// A sub-purpose, e.g. trajectory 7, gets an independent child key.
	t7, base := key.Derive(7).Stream(42), key.Stream(42)
	fmt.Println(t7.Uint64() != base.Uint64())
	// Output:
	// true
	// true
}
