package main

import (
	"fmt"
	"slices"

	"pfmpi/config"
	"pfmpi/decomp"
)

// layout is how a run file maps onto a number of ranks.
type layout struct {
	lat      *decomp.Lattice
	ranks    int
	replicas int
	auto     bool // the grid was chosen by decomp.AutoGrid
	oneRank  bool // auto, and the flow needs each lattice on one rank
	evenOdd  bool
}

// resolveLayout checks the file's process grid against the rank count and
// returns the decomposition. Errors point at the key to change.
func resolveLayout(cfg *config.Config, ranks int) (*layout, error) {
	dims := cfg.Lattice.Dims
	eo := cfg.Action.Precondition == "eo" && cfg.Action.Kappa > 0
	ly := &layout{ranks: ranks, evenOdd: eo, auto: cfg.Parallel.Grid.Auto}
	var grid []int
	if ly.auto {
		ly.replicas = max(cfg.Parallel.Replicas, 1)
		if ranks%ly.replicas != 0 {
			return nil, cfg.Errorf("parallel.replicas", "%d replicas do not divide %d ranks; run on a multiple of %d ranks",
				ly.replicas, ranks, ly.replicas)
		}
		if cfg.FlowNeedsOneRank() {
			// Every rank a replica: the flow's layers need whole lattices.
			if cfg.Parallel.Replicas != 0 && ly.replicas != ranks {
				return nil, cfg.Errorf("parallel.replicas", "%d, but the flow needs each lattice on one rank (model.u1_marginal, u1_holonomy or SU(3) string layers), so %d ranks make %d replicas; set replicas = 0 or %d", ly.replicas, ranks, ranks, ranks)
			}
			ly.replicas, ly.oneRank = ranks, true
			grid = slices.Repeat([]int{1}, len(dims))
		} else {
			g, err := decomp.AutoGrid(dims, ranks/ly.replicas, eo)
			if err != nil {
				return nil, cfg.Errorf("parallel.grid", "\"auto\" with %d ranks and %d replicas: %v", ranks, ly.replicas, err)
			}
			grid = g
		}
	} else {
		grid = cfg.Parallel.Grid.Dims
	}
	lat, err := decomp.NewLattice(dims, grid, eo)
	if err != nil {
		return nil, cfg.Errorf("parallel.grid", "%v with lattice.dims = %v: %v", cfg.Parallel.Grid, dims, err)
	}
	ly.lat = lat
	if !ly.auto {
		r, err := lat.Replicas(ranks)
		if err != nil {
			return nil, cfg.Errorf("parallel.grid", "%v: %v", cfg.Parallel.Grid, err)
		}
		if cfg.Parallel.Replicas != 0 && cfg.Parallel.Replicas != r {
			return nil, cfg.Errorf("parallel.replicas", "%d, but %d ranks on grid %v make %d replicas; set replicas = %d, 0, or run on %d ranks",
				cfg.Parallel.Replicas, ranks, grid, r, r, cfg.Parallel.Replicas*lat.DomainSize())
		}
		ly.replicas = r
	}
	if t := cfg.Train; t != nil {
		for _, b := range []struct {
			key string
			n   int
		}{{"train.batch", t.Batch}, {"train.ess_batch", t.ESSBatch}} {
			if b.n%ly.replicas != 0 {
				return nil, cfg.Errorf(b.key, "%d configurations do not split evenly over %d replicas; use a multiple of %d",
					b.n, ly.replicas, ly.replicas)
			}
		}
	}
	return ly, nil
}

// describe writes the layout for people.
func (ly *layout) describe(p func(format string, args ...any)) {
	lat := ly.lat
	how := "from parallel.grid"
	if ly.oneRank {
		how = "auto: the flow needs each lattice on one rank"
	} else if ly.auto {
		how = "auto: least halo surface"
	}
	p("  ranks        %d = %d replica(s) × grid %s (%s)\n", ly.ranks, ly.replicas, times(lat.Grid()), how)
	local := lat.Local()
	v := lat.LocalVolume()
	eo := ""
	if ly.evenOdd {
		eo = fmt.Sprintf("; %d even + %d odd (even/odd preconditioning)", v/2, v/2)
	}
	p("  local        %s = %d sites per rank%s\n", times(local), v, eo)
	surface := 0
	for mu, g := range lat.Grid() {
		if g > 1 {
			surface += 2 * v / local[mu]
		}
	}
	p("  halo         %d face sites per rank exchanged with other ranks (%.0f%% of the local volume)\n",
		surface, 100*float64(surface)/float64(v))
}

func times(x []int) string {
	s := ""
	for i, v := range x {
		if i > 0 {
			s += " × "
		}
		s += fmt.Sprint(v)
	}
	return s
}

// rankTable writes one line per world rank: replica, domain rank, grid
// coordinate, origin and the ranks it exchanges depth-1 halos with (its
// neighbours ±1 along the split directions).
func (ly *layout) rankTable(p func(format string, args ...any)) error {
	lat := ly.lat
	d := lat.DomainSize()
	grid := lat.Grid()
	p("  %-6s %-8s %-7s %-14s %-14s %s\n", "rank", "replica", "domain", "grid coord", "origin", "halo peers (depth 1)")
	for w := 0; w < ly.ranks; w++ {
		l, err := lat.Layout(w % d)
		if err != nil {
			return err
		}
		var peers []int
		for mu, g := range grid {
			if g == 1 {
				continue
			}
			for _, step := range []int{-1, 1} {
				c := l.Coord()
				c[mu] += step
				if r := w/d*d + lat.RankAt(c); !slices.Contains(peers, r) {
					peers = append(peers, r)
				}
			}
		}
		slices.Sort(peers)
		p("  %-6d %-8d %-7d %-14s %-14s %v\n", w, w/d, l.Rank(), fmt.Sprint(l.Coord()), fmt.Sprint(l.Origin()), peers)
	}
	return nil
}
