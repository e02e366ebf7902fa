package halo

import (
	"fmt"
	"math"
	"math/cmplx"
	"unsafe"

	"pfmpi/decomp"
	"pfmpi/mpi"
)

// Elem is the element type of a field: real or complex double precision.
type Elem interface{ float64 | complex128 }

// Message tags: forward and adjoint exchanges of each parity selection.
const (
	tagForward = 100
	tagAdjoint = 110
)

// Halo exchanges the halo cells of fields with n values per site on one zone.
type Halo[T Elem] struct {
	zone    *decomp.Zone
	comm    mpi.Comm
	n       int // values per site
	volume  int
	remote  []peer[T]
	self    *peer[T]
	plans   [3]plan // indexed by decomp.Parity
	pending decomp.Parity
	adjoint bool
	active  bool
}

// peer holds the buffers of one rank this rank exchanges with.
type peer[T Elem] struct {
	p       *decomp.Peer
	sendBuf []T // packed values of p.Send (forward: sent; adjoint: received)
	recvBuf []T // values of the cells [RecvLo, RecvHi) (forward: received; adjoint: sent)
	segs    []segment[T]
}

// segment is a range [lo, hi) of Send entries that share one phase and name
// consecutive sites site, site+1, …, so that it packs with one copy.
type segment[T Elem] struct {
	lo, hi     int
	site       int
	phase, bar T    // ε(w) and its conjugate
	one        bool // ε(w) = 1: plain copy
}

// in reports whether the segment belongs to the Send range [lo, hi) of a
// selection; segments never straddle the parity boundary.
func (s *segment[T]) in(lo, hi int) bool { return s.lo >= lo && s.hi <= hi }

// plan is the persistent exchange of one parity selection.
type plan struct {
	forward, adjoint mpi.Exchange
}

// New prepares halo exchanges on zone over the domain communicator comm (whose
// rank must be the zone's domain rank) for fields with n values per site.
// phases gives the boundary phase e_μ of each direction (nil: periodic).
func New[T Elem](comm mpi.Comm, zone *decomp.Zone, n int, phases []complex128) (*Halo[T], error) {
	ly := zone.Layout()
	lat := ly.Lattice()
	nd := lat.NumDims()
	if comm.Size() != lat.DomainSize() || comm.Rank() != ly.Rank() {
		return nil, fmt.Errorf("halo: communicator rank %d of %d does not match domain rank %d of the %v grid",
			comm.Rank(), comm.Size(), ly.Rank(), lat.Grid())
	}
	if n < 1 {
		return nil, fmt.Errorf("halo: %d values per site; need at least 1", n)
	}
	if phases == nil {
		phases = make([]complex128, nd)
		for mu := range phases {
			phases[mu] = 1
		}
	}
	if len(phases) != nd {
		return nil, fmt.Errorf("halo: %d boundary phases for a %d-dimensional lattice", len(phases), nd)
	}
	var zero T
	_, isReal := any(zero).(float64)
	for mu, e := range phases {
		if math.Abs(cmplx.Abs(e)-1) > 1e-12 {
			return nil, fmt.Errorf("halo: boundary phase %v of direction %d does not have modulus 1", e, mu)
		}
		if isReal && imag(e) != 0 {
			return nil, fmt.Errorf("halo: boundary phase %v of direction %d is complex but the field is real; use ±1", e, mu)
		}
		if e != 1 && !zone.Twisted(mu) {
			return nil, fmt.Errorf("halo: boundary phase %v in direction %d, but the zone reads that boundary in place; "+
				"build the zone with direction %d in ZoneSpec.Twisted", e, mu, mu)
		}
	}
	h := &Halo[T]{zone: zone, comm: comm, n: n, volume: ly.Volume()}
	peers := zone.Peers()
	for i := range peers {
		dp := &peers[i]
		pr := peer[T]{p: dp}
		for _, r := range dp.Wraps {
			e := complex(1, 0)
			for mu := 0; mu < nd; mu++ {
				for w := int(r.Wrap[mu]); w > 0; w-- {
					e *= phases[mu]
				}
				for w := int(r.Wrap[mu]); w < 0; w++ {
					e *= cmplx.Conj(phases[mu])
				}
			}
			for k := r.Lo; k < r.Hi; k++ {
				if k > r.Lo && dp.Send[k] == dp.Send[k-1]+1 {
					pr.segs[len(pr.segs)-1].hi++
					continue
				}
				pr.segs = append(pr.segs, segment[T]{lo: k, hi: k + 1, site: int(dp.Send[k]),
					phase: fromComplex[T](e), bar: fromComplex[T](cmplx.Conj(e)), one: e == 1})
			}
		}
		if dp.Rank == ly.Rank() {
			h.self = &pr // its copies stay in the field: no buffers
			continue
		}
		pr.sendBuf = make([]T, len(dp.Send)*n)
		pr.recvBuf = make([]T, (dp.RecvHi-dp.RecvLo)*n)
		h.remote = append(h.remote, pr)
	}
	for _, sel := range []decomp.Parity{decomp.Even, decomp.Odd, decomp.All} {
		var sends, recvs, adjSends, adjRecvs []mpi.Transfer
		for i := range h.remote {
			pr := &h.remote[i]
			slo, shi := pr.p.SendRange(sel)
			rlo, rhi := pr.p.RecvRange(sel)
			rlo, rhi = rlo-pr.p.RecvLo, rhi-pr.p.RecvLo
			send := mpi.Bytes(pr.sendBuf[slo*n : shi*n])
			recv := mpi.Bytes(pr.recvBuf[rlo*n : rhi*n])
			if len(send) > 0 {
				sends = append(sends, mpi.Transfer{Peer: pr.p.Rank, Tag: tagForward + int(sel), Buf: send})
				adjRecvs = append(adjRecvs, mpi.Transfer{Peer: pr.p.Rank, Tag: tagAdjoint + int(sel), Buf: send})
			}
			if len(recv) > 0 {
				recvs = append(recvs, mpi.Transfer{Peer: pr.p.Rank, Tag: tagForward + int(sel), Buf: recv})
				adjSends = append(adjSends, mpi.Transfer{Peer: pr.p.Rank, Tag: tagAdjoint + int(sel), Buf: recv})
			}
		}
		h.plans[sel] = plan{forward: comm.NewExchange(sends, recvs), adjoint: comm.NewExchange(adjSends, adjRecvs)}
	}
	return h, nil
}

func fromComplex[T Elem](z complex128) T {
	var t T
	switch p := any(&t).(type) {
	case *float64:
		*p = real(z)
	case *complex128:
		*p = z
	}
	return t
}

// Zone returns the zone the halo fills.
func (h *Halo[T]) Zone() *decomp.Zone { return h.zone }

// PerSite is the number of values per site.
func (h *Halo[T]) PerSite() int { return h.n }

// Bytes reports what one exchange of selection sel moves: bytes sent to other
// ranks and bytes copied within this rank (the adjoint moves the same).
func (h *Halo[T]) Bytes(sel decomp.Parity) (remote, local int) {
	var zero T
	size := int(unsafe.Sizeof(zero)) * h.n
	for i := range h.remote {
		lo, hi := h.remote[i].p.SendRange(sel)
		remote += (hi - lo) * size
	}
	if h.self != nil {
		lo, hi := h.self.p.SendRange(sel)
		local = (hi - lo) * size
	}
	return remote, local
}

// Close releases the persistent requests.
func (h *Halo[T]) Close() {
	for i := range h.plans {
		h.plans[i].forward.Free()
		h.plans[i].adjoint.Free()
	}
}

func (h *Halo[T]) check(f []T, sel decomp.Parity, starting, adjoint bool) {
	if len(f) != h.zone.Len()*h.n {
		panic(fmt.Sprintf("halo: field has %d values, want (V+H)·n = %d·%d", len(f), h.zone.Len(), h.n))
	}
	if sel != decomp.Even && sel != decomp.Odd && sel != decomp.All {
		panic(fmt.Sprintf("halo: invalid parity selection %v", sel))
	}
	if starting {
		if h.active {
			panic("halo: an exchange is already in flight on this Halo")
		}
		h.active, h.pending, h.adjoint = true, sel, adjoint
		return
	}
	if !h.active || h.pending != sel || h.adjoint != adjoint {
		panic("halo: Finish does not match the exchange started")
	}
	h.active = false
}

// Exchange fills the halo cells of selection sel of f (Start then Finish).
func (h *Halo[T]) Exchange(f []T, sel decomp.Parity) {
	h.Start(f, sel)
	h.Finish(f, sel)
}

// Start packs the sites the peers need, posts the messages and fills the
// halo cells whose sites are this rank's own.
func (h *Halo[T]) Start(f []T, sel decomp.Parity) {
	h.check(f, sel, true, false)
	n := h.n
	for i := range h.remote {
		pr := &h.remote[i]
		lo, hi := pr.p.SendRange(sel)
		for _, sg := range pr.segs {
			if sg.in(lo, hi) {
				scale(pr.sendBuf[sg.lo*n:sg.hi*n], f[sg.site*n:(sg.site+sg.hi-sg.lo)*n], sg.phase, sg.one)
			}
		}
	}
	h.plans[sel].forward.Start()
	if pr := h.self; pr != nil {
		lo, hi := pr.p.SendRange(sel)
		cell0 := h.volume + pr.p.RecvLo
		for _, sg := range pr.segs {
			if sg.in(lo, hi) {
				scale(f[(cell0+sg.lo)*n:(cell0+sg.hi)*n], f[sg.site*n:(sg.site+sg.hi-sg.lo)*n], sg.phase, sg.one)
			}
		}
	}
}

// scale sets dst = e·src.
func scale[T Elem](dst, src []T, e T, one bool) {
	if one {
		copy(dst, src)
		return
	}
	src = src[:len(dst)]
	if e == -1 {
		for j := range dst {
			dst[j] = -src[j]
		}
		return
	}
	for j := range dst {
		dst[j] = e * src[j]
	}
}

// accumulate adds ē·src to dst, where bar = ē.
func accumulate[T Elem](dst, src []T, bar T, one bool) {
	src = src[:len(dst)]
	switch {
	case one:
		for j := range dst {
			dst[j] += src[j]
		}
	case bar == -1:
		for j := range dst {
			dst[j] -= src[j]
		}
	default:
		for j := range dst {
			dst[j] += bar * src[j]
		}
	}
}

// Finish waits for the messages of Start and stores them in the halo cells.
func (h *Halo[T]) Finish(f []T, sel decomp.Parity) {
	h.check(f, sel, false, false)
	h.plans[sel].forward.Wait()
	n := h.n
	for i := range h.remote {
		pr := &h.remote[i]
		lo, hi := pr.p.RecvRange(sel)
		copy(f[(h.volume+lo)*n:(h.volume+hi)*n], pr.recvBuf[(lo-pr.p.RecvLo)*n:(hi-pr.p.RecvLo)*n])
	}
}

// Adjoint adds the halo cells of selection sel of f to the sites they copy
// and zeroes them (StartAdjoint then FinishAdjoint).
func (h *Halo[T]) Adjoint(f []T, sel decomp.Parity) {
	h.StartAdjoint(f, sel)
	h.FinishAdjoint(f, sel)
}

// StartAdjoint sends the halo cells of selection sel to their owners and adds
// those whose sites are this rank's own; the cells are zeroed.
func (h *Halo[T]) StartAdjoint(f []T, sel decomp.Parity) {
	h.check(f, sel, true, true)
	n := h.n
	for i := range h.remote {
		pr := &h.remote[i]
		lo, hi := pr.p.RecvRange(sel)
		cells := f[(h.volume+lo)*n : (h.volume+hi)*n]
		copy(pr.recvBuf[(lo-pr.p.RecvLo)*n:(hi-pr.p.RecvLo)*n], cells)
		clear(cells)
	}
	h.plans[sel].adjoint.Start()
	if pr := h.self; pr != nil {
		lo, hi := pr.p.SendRange(sel)
		cell0 := h.volume + pr.p.RecvLo
		for _, sg := range pr.segs {
			if sg.in(lo, hi) {
				cells := f[(cell0+sg.lo)*n : (cell0+sg.hi)*n]
				accumulate(f[sg.site*n:(sg.site+sg.hi-sg.lo)*n], cells, sg.bar, sg.one)
				clear(cells)
			}
		}
	}
}

// FinishAdjoint waits for the contributions of StartAdjoint and adds them to
// the local sites.
func (h *Halo[T]) FinishAdjoint(f []T, sel decomp.Parity) {
	h.check(f, sel, false, true)
	h.plans[sel].adjoint.Wait()
	n := h.n
	for i := range h.remote {
		pr := &h.remote[i]
		lo, hi := pr.p.SendRange(sel)
		for _, sg := range pr.segs {
			if sg.in(lo, hi) {
				accumulate(f[sg.site*n:(sg.site+sg.hi-sg.lo)*n], pr.sendBuf[sg.lo*n:sg.hi*n], sg.bar, sg.one)
			}
		}
	}
}
