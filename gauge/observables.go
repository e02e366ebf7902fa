package gauge

import (
	"fmt"
	"math"
	"math/cmplx"

	"pfmpi/mpi"
)

// Plaquette writes P_μν(x) = U_μ(x) U_ν(x+μ) U_μ†(x+ν) U_ν†(x) (Eq. 3) of
// local site s into dst (Nc² values). The halo must be current (Exchange).
func (u *Field) Plaquette(dst []complex128, s, mu, nu int) {
	sp := u.sp
	nc, grp := sp.nc, sp.grp
	var buf [18]complex128
	a, b := buf[:nc*nc], buf[9:9+nc*nc]
	up := sp.zone.Up(mu)[s]
	vp := sp.zone.Up(nu)[s]
	grp.Mul(a, u.Link(s, mu), u.Link(int(up), nu))
	grp.MulAdj(b, a, u.Link(int(vp), mu))
	grp.MulAdj(dst, b, u.Link(s, nu))
}

// PlaquetteSum returns Σ_x Σ_{μ<ν} Re Tr P_μν(x) over the whole lattice.
func (u *Field) PlaquetteSum() float64 {
	u.Exchange()
	sp := u.sp
	var p [9]complex128
	sum := 0.0
	for s := 0; s < sp.ly.Volume(); s++ {
		for mu := 0; mu < sp.nd; mu++ {
			for nu := mu + 1; nu < sp.nd; nu++ {
				u.Plaquette(p[:sp.nc*sp.nc], s, mu, nu)
				sum += real(sp.grp.Trace(p[:]))
			}
		}
	}
	return mpi.SumFloat64(sp.comm, sum)
}

// planes is the number of planes μ < ν.
func (sp *Space) planes() int { return sp.nd * (sp.nd - 1) / 2 }

// AveragePlaquette returns (1/Nc) Re Tr P averaged over sites and planes: 1
// for the cold field.
func (u *Field) AveragePlaquette() float64 {
	sp := u.sp
	n := float64(sp.ly.Lattice().GlobalVolume()) * float64(sp.planes()) * float64(sp.nc)
	return u.PlaquetteSum() / n
}

// Action returns the Wilson gauge action (Eq. 2)
//
//	S_g = −(β/Nc) Σ_x Σ_{μ<ν} Re Tr P_μν(x),
//
// without the constant β Σ 1 of the form β Σ (1 − Re Tr P/Nc).
func (u *Field) Action(beta float64) float64 {
	return -beta / float64(u.sp.nc) * u.PlaquetteSum()
}

// staple writes A_μ(x) = Σ_{ν≠μ} [U_ν(x+μ) U_μ†(x+ν) U_ν†(x) +
// U_ν†(x+μ−ν) U_μ†(x−ν) U_ν(x−ν)] into dst, so that Σ of Re Tr P over the
// plaquettes containing U_μ(x) is Re Tr(U_μ(x) A_μ(x)).
func (u *Field) staple(dst []complex128, s, mu int) {
	sp := u.sp
	nc, grp := sp.nc, sp.grp
	n := nc * nc
	var buf [27]complex128
	a, b, c := buf[:n], buf[9:9+n], buf[18:18+n]
	clear(dst[:n])
	up := int(sp.zone.Up(mu)[s])
	for nu := 0; nu < sp.nd; nu++ {
		if nu == mu {
			continue
		}
		vp := int(sp.zone.Up(nu)[s])
		vm := int(sp.zone.Dn(nu)[s])
		umv := int(sp.diag[mu][nu][s])
		// upper: U_ν(x+μ) U_μ†(x+ν) U_ν†(x)
		grp.MulAdj(a, u.Link(up, nu), u.Link(vp, mu))
		grp.MulAdj(b, a, u.Link(s, nu))
		// lower: U_ν†(x+μ−ν) U_μ†(x−ν) U_ν(x−ν) = (U_μ(x−ν) U_ν(x+μ−ν))† U_ν(x−ν)
		grp.Mul(a, u.Link(vm, mu), u.Link(umv, nu))
		grp.AdjMul(c, a, u.Link(vm, nu))
		for i := 0; i < n; i++ {
			dst[i] += b[i] + c[i]
		}
	}
}

// Force writes the gauge force into f: F_μ(x) = Σ_a F_a T_a with
// F_a = ∂S_g/∂x_a at U_μ(x) → exp(Σ_a x_a T_a) U_μ(x), x = 0, that is
//
//	F_μ(x) = −(β/Nc) Σ_a T_a Re Tr(T_a U_μ(x) A_μ(x))
//
// with A the staple sum. For any algebra field X,
// d/dε S_g(exp(εX) U)|₀ = F·X (Algebra.Dot).
func (u *Field) Force(beta float64, f *Algebra) {
	u.Exchange()
	sp := u.sp
	nc, grp := sp.nc, sp.grp
	n := nc * nc
	var buf [18]complex128
	a, m := buf[:n], buf[9:9+n]
	scale := complex(-beta/float64(nc), 0)
	for s := 0; s < sp.ly.Volume(); s++ {
		for mu := 0; mu < sp.nd; mu++ {
			u.staple(a, s, mu)
			grp.Mul(m, u.Link(s, mu), a)
			dst := f.At(s, mu)
			grp.Dual(dst, m)
			for i := range dst {
				dst[i] *= scale
			}
		}
	}
}

// TopologicalCharge returns Q = (1/2π) Σ_x arg P_01(x), arg ∈ (−π, π], for a
// two-dimensional U(1) field: an integer up to rounding.
func (u *Field) TopologicalCharge() (float64, error) {
	sp := u.sp
	if !sp.grp.Abelian() || sp.nd != 2 {
		return 0, fmt.Errorf("gauge: the topological charge is defined here for 2D U(1), not %dD with Nc = %d", sp.nd, sp.nc)
	}
	u.Exchange()
	var p [1]complex128
	sum := 0.0
	for s := 0; s < sp.ly.Volume(); s++ {
		u.Plaquette(p[:], s, 0, 1)
		sum += cmplx.Phase(p[0])
	}
	return mpi.SumFloat64(sp.comm, sum) / (2 * math.Pi), nil
}

// PolyakovLoop returns the Polyakov loop (1/Nc) Tr Π_t U_0(t, x⃗), the ordered
// product along direction 0 (time), averaged over the spatial sites.
func (u *Field) PolyakovLoop() complex128 {
	sp := u.sp
	ly := sp.ly
	lat := ly.Lattice()
	nc, grp := sp.nc, sp.grp
	n := nc * nc
	local := lat.Local()
	spatial := ly.Volume() / local[0] // spatial sites of this block
	// Partial products over this block's time slices, per spatial site in
	// local lexicographic order of the spatial coordinates.
	part := make([]complex128, spatial*n)
	tmp := make([]complex128, n)
	y := make([]int, sp.nd)
	for i := 0; i < spatial; i++ {
		grp.SetIdentity(part[i*n : (i+1)*n])
		k := i
		for mu := sp.nd - 1; mu >= 1; mu-- {
			y[mu] = k % local[mu]
			k /= local[mu]
		}
		for t := 0; t < local[0]; t++ {
			y[0] = t
			grp.Mul(tmp, part[i*n:(i+1)*n], u.Link(ly.SiteAt(y), 0))
			copy(part[i*n:(i+1)*n], tmp)
		}
	}
	// Rank 0 multiplies the blocks' products in time order.
	var all []complex128
	if sp.comm.Rank() == 0 {
		all = make([]complex128, sp.comm.Size()*len(part))
	}
	sp.comm.Gather(0, mpi.Bytes(part), mpi.Bytes(all))
	result := []complex128{0}
	if sp.comm.Rank() == 0 {
		grid := lat.Grid()
		coord := make([]int, sp.nd)
		prod := make([]complex128, n)
		var sum complex128
		// Loop over the spatial grid blocks (time coordinate 0) and their sites.
		for r := 0; r < sp.comm.Size(); r++ {
			lat.RankCoord(r, coord)
			if coord[0] != 0 {
				continue
			}
			for i := 0; i < spatial; i++ {
				grp.SetIdentity(prod)
				for c0 := 0; c0 < grid[0]; c0++ {
					coord[0] = c0
					q := lat.RankAt(coord)
					grp.Mul(tmp, prod, all[(q*spatial+i)*n:(q*spatial+i+1)*n])
					copy(prod, tmp)
				}
				coord[0] = 0
				sum += grp.Trace(prod)
			}
		}
		spatialGlobal := float64(lat.GlobalVolume()) / float64(lat.Dims()[0])
		result[0] = sum / complex(float64(nc)*spatialGlobal, 0)
	}
	sp.comm.Bcast(0, mpi.Bytes(result))
	return result[0]
}
