package dslash

import (
	"fmt"

	"pfmpi/decomp"
	"pfmpi/mpi"
)

// projExchange moves projected half spinors into the halo: for a halo cell
// that the receiving site x reads as its forward neighbour x+μ̂, the owner
// sends ε·P_μ ψ (the projection of the forward hop); for one read as the
// backward neighbour x−μ̂, it sends ε·U_μ†·P_μ ψ, multiplying by its own link,
// so that no link crosses ranks. ε is the boundary phase of the cell. The
// receiver stores the half spinors in halfHalo, one per halo cell, straight
// from the network.
type projExchange struct {
	comm     mpi.Comm
	hn       int          // complex values per half spinor: Ns/2 · Nc
	halfHalo []complex128 // H · hn
	peers    []projPeer   // other ranks
	self     *projPeer    // cells this rank fills itself (twisted boundary, one rank)
	plans    [3]mpi.Exchange
	active   bool
}

type projPeer struct {
	p       *decomp.Peer
	entries []projEntry // aligned with p.Send
	sendBuf []complex128
}

// projEntry is one half spinor to pack; its layout (16 bytes: site at 0,
// mu at 4, fwd at 5, phase at 8) is read by the assembly packing
// (TestProjEntryLayout).
type projEntry struct {
	site  int32
	mu    int8
	fwd   bool    // the receiver reads it as x+μ̂
	phase float64 // boundary phase ε = ±1
}

const tagProj = 200

func newProjExchange(comm mpi.Comm, zone *decomp.Zone, phases []float64, hn int) (*projExchange, error) {
	ly := zone.Layout()
	lat := ly.Lattice()
	nd := lat.NumDims()
	dims, local := lat.Dims(), lat.Local()
	e := &projExchange{comm: comm, hn: hn, halfHalo: make([]complex128, zone.Size()*hn)}
	peers := zone.Peers()
	x := make([]int, nd)
	qc := make([]int, nd)
	for i := range peers {
		dp := &peers[i]
		pp := projPeer{p: dp, entries: make([]projEntry, len(dp.Send))}
		lat.RankCoord(dp.Rank, qc)
		for _, run := range dp.Wraps {
			eps := 1.0
			for mu := 0; mu < nd; mu++ {
				if run.Wrap[mu]%2 != 0 && phases[mu] == -1 {
					eps = -eps
				}
			}
			for k := run.Lo; k < run.Hi; k++ {
				s := int(dp.Send[k])
				ly.GlobalCoord(s, x)
				ent := projEntry{site: int32(s), mu: -1, phase: eps}
				for mu := 0; mu < nd; mu++ {
					// the cell in the receiver's frame
					c := x[mu] + int(run.Wrap[mu])*dims[mu] - qc[mu]*local[mu]
					switch {
					case c >= local[mu]:
						ent.mu, ent.fwd = int8(mu), true
					case c < 0:
						ent.mu, ent.fwd = int8(mu), false
					}
				}
				if ent.mu < 0 {
					return nil, fmt.Errorf("dslash: halo cell of site %d for rank %d is not on a face", s, dp.Rank)
				}
				pp.entries[k] = ent
			}
		}
		if dp.Rank == ly.Rank() {
			e.self = &pp
			continue
		}
		pp.sendBuf = make([]complex128, len(dp.Send)*hn)
		e.peers = append(e.peers, pp)
	}
	for _, sel := range []decomp.Parity{decomp.Even, decomp.Odd, decomp.All} {
		var sends, recvs []mpi.Transfer
		for i := range e.peers {
			pp := &e.peers[i]
			slo, shi := pp.p.SendRange(sel)
			rlo, rhi := pp.p.RecvRange(sel)
			if shi > slo {
				sends = append(sends, mpi.Transfer{Peer: pp.p.Rank, Tag: tagProj + int(sel), Buf: mpi.Bytes(pp.sendBuf[slo*hn : shi*hn])})
			}
			if rhi > rlo {
				recvs = append(recvs, mpi.Transfer{Peer: pp.p.Rank, Tag: tagProj + int(sel), Buf: mpi.Bytes(e.halfHalo[rlo*hn : rhi*hn])})
			}
		}
		e.plans[sel] = comm.NewExchange(sends, recvs)
	}
	return e, nil
}

func (e *projExchange) close() {
	for _, p := range e.plans {
		p.Free()
	}
}
