package pfflow

// The PTC kernels of the paper's 2D Schwinger-model flows, one colour with
// two input and two output features (spins, or H = 2): K̃ = 10, M is 2 × 10
// complex per row. The same equations as ptc_u1.go with every loop over
// features unrolled into fixed-size arrays; the tests compare them with the
// general kernels.

// gather2 returns L(s) of member b (row r) as real and imaginary parts.
func (o *ptcOp) gather2(r, s, b int) (lr, li [10]float64) {
	tr := o.p.tr
	B := o.phi.B
	pad := o.pad.Data
	u := (*[4]float64)(o.links.Data[4*r : 4*r+4])
	self := (*[12]float64)(pad[12*r : 12*r+12])
	lr[0], li[0], lr[1], li[1] = self[0], self[1], self[2], self[3]
	for mu := range 2 {
		ur, ui := u[2*mu], u[2*mu+1]
		fi := int(tr.up[mu][s])*B + b
		fw := (*[4]float64)(pad[12*fi : 12*fi+4])
		bi := int(tr.dn[mu][s])*B + b
		bw := (*[4]float64)(pad[12*bi+4*(1+mu) : 12*bi+4*(2+mu)])
		f := 2 + 4*mu // features (1+2μ)·2 and (2+2μ)·2
		lr[f], li[f] = ur*fw[0]-ui*fw[1], ur*fw[1]+ui*fw[0]
		lr[f+1], li[f+1] = ur*fw[2]-ui*fw[3], ur*fw[3]+ui*fw[2]
		lr[f+2], li[f+2] = bw[0], bw[1]
		lr[f+3], li[f+3] = bw[2], bw[3]
	}
	return
}

func (o *ptcOp) mix2(_, r0, r1 int) {
	B := o.phi.B
	mc, oc := o.m.C, o.out.C
	s, b := r0/B, r0%B
	for r := r0; r < r1; r++ {
		lr, li := o.gather2(r, s, b)
		if b++; b == B {
			s, b = s+1, 0
		}
		m := (*[40]float64)(o.m.Data[r*mc+o.moff : r*mc+o.moff+40])
		var z0r, z0i, z1r, z1i float64
		for g := range 10 {
			a, c := m[2*g], m[2*g+1]
			d, e := m[20+2*g], m[21+2*g]
			z0r += a*lr[g] - c*li[g]
			z0i += a*li[g] + c*lr[g]
			z1r += d*lr[g] - e*li[g]
			z1i += d*li[g] + e*lr[g]
		}
		dst := (*[4]float64)(o.out.Data[r*oc : r*oc+4])
		dst[0], dst[1], dst[2], dst[3] = z0r, z0i, z1r, z1i
	}
}

func (o *ptcOp) mixBack2(_, r0, r1 int) {
	tr := o.p.tr
	B := o.phi.B
	mc, oc := o.m.C, o.out.C
	gl := tr.glf
	s, b := r0/B, r0%B-1
	for r := r0; r < r1; r++ {
		if b++; b == B {
			s, b = s+1, 0
		}
		lr, li := o.gather2(r, s, b)
		m := (*[40]float64)(o.m.Data[r*mc+o.moff : r*mc+o.moff+40])
		gout := (*[4]float64)(o.out.Grad[r*oc : r*oc+4])
		g0r, g0i, g1r, g1i := gout[0], gout[1], gout[2], gout[3]
		if o.m.Grad != nil {
			mg := (*[40]float64)(o.m.Grad[r*mc+o.moff : r*mc+o.moff+40])
			for k := range 10 {
				// Ḡ_out · conj(L)
				mg[2*k] += g0r*lr[k] + g0i*li[k]
				mg[2*k+1] += g0i*lr[k] - g0r*li[k]
				mg[20+2*k] += g1r*lr[k] + g1i*li[k]
				mg[21+2*k] += g1i*lr[k] - g1r*li[k]
			}
		}
		g := (*[20]float64)(gl[20*r : 20*r+20])
		for k := range 10 {
			// conj(M) · Ḡ_out
			a, c := m[2*k], m[2*k+1]
			d, e := m[20+2*k], m[21+2*k]
			g[2*k] = a*g0r + c*g0i + d*g1r + e*g1i
			g[2*k+1] = a*g0i - c*g0r + d*g1i - e*g1r
		}
		self := (*[4]float64)(o.pad.Grad[12*r : 12*r+4])
		self[0] += g[0]
		self[1] += g[1]
		self[2] += g[2]
		self[3] += g[3]
		if o.links.Grad == nil {
			continue
		}
		lg := (*[4]float64)(o.links.Grad[4*r : 4*r+4])
		for mu := range 2 {
			fi := int(tr.up[mu][s])*B + b
			fw := (*[4]float64)(o.pad.Data[12*fi : 12*fi+4])
			f := 4 + 8*mu // Ḡ_L of features (1+2μ)·2 …
			// Ḡ_L · conj(φ′)
			lg[2*mu] += g[f]*fw[0] + g[f+1]*fw[1] + g[f+2]*fw[2] + g[f+3]*fw[3]
			lg[2*mu+1] += g[f+1]*fw[0] - g[f]*fw[1] + g[f+3]*fw[2] - g[f+2]*fw[3]
		}
	}
}

func (o *ptcOp) scatter2(_, lo, hi int) {
	tr := o.p.tr
	B := o.phi.B
	gl := tr.glf
	pg := o.pad.Grad
	for s := 0; s < o.phi.V; s++ {
		for b := lo; b < hi; b++ {
			r := s*B + b
			g := (*[20]float64)(gl[20*r : 20*r+20])
			u := (*[4]float64)(o.links.Data[4*r : 4*r+4])
			for mu := range 2 {
				ur, ui := u[2*mu], -u[2*mu+1] // U†
				fi := int(tr.up[mu][s])*B + b
				gfw := (*[4]float64)(pg[12*fi : 12*fi+4])
				bi := int(tr.dn[mu][s])*B + b
				gbw := (*[4]float64)(pg[12*bi+4*(1+mu) : 12*bi+4*(2+mu)])
				f := 4 + 8*mu
				gfw[0] += ur*g[f] - ui*g[f+1]
				gfw[1] += ur*g[f+1] + ui*g[f]
				gfw[2] += ur*g[f+2] - ui*g[f+3]
				gfw[3] += ur*g[f+3] + ui*g[f+2]
				gbw[0] += g[f+4]
				gbw[1] += g[f+5]
				gbw[2] += g[f+6]
				gbw[3] += g[f+7]
			}
		}
	}
}
