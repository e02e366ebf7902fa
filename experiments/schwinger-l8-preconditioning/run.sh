#!/bin/sh
# Trains and samples the five targets of Fig. 4 one after the other (same
# seed, budget and architecture), then prints the ESS of each.
#   sh experiments/schwinger-l8-preconditioning/run.sh [pfmpi binary]
set -e
pfmpi=${1:-pfmpi}
# Outputs (and logs) go to out/schwinger-l8-preconditioning/ under the
# current directory.
here=$(dirname "$0")
logs=out/schwinger-l8-preconditioning
mkdir -p "$logs"
for t in none eo eo-h1 eo-h2 eo-h3; do
	"$pfmpi" run "$here/$t.toml" > "$logs/$t.log" 2>&1 || { echo "$t failed: see $logs/$t.log"; exit 1; }
	echo "== $t"; grep -E "train summary|ess_joint|ess_marginal|acceptance  |plaquette  " "$logs/$t.log" || true
done
