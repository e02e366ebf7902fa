package pfflow

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd ../internal/asmgen && go run ./ptc -out ../../pfflow/ptc_amd64.s -stubs ../../pfflow/ptc_amd64.go"

// ptcAVX2 reports whether the 2 → 2 one-colour kernels run in assembly
// (AVX2 with FMA); tests switch it off to compare with the Go.
var ptcAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// rows2 returns the n rows of 12 float64 from row r of a pad, at offset
// off (a slot), checking the bounds the assembly relies on.
func rows2(pad []float64, r, n, off int) *float64 {
	return &pad[12*r+off : 12*(r+n-1)+off+4][0]
}

// distance is the number of bytes from a's first element to b's: the
// assembly reaches a gradient through its data's pointer.
func distance(a, b []float64) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(a))))
}

// run2Rows returns the run's M (2 × 10 complex per row) and its links,
// checking the bounds the assembly relies on.
func (o *ptcOp) run2Rows(x run2) (m, links []float64) {
	mc := o.m.C
	return o.m.Data[x.r*mc+o.moff : (x.r+x.n-1)*mc+o.moff+40], o.links.Data[4*x.r : 4*(x.r+x.n)]
}

func (o *ptcOp) gatherMix2Asm(x run2) {
	pad := o.pad.Data
	mc, oc := o.m.C, o.out.C
	m, links := o.run2Rows(x)
	out := o.out.Data[x.r*oc : (x.r+x.n-1)*oc+4]
	ptcGatherMix2AVX2(rows2(pad, x.r, x.n, 0), rows2(pad, x.up[0], x.n, 0), rows2(pad, x.up[1], x.n, 0),
		rows2(pad, x.dn[0], x.n, 4), rows2(pad, x.dn[1], x.n, 8), &links[0], &m[0], 8*mc, &out[0], 8*oc, x.n)
}

// back2Asm needs the gradients of M and the links (back2 checks).
func (o *ptcOp) back2Asm(x run2) {
	pad := o.pad.Data
	mc, oc := o.m.C, o.out.C
	m, links := o.run2Rows(x)
	g := o.out.Grad[x.r*oc : (x.r+x.n-1)*oc+4]
	if len(o.pad.Grad) != len(pad) || len(o.m.Grad) != len(o.m.Data) || len(o.links.Grad) != len(o.links.Data) {
		panic("pfflow: a PTC's gradient and data differ in length")
	}
	ptcBack2AVX2(rows2(pad, x.r, x.n, 0), rows2(pad, x.up[0], x.n, 0), rows2(pad, x.up[1], x.n, 0),
		rows2(pad, x.dn[0], x.n, 4), rows2(pad, x.dn[1], x.n, 8), distance(pad, o.pad.Grad),
		&links[0], distance(o.links.Data, o.links.Grad), &m[0], distance(o.m.Data, o.m.Grad), 8*mc, &g[0], 8*oc, x.n, o.assignM)
}

func (o *ptcOp) pad2Asm(r0, r1 int) {
	if r0 == r1 {
		return
	}
	ptcPad2AVX2(&o.pad.Data[12*r0 : 12*r1][0], &o.phi.Data[4*r0 : 4*r1][0], &o.links.Data[4*r0 : 4*r1][0], r1-r0)
}

func (o *ptcOp) padBack2Asm(r0, r1 int) {
	if r0 == r1 {
		return
	}
	var gphi, glinks *float64
	if o.phi.Grad != nil {
		gphi = &o.phi.Grad[4*r0 : 4*r1][0]
	}
	if o.links.Grad != nil {
		glinks = &o.links.Grad[4*r0 : 4*r1][0]
	}
	ptcPadBack2AVX2(&o.pad.Grad[12*r0 : 12*r1][0], &o.phi.Data[4*r0 : 4*r1][0], gphi, &o.links.Data[4*r0 : 4*r1][0], glinks, r1-r0)
}
