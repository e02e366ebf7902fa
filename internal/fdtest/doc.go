// Package fdtest checks gradients against central differences in tests.
package fdtest
