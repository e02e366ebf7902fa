package pfflow

// The PTC kernels for one colour (U(1)): the same equations as the general
// kernels of ptc.go with the colour loops gone and complex numbers as pairs
// of float64, rows addressed directly (row r = (s, b) is at r·C in every
// tensor of V × B × C, and at (p·B + b)·C for a padded index p). The tests
// compare them with the general kernels.

func (o *ptcOp) padU1(_, r0, r1 int) {
	tr := o.p.tr
	nd, in := tr.nd, o.p.in
	slot := 2 * in
	per := (1 + nd) * slot
	links := o.links.Data
	for r := r0; r < r1; r++ {
		src := o.phi.Data[r*slot : (r+1)*slot]
		dst := o.pad.Data[r*per : (r+1)*per]
		copy(dst[:slot], src)
		u := links[r*2*nd : (r+1)*2*nd]
		for mu := range nd {
			ur, ui := u[2*mu], -u[2*mu+1] // U†
			g := dst[(1+mu)*slot : (2+mu)*slot]
			for k := 0; k < slot; k += 2 {
				fr, fi := src[k], src[k+1]
				g[k], g[k+1] = ur*fr-ui*fi, ur*fi+ui*fr
			}
		}
	}
}

// gatherU1 fills lre, lim (K̃ each) with L(s) of member b (row r).
func (o *ptcOp) gatherU1(lre, lim []float64, r, s, b int) {
	tr := o.p.tr
	nd, in := tr.nd, o.p.in
	B := o.phi.B
	slot := 2 * in
	per := (1 + nd) * slot
	pad := o.pad.Data
	u := o.links.Data[r*2*nd : (r+1)*2*nd]
	self := pad[r*per : r*per+slot]
	for k := range in {
		lre[k], lim[k] = self[2*k], self[2*k+1]
	}
	for mu := range nd {
		ur, ui := u[2*mu], u[2*mu+1]
		fi := int(tr.up[mu][s])*B + b
		fw := pad[fi*per : fi*per+slot]
		bi := int(tr.dn[mu][s])*B + b
		bw := pad[bi*per+(1+mu)*slot : bi*per+(2+mu)*slot]
		f0 := (1 + 2*mu) * in
		b0 := (2 + 2*mu) * in
		for k := range in {
			pr, pi := fw[2*k], fw[2*k+1]
			lre[f0+k], lim[f0+k] = ur*pr-ui*pi, ur*pi+ui*pr
			lre[b0+k], lim[b0+k] = bw[2*k], bw[2*k+1]
		}
	}
}

func (o *ptcOp) mixU1(w, r0, r1 int) {
	kt := o.p.Gathered()
	out := o.p.out
	B := o.phi.B
	buf := o.work[w]
	lre, lim := buf.re[:kt], buf.im[:kt]
	mc := o.m.C
	oc := o.out.C
	s, b := r0/B, r0%B
	for r := r0; r < r1; r++ {
		o.gatherU1(lre, lim, r, s, b)
		if b++; b == B {
			s, b = s+1, 0
		}
		m := o.m.Data[r*mc+o.moff : r*mc+o.moff+2*out*kt]
		dst := o.out.Data[r*oc : r*oc+2*out]
		for a := range out {
			row := m[2*a*kt : 2*(a+1)*kt]
			var zr, zi float64
			for g := range kt {
				mr, mi := row[2*g], row[2*g+1]
				zr += mr*lre[g] - mi*lim[g]
				zi += mr*lim[g] + mi*lre[g]
			}
			dst[2*a], dst[2*a+1] = zr, zi
		}
	}
}

// mixBackU1: Ḡ_M = Ḡ_out L†, Ḡ_L = M† Ḡ_out; the self share to the halo
// buffer's gradient at y, Ḡ_U of the forward transport, and Ḡ_L kept for
// the scatter.
func (o *ptcOp) mixBackU1(w, r0, r1 int) {
	tr := o.p.tr
	nd, in := tr.nd, o.p.in
	kt := o.p.Gathered()
	out := o.p.out
	B := o.phi.B
	slot := 2 * in
	per := (1 + nd) * slot
	buf := o.work[w]
	lre, lim := buf.re[:kt], buf.im[:kt]
	mc := o.m.C
	oc := o.out.C
	gl := tr.glf
	s, b := r0/B, r0%B-1
	for r := r0; r < r1; r++ {
		if b++; b == B {
			s, b = s+1, 0
		}
		o.gatherU1(lre, lim, r, s, b)
		m := o.m.Data[r*mc+o.moff : r*mc+o.moff+2*out*kt]
		var mg []float64
		if o.m.Grad != nil {
			mg = o.m.Grad[r*mc+o.moff : r*mc+o.moff+2*out*kt]
		}
		gout := o.out.Grad[r*oc : r*oc+2*out]
		g := gl[r*2*kt : (r+1)*2*kt]
		clear(g)
		for a := range out {
			gr, gi := gout[2*a], gout[2*a+1]
			row := m[2*a*kt : 2*(a+1)*kt]
			if mg != nil {
				mgr := mg[2*a*kt : 2*(a+1)*kt]
				for k := range kt {
					// Ḡ_out · conj(L)
					mgr[2*k] += gr*lre[k] + gi*lim[k]
					mgr[2*k+1] += gi*lre[k] - gr*lim[k]
				}
			}
			for k := range kt {
				// conj(M) · Ḡ_out
				mr, mi := row[2*k], row[2*k+1]
				g[2*k] += mr*gr + mi*gi
				g[2*k+1] += mr*gi - mi*gr
			}
		}
		self := o.pad.Grad[r*per : r*per+slot]
		for i := range self {
			self[i] += g[i]
		}
		if o.links.Grad == nil {
			continue
		}
		lg := o.links.Grad[r*2*nd : (r+1)*2*nd]
		for mu := range nd {
			fi := int(tr.up[mu][s])*B + b
			fw := o.pad.Data[fi*per : fi*per+slot]
			gf := g[2*(1+2*mu)*in : 2*(2+2*mu)*in]
			var zr, zi float64
			for k := range in {
				// Ḡ_L · conj(φ′)
				pr, pi := fw[2*k], fw[2*k+1]
				zr += gf[2*k]*pr + gf[2*k+1]*pi
				zi += gf[2*k+1]*pr - gf[2*k]*pi
			}
			lg[2*mu] += zr
			lg[2*mu+1] += zi
		}
	}
}

func (o *ptcOp) scatterU1(_, lo, hi int) {
	tr := o.p.tr
	nd, in := tr.nd, o.p.in
	kt := o.p.Gathered()
	B := o.phi.B
	slot := 2 * in
	per := (1 + nd) * slot
	gl := tr.glf
	pg := o.pad.Grad
	for s := 0; s < o.phi.V; s++ {
		for b := lo; b < hi; b++ {
			r := s*B + b
			g := gl[r*2*kt : (r+1)*2*kt]
			u := o.links.Data[r*2*nd : (r+1)*2*nd]
			for mu := range nd {
				ur, ui := u[2*mu], -u[2*mu+1] // U†
				fi := int(tr.up[mu][s])*B + b
				gfw := pg[fi*per : fi*per+slot]
				bi := int(tr.dn[mu][s])*B + b
				gbw := pg[bi*per+(1+mu)*slot : bi*per+(2+mu)*slot]
				gf := g[2*(1+2*mu)*in : 2*(2+2*mu)*in]
				gb := g[2*(2+2*mu)*in : 2*(3+2*mu)*in]
				for k := 0; k < slot; k += 2 {
					xr, xi := gf[k], gf[k+1]
					gfw[k] += ur*xr - ui*xi
					gfw[k+1] += ur*xi + ui*xr
					gbw[k] += gb[k]
					gbw[k+1] += gb[k+1]
				}
			}
		}
	}
}

// padBackU1: slot 0 is φ; slot 1+μ is ψ = U_μ† φ, so Ḡ_φ += U Ḡ_ψ and
// Ḡ_U += φ Ḡ_ψ†.
func (o *ptcOp) padBackU1(_, r0, r1 int) {
	tr := o.p.tr
	nd, in := tr.nd, o.p.in
	slot := 2 * in
	per := (1 + nd) * slot
	for r := r0; r < r1; r++ {
		gpad := o.pad.Grad[r*per : (r+1)*per]
		phi := o.phi.Data[r*slot : (r+1)*slot]
		u := o.links.Data[r*2*nd : (r+1)*2*nd]
		var gphi, lg []float64
		if o.phi.Grad != nil {
			gphi = o.phi.Grad[r*slot : (r+1)*slot]
			for i, v := range gpad[:slot] {
				gphi[i] += v
			}
		}
		if o.links.Grad != nil {
			lg = o.links.Grad[r*2*nd : (r+1)*2*nd]
		}
		for mu := range nd {
			ur, ui := u[2*mu], u[2*mu+1]
			gs := gpad[(1+mu)*slot : (2+mu)*slot]
			var zr, zi float64
			for k := 0; k < slot; k += 2 {
				xr, xi := gs[k], gs[k+1]
				if gphi != nil {
					gphi[k] += ur*xr - ui*xi
					gphi[k+1] += ur*xi + ui*xr
				}
				// φ · conj(Ḡ_ψ)
				pr, pi := phi[k], phi[k+1]
				zr += pr*xr + pi*xi
				zi += pi*xr - pr*xi
			}
			if lg != nil {
				lg[2*mu] += zr
				lg[2*mu+1] += zi
			}
		}
	}
}
