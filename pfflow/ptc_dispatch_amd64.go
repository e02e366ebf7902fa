package pfflow

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd ../internal/asmgen && go run ./ptc -out ../../pfflow/ptc_amd64.s -stubs ../../pfflow/ptc_amd64.go"

// ptcAVX2 reports whether the 2 → 2 one-colour mixing runs in assembly
// (AVX2 with FMA); tests switch it off to compare with the Go.
var ptcAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func ptcMix2Asm(l, m []float64, ms int, out []float64, os, n int) {
	ptcMix2AVX2(&l[0], &m[0], ms, &out[0], os, n)
}

func ptcMixBack2Asm(l, m, mg []float64, ms int, g []float64, os int, gl []float64, n int) {
	var mgp *float64
	if mg != nil {
		mgp = &mg[0]
	}
	ptcMixBack2AVX2(&l[0], &m[0], mgp, ms, &g[0], os, &gl[0], n)
}
