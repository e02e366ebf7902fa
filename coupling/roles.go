package coupling

import (
	"fmt"

	"pfmpi/decomp"
)

// Role is what a gauge coupling layer does to a plaquette.
type Role int8

const (
	// Frozen: the plaquette holds no link the layer moves.
	Frozen Role = iota
	// Active: the plaquette holds the moving link U_μ(x) at its corner x;
	// the layer maps it (U(1): θ_P ↦ h(θ_P); SU(3): W ↦ h(W)).
	Active
	// Passive: the plaquette holds a moving link that is not at its
	// corner; it changes as a side effect (U(1): by a phase; SU(3): by a
	// left factor F = h(W)W† that does not commute with it).
	Passive
)

func (r Role) String() string {
	switch r {
	case Frozen:
		return "frozen"
	case Active:
		return "active"
	case Passive:
		return "passive"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Roles returns the role in gauge coupling layer i (U(1) or SU(3): the
// masks are the same) of the plaquette P_01(x) at every local site x of ly:
// with μ = ⌊i/4⌋ mod 2, ν = 1 − μ, o = i mod 4, the link U_μ(y) moves when
// y_μ − o − 2(y_ν mod 2) ≡ 0 (mod 4); P_01(x) is active when U_μ(x) moves
// and passive when U_μ(x + ν̂) moves.
func Roles(ly *decomp.Layout, i int) ([]Role, error) {
	dims := ly.Lattice().Dims()
	if len(dims) != 2 || dims[0]%4 != 0 || dims[1]%4 != 0 {
		return nil, fmt.Errorf("coupling: gauge layers need a 2D lattice with extents divisible by 4, got %v", dims)
	}
	mu, off := (i/4)%2, i%4
	nu := 1 - mu
	moves := func(y []int) bool { return ((y[mu]-off-2*(y[nu]%2))%4+4)%4 == 0 }
	roles := make([]Role, ly.Volume())
	x, y := make([]int, 2), make([]int, 2)
	for s := range roles {
		ly.GlobalCoord(s, x)
		copy(y, x)
		y[nu] = (x[nu] + 1) % dims[nu]
		switch {
		case moves(x):
			roles[s] = Active
		case moves(y):
			roles[s] = Passive
		}
	}
	return roles, nil
}
