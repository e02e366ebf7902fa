package hugemem_test

import (
	"fmt"

	"pfmpi/hugemem"
)

// A fermion field of a 32⁴ lattice (12 complex numbers per site, 200 MB):
// allocated on the Go heap and advised to huge pages on Linux.
func ExampleMake() {
	psi := hugemem.Make[complex128](32 * 32 * 32 * 32 * 12)
	psi[0] = 1
	fmt.Println(len(psi), psi[0])
	// Output: 12582912 (1+0i)
}
