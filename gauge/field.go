package gauge

import (
	"fmt"
	"math/cmplx"

	"pfmpi/decomp"
	"pfmpi/field"
	"pfmpi/group"
	"pfmpi/halo"
	"pfmpi/mpi"
	"pfmpi/rng"
)

// Space is the decomposed lattice that gauge fields live on: the domain
// communicator, this rank's block, a periodic box halo of depth 1 (plaquettes
// and staples reach x ± μ and x + μ − ν) and its exchanges. Many fields share
// one Space; it carries one halo exchange at a time.
type Space struct {
	comm   mpi.Comm
	ly     *decomp.Layout
	zone   *decomp.Zone
	nc, nd int
	grp    group.Group
	links  *halo.Halo[complex128]                  // Nd·Nc² values per site
	sites  *halo.Halo[complex128]                  // Nc² values per site (gauge transformations)
	diag   [decomp.MaxDims][decomp.MaxDims][]int32 // diag[μ][ν][s] = index of s + μ − ν
}

// NewSpace prepares gauge fields of SU(Nc) (Nc = 3) or U(1) (Nc = 1) on the
// block ly of the domain communicator comm.
func NewSpace(comm mpi.Comm, ly *decomp.Layout, nc int) (*Space, error) {
	grp, err := group.Of(nc)
	if err != nil {
		return nil, fmt.Errorf("gauge: %w", err)
	}
	nd := ly.Lattice().NumDims()
	if nd < 2 {
		return nil, fmt.Errorf("gauge: a gauge field needs at least 2 directions, the lattice has %d", nd)
	}
	zone, err := ly.NewZone(decomp.ZoneSpec{Depth: 1, Shape: decomp.Box})
	if err != nil {
		return nil, err
	}
	sp := &Space{comm: comm, ly: ly, zone: zone, nc: nc, nd: nd, grp: grp}
	if sp.links, err = halo.New[complex128](comm, zone, nd*nc*nc, nil); err != nil {
		return nil, err
	}
	if sp.sites, err = halo.New[complex128](comm, zone, nc*nc, nil); err != nil {
		sp.links.Close()
		return nil, err
	}
	for mu := 0; mu < nd; mu++ {
		for nu := 0; nu < nd; nu++ {
			if mu == nu {
				continue
			}
			d := make([]int, nd)
			d[mu], d[nu] = 1, -1
			if sp.diag[mu][nu], err = zone.Shift(d); err != nil {
				return nil, err
			}
		}
	}
	return sp, nil
}

// Close releases the halo exchanges.
func (sp *Space) Close() {
	sp.links.Close()
	sp.sites.Close()
}

// Nc is the number of colours (1: U(1), 3: SU(3)).
func (sp *Space) Nc() int { return sp.nc }

// Group is the gauge group.
func (sp *Space) Group() group.Group { return sp.grp }

// Nd is the number of lattice directions.
func (sp *Space) Nd() int { return sp.nd }

// Layout is this rank's block.
func (sp *Space) Layout() *decomp.Layout { return sp.ly }

// Zone is the halo zone of the fields.
func (sp *Space) Zone() *decomp.Zone { return sp.zone }

// Comm is the domain communicator.
func (sp *Space) Comm() mpi.Comm { return sp.comm }

// Field is a gauge field: the link U_μ(x), an Nc×Nc matrix, for every local
// site x and direction μ, plus its halo copies.
type Field struct {
	sp *Space
	f  *field.Field[complex128]
}

// NewField returns the cold (unit) gauge field.
func (sp *Space) NewField() *Field {
	u := &Field{sp: sp, f: field.New[complex128](sp.zone, sp.nd*sp.nc*sp.nc)}
	u.SetCold()
	return u
}

// Space returns the space the field lives on.
func (u *Field) Space() *Space { return u.sp }

// Data returns the field's storage: Nd·Nc² values per site, site-major, link
// U_μ(x) of site s at [(s·Nd + μ)·Nc², (s·Nd + μ + 1)·Nc²), halo after the
// local sites (see field.Field).
func (u *Field) Data() *field.Field[complex128] { return u.f }

// Link returns U_μ(x) of site (or halo cell) s, Nc² values row-major; the
// slice aliases the field.
func (u *Field) Link(s, mu int) []complex128 {
	n := u.sp.nc * u.sp.nc
	i := (s*u.sp.nd + mu) * n
	return u.f.Data()[i : i+n]
}

// Exchange fills the halo copies of the links.
func (u *Field) Exchange() { u.sp.links.Exchange(u.f.Data(), decomp.All) }

// CopyFrom sets u to v (same space).
func (u *Field) CopyFrom(v *Field) { copy(u.f.Data(), v.f.Data()) }

// Clone returns a copy of u.
func (u *Field) Clone() *Field { return &Field{sp: u.sp, f: u.f.Clone()} }

// SetCold sets every link to 1.
func (u *Field) SetCold() {
	for s := 0; s < u.sp.ly.Volume(); s++ {
		for mu := 0; mu < u.sp.nd; mu++ {
			u.sp.grp.SetIdentity(u.Link(s, mu))
		}
	}
}

// SetHot draws every link from the Haar measure. The links of the site with
// global index g are the draws of key.Stream(g) in direction order, so the
// field does not depend on the process grid.
func (u *Field) SetHot(key rng.Key) {
	for s := 0; s < u.sp.ly.Volume(); s++ {
		st := key.Stream(uint64(u.sp.ly.GlobalIndex(s)))
		for mu := 0; mu < u.sp.nd; mu++ {
			u.sp.grp.Haar(u.Link(s, mu), &st)
		}
	}
}

// SetNearIdentity sets every link to exp(ε Σ_a ω_a T_a) with ω_a standard
// normal (streams as in SetHot).
func (u *Field) SetNearIdentity(key rng.Key, eps float64) {
	var buf [9]complex128
	x := buf[:u.sp.nc*u.sp.nc]
	for s := 0; s < u.sp.ly.Volume(); s++ {
		st := key.Stream(uint64(u.sp.ly.GlobalIndex(s)))
		for mu := 0; mu < u.sp.nd; mu++ {
			u.sp.grp.RandomAlgebra(x, &st)
			for i := range x {
				x[i] *= complex(eps, 0)
			}
			u.sp.grp.Exp(u.Link(s, mu), x)
		}
	}
}

// Reunitarize projects every local link back onto the group (it drifts by
// rounding over many updates): U(1) to the unit circle, SU(3) by
// Gram–Schmidt with the determinant fixed to 1.
func (u *Field) Reunitarize() {
	for s := 0; s < u.sp.ly.Volume(); s++ {
		for mu := 0; mu < u.sp.nd; mu++ {
			u.sp.grp.Project(u.Link(s, mu))
		}
	}
}

// MaxDifference returns the largest |U_μ(x)_ij − V_μ(x)_ij| over the whole
// lattice (collective).
func (u *Field) MaxDifference(v *Field) float64 {
	n := u.sp.ly.Volume() * u.sp.nd * u.sp.nc * u.sp.nc
	a, b := u.f.Data()[:n], v.f.Data()[:n]
	d := 0.0
	for i := range a {
		d = max(d, cmplx.Abs(a[i]-b[i]))
	}
	return mpi.MaxFloat64(u.sp.comm, d)
}

// MaxDistanceFromGroup returns the largest distance of a local link from the
// group (max|UU† − 1|, and |det U − 1| for SU(3)) over all ranks.
func (u *Field) MaxDistanceFromGroup() float64 {
	d := 0.0
	for s := 0; s < u.sp.ly.Volume(); s++ {
		for mu := 0; mu < u.sp.nd; mu++ {
			d = max(d, u.sp.grp.Distance(u.Link(s, mu)))
		}
	}
	return mpi.MaxFloat64(u.sp.comm, d)
}

// Algebra is a field of Lie-algebra elements on the links (forces, momenta):
// X_μ(x) = Σ_a x_a T_a, stored as Nc×Nc matrices like the links.
type Algebra struct {
	sp *Space
	f  *field.Field[complex128]
}

// NewAlgebra returns the zero algebra field.
func (sp *Space) NewAlgebra() *Algebra {
	return &Algebra{sp: sp, f: field.New[complex128](sp.zone, sp.nd*sp.nc*sp.nc)}
}

// At returns X_μ(x) of local site s (aliases the field).
func (x *Algebra) At(s, mu int) []complex128 {
	n := x.sp.nc * x.sp.nc
	i := (s*x.sp.nd + mu) * n
	return x.f.Data()[i : i+n]
}

// Data returns the storage (layout as Field.Data).
func (x *Algebra) Data() *field.Field[complex128] { return x.f }

// SetGaussian draws every component x_a from the standard normal
// distribution (streams keyed by global site, as Field.SetHot).
func (x *Algebra) SetGaussian(key rng.Key) {
	for s := 0; s < x.sp.ly.Volume(); s++ {
		st := key.Stream(uint64(x.sp.ly.GlobalIndex(s)))
		for mu := 0; mu < x.sp.nd; mu++ {
			x.sp.grp.RandomAlgebra(x.At(s, mu), &st)
		}
	}
}

// Dot returns Σ_{x,μ} Σ_a x_a y_a over the whole lattice.
func (x *Algebra) Dot(y *Algebra) float64 {
	sum := 0.0
	for s := 0; s < x.sp.ly.Volume(); s++ {
		for mu := 0; mu < x.sp.nd; mu++ {
			sum += x.sp.grp.AlgebraDot(x.At(s, mu), y.At(s, mu))
		}
	}
	return mpi.SumFloat64(x.sp.comm, sum)
}

// Add sets x = x + c·y on the local links.
func (x *Algebra) Add(c float64, y *Algebra) {
	cc := complex(c, 0)
	n := x.sp.ly.Volume() * x.sp.nd * x.sp.nc * x.sp.nc
	xd, yd := x.f.Data()[:n], y.f.Data()[:n]
	for i, v := range yd {
		xd[i] += cc * v
	}
}

// Scale sets x = c·x on the local links.
func (x *Algebra) Scale(c float64) {
	cc := complex(c, 0)
	n := x.sp.ly.Volume() * x.sp.nd * x.sp.nc * x.sp.nc
	xd := x.f.Data()[:n]
	for i := range xd {
		xd[i] *= cc
	}
}

// Zero sets every element to 0.
func (x *Algebra) Zero() { clear(x.f.Data()) }

// CopyFrom sets x to y (same space).
func (x *Algebra) CopyFrom(y *Algebra) { copy(x.f.Data(), y.f.Data()) }

// Update sets every link U_μ(x) to exp(ε X_μ(x)) U_μ(x).
func (u *Field) Update(eps float64, x *Algebra) {
	n := u.sp.nc * u.sp.nc
	var buf [27]complex128
	e, scaled, tmp := buf[:n], buf[9:9+n], buf[18:18+n]
	for s := 0; s < u.sp.ly.Volume(); s++ {
		for mu := 0; mu < u.sp.nd; mu++ {
			for i, v := range x.At(s, mu) {
				scaled[i] = complex(eps, 0) * v
			}
			u.sp.grp.Exp(e, scaled)
			l := u.Link(s, mu)
			u.sp.grp.Mul(tmp, e, l)
			copy(l, tmp)
		}
	}
}

// Transform is a gauge transformation Ω(x), one group element per site.
type Transform struct {
	sp *Space
	f  *field.Field[complex128]
}

// NewTransform returns the identity transformation.
func (sp *Space) NewTransform() *Transform {
	g := &Transform{sp: sp, f: field.New[complex128](sp.zone, sp.nc*sp.nc)}
	for s := 0; s < sp.ly.Volume(); s++ {
		sp.grp.SetIdentity(g.At(s))
	}
	return g
}

// RandomTransform returns Haar-random Ω(x), drawn from key.Stream(g) for the
// site with global index g.
func (sp *Space) RandomTransform(key rng.Key) *Transform {
	g := sp.NewTransform()
	for s := 0; s < sp.ly.Volume(); s++ {
		st := key.Stream(uint64(sp.ly.GlobalIndex(s)))
		sp.grp.Haar(g.At(s), &st)
	}
	return g
}

// At returns Ω(x) of site (or halo cell) s (aliases the field).
func (g *Transform) At(s int) []complex128 {
	n := g.sp.nc * g.sp.nc
	return g.f.Data()[s*n : (s+1)*n]
}

// Transform applies Ω (Eq. 6 of the paper): U_μ(x) → Ω(x) U_μ(x) Ω†(x+μ).
func (u *Field) Transform(g *Transform) {
	sp := u.sp
	sp.sites.Exchange(g.f.Data(), decomp.All)
	var buf [9]complex128
	tmp := buf[:sp.nc*sp.nc]
	for s := 0; s < sp.ly.Volume(); s++ {
		for mu := 0; mu < sp.nd; mu++ {
			l := u.Link(s, mu)
			sp.grp.Mul(tmp, g.At(s), l)
			sp.grp.MulAdj(l, tmp, g.At(int(sp.zone.Up(mu)[s])))
		}
	}
}

// Angles writes the link angles θ_μ(x) ∈ (−π, π] of a U(1) field, U = e^{iθ},
// into dst: V·Nd values, local site-major (value s·Nd + μ).
func (u *Field) Angles(dst []float64) {
	u.checkU1(len(dst))
	for i := range dst {
		dst[i] = cmplx.Phase(u.f.Data()[i])
	}
}

// SetAngles sets the links of a U(1) field to e^{iθ} from V·Nd angles in the
// layout of Angles.
func (u *Field) SetAngles(theta []float64) {
	u.checkU1(len(theta))
	for i, t := range theta {
		u.f.Data()[i] = cmplx.Rect(1, t)
	}
}

func (u *Field) checkU1(n int) {
	if !u.sp.grp.Abelian() {
		panic("gauge: angles are the U(1) representation; the field is SU(3)")
	}
	if n != u.sp.ly.Volume()*u.sp.nd {
		panic(fmt.Sprintf("gauge: %d angles for %d sites × %d directions", n, u.sp.ly.Volume(), u.sp.nd))
	}
}
