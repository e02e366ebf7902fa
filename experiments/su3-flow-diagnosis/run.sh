#!/usr/bin/env bash
# Trains the L = 4 models of the diagnosis (issue 18) and diagnoses them:
#   experiments/su3-flow-diagnosis/run.sh [NAME...]   (default: all l4-*.toml)
# Run from anywhere; outputs go to experiments/su3-flow-diagnosis/out/.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
go build -o out/pfmpi "$root/cmd/pfmpi"
go build -o out/diagnose ./diagnose
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in l4-*.toml; do names+=("${f%.toml}"); done
fi
for n in "${names[@]}"; do
	/usr/bin/time -f "$n: %e s wall, %U s user" out/pfmpi run "$n.toml" >"out/$n.log" 2>&1 || { tail "out/$n.log"; exit 1; }
	tail -1 "out/$n.log"
	out/diagnose -n 8192 -json "out/$n.json" "out/$n" 2>/dev/null | tee "out/$n.diag"
done
