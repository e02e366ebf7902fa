// Package latticetest builds the small decomposed lattices that tests of the
// physics packages start from.
package latticetest
