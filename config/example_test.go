package config_test

import (
	"fmt"

	"pfmpi/config"
)

func ExampleParse() {
	_, err := config.Parse("run.toml", []byte("[lattice]\ndims = [8, 8]\ngrup = \"su3\"\n"))
	fmt.Println(err)
	cfg, _ := config.Parse("run.toml", []byte("[lattice]\ndims = [8, 8]\n[action]\nbeta = 2.0\n[train]\n"))
	fmt.Println(cfg.Phases(), cfg.Train.Batch, cfg.Parallel.Grid)
	// Output:
	// run.toml:3: unknown key "grup" in [lattice]; did you mean "group"? Keys of [lattice]: dims, group (see pfmpi help config)
	// [train] 64 "auto"
}
