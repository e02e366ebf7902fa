#!/usr/bin/env bash
# Runs the gauge-bridge experiments (issue 18) and draws their curves:
#   experiments/gauge-bridges/run.sh [NAME...]   (default: every *.toml here)
# Outputs go to experiments/gauge-bridges/out/; a finished run is not redone
# (delete its out/NAME to rerun it).
set -euo pipefail
cd "$(dirname "$0")"
root=../..
go build -o out/pfmpi "$root/cmd/pfmpi"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in *.toml; do names+=("${f%.toml}"); done
fi
for n in "${names[@]}"; do
	/usr/bin/time -f "$n: %e s wall, %U s user" out/pfmpi run "$n.toml" >"out/$n.log" 2>&1 || { tail "out/$n.log"; exit 1; }
	grep -A3 "sample summary" "out/$n.log" | tr -s ' ' | paste -sd ' '
	tail -1 "out/$n.log"
done
plot() { go run ./plot "$@" 2>/dev/null || true; }
l4=("2 marginal layers, no bridges=out/su3-l4-plain2" "2 marginal layers with bridges=out/su3-l4-bridge2"
	"16 layers=out/su3-l4-bridge16" "16 layers, marginal ones first=out/su3-l4-bridge16-staged")
l8=("SU(3) β = 6, 2 marginal layers, no bridges=out/su3-l8-plain2" "SU(3) β = 6, 2 marginal layers with bridges=out/su3-l8-bridge2"
	"U(1) β = 2, 2 marginal layers, no bridges=out/u1-l8-plain2" "U(1) β = 2, 2 marginal layers with bridges=out/u1-l8-bridge2")
plot -o su3-l4-training.png -title "SU(3), β = 6, 4 × 4: training KL" "${l4[@]}"
plot -o su3-l4-ess.png -ess -title "SU(3), β = 6, 4 × 4: training-time ESS (1024 samples)" "${l4[@]}"
plot -o l8-training.png -title "8 × 8: training KL" "${l8[@]}"
plot -o l8-ess.png -ess -title "8 × 8: training-time ESS (1024 samples)" "${l8[@]}"
