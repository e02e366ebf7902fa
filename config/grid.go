package config

import (
	"fmt"
	"strings"
)

// Grid is the process grid of [parallel]: explicit extents, or Auto.
type Grid struct {
	Auto bool
	Dims []int
}

// UnmarshalTOML accepts "auto" or an array of positive integers.
func (g *Grid) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if v != "auto" {
			return fmt.Errorf("grid = %q: give \"auto\" or an array of integers such as [2, 1]", v)
		}
		*g = Grid{Auto: true}
		return nil
	case []any:
		dims := make([]int, len(v))
		for i, e := range v {
			n, ok := e.(int64)
			if !ok {
				return fmt.Errorf("grid[%d] = %v is not an integer: give \"auto\" or an array of integers such as [2, 1]", i, e)
			}
			if n < 1 {
				return fmt.Errorf("grid[%d] = %d: process-grid entries must be ≥ 1", i, n)
			}
			dims[i] = int(n)
		}
		*g = Grid{Dims: dims}
		return nil
	}
	return fmt.Errorf("grid = %v: give \"auto\" or an array of integers such as [2, 1]", v)
}

// MarshalTOML writes "auto" or the array.
func (g Grid) MarshalTOML() ([]byte, error) { return []byte(g.String()), nil }

// String is the grid as a TOML value.
func (g Grid) String() string {
	if g.Auto {
		return `"auto"`
	}
	s := make([]string, len(g.Dims))
	for i, d := range g.Dims {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
