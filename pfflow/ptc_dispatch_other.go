//go:build !amd64

package pfflow

// ptcAVX2 is false off amd64: the mixing runs in Go.
var ptcAVX2 = false

func ptcMix2Asm(l, m []float64, ms int, out []float64, os, n int) {
	panic("pfflow: no assembly on this architecture")
}

func ptcMixBack2Asm(l, m, mg []float64, ms int, g []float64, os int, gl []float64, n int) {
	panic("pfflow: no assembly on this architecture")
}
