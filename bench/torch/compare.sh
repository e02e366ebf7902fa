#!/usr/bin/env bash
# Times a training step of pfmpi and of its PyTorch twin (twin.py) on the
# same core, one after the other, for the reference model of
# docs/performance.md: float64, float32 and the unpreconditioned variant.
#
#   bench/torch/compare.sh              # core 1, 10 timed steps each
#   CORE=0 STEPS=20 bench/torch/compare.sh
#
# Needs Debian's python3-torch (apt-get install python3-torch) and, for a
# fair float64 baseline, an optimised BLAS behind it (apt-get install
# libopenblas0-pthread: Debian's default is the reference BLAS, with which
# PyTorch's float64 convolutions run about five times slower). Not part of
# the tests or CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"
core=${CORE:-1}
steps=${STEPS:-10}
warmup=${WARMUP:-2}
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
	echo "compare.sh: $py cannot import torch; apt-get install python3-torch" >&2
	exit 1
fi
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
out=$(mktemp -d)
bin="$out/pfmpi"
go build -o "$bin" ./cmd/pfmpi

echo "core $core, $steps timed steps after $warmup; PyTorch $("$py" -c 'import torch; print(torch.__version__)') with BLAS $blas"
printf '%-26s %12s %12s %8s %10s %10s\n' case "pfmpi s/step" "twin s/step" ratio "pfmpi MiB" "twin MiB"
run() { # name file precision twin-flags…
	local name=$1 file=$2 prec=$3
	shift 3
	GOMAXPROCS=1 taskset -c "$core" "$bin" bench -train "$file" -precision "$prec" -steps "$steps" -warmup "$warmup" -json >"$out/$name.json"
	local params
	params=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["params"])' "$out/$name.json")
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c "$core" "$py" bench/torch/twin.py --precision "$prec" \
		--steps "$steps" --warmup "$warmup" --threads 1 --expect-params "$params" "$@" >"$out/$name.twin"
	"$py" - "$out/$name.json" "$out/$name.twin" "$name" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
m = re.search(r"median ([0-9.]+) s/step .* peak RSS ([0-9]+) MiB", t)
ts, trss = float(m.group(1)), float(m.group(2))
print(f"{sys.argv[3]:<26} {r['median_seconds']:12.3f} {ts:12.3f} {ts / r['median_seconds']:7.2f}× {r['peak_rss_mib']:10.0f} {trss:10.0f}")
PY
}
common=(--lattice 8 --batch 64 --gauge-layers 8 --gauge-hidden 32,32 --gauge-dilations 1,2,3
	--ncp-mixtures 6 --pf-layers 8 --n-pt 6 --pt-hidden 2 --pf-context-hidden 16 --hasenbusch 0.001,0.01,0.05)
run "eo+3 Hasenbusch, float64" bench/torch/reference.toml float64 "${common[@]}" --precondition eo --pf-partition rows
run "eo+3 Hasenbusch, float32" bench/torch/reference.toml float32 "${common[@]}" --precondition eo --pf-partition rows
run "unpreconditioned, float64" bench/torch/reference-none.toml float64 "${common[@]}" --precondition none --pf-partition checkerboard
echo "pfmpi's breakdowns and the twin's logs: $out"
