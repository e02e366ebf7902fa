#!/bin/sh
# Trains and samples the float64 and float32 models one after the other
# (same seed, steps and architecture) and prints their summaries.
#   sh experiments/float32-l8/run.sh [pfmpi binary]
set -e
pfmpi=${1:-pfmpi}
here=$(dirname "$0")
logs=out/float32-l8
mkdir -p "$logs"
for p in float64 float32; do
	/usr/bin/time -v "$pfmpi" run "$here/$p.toml" > "$logs/$p.log" 2> "$logs/$p.time" || { echo "$p failed: see $logs/$p.log"; exit 1; }
	echo "== $p"; grep -E "train summary|ess_joint|ess_marginal|acceptance  |plaquette  " "$logs/$p.log" || true
	grep -E "Elapsed|User time|System time|Maximum resident" "$logs/$p.time"
done
