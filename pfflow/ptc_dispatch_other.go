//go:build !amd64

package pfflow

// ptcAVX2 is false off amd64: the kernels run in Go.
var ptcAVX2 = false

func (o *ptcOp) gatherMix2Asm(run2) { panic("pfflow: no assembly on this architecture") }

func (o *ptcOp) back2Asm(run2) { panic("pfflow: no assembly on this architecture") }

func (o *ptcOp) pad2Asm(int, int) { panic("pfflow: no assembly on this architecture") }

func (o *ptcOp) padBack2Asm(int, int) { panic("pfflow: no assembly on this architecture") }
