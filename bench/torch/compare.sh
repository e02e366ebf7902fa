#!/usr/bin/env bash
# Times a training step of pfmpi and of its PyTorch twin (twin.py) on the
# same core for the reference model of docs/performance.md: float64,
# float32 and the unpreconditioned variant. Each round times every case with
# both codes, one after the other; the table gives, per case, the median
# over rounds of each code's median step and of their ratio (this machine's
# speed drifts by ±20 % between minutes, so only times taken side by side
# are compared).
#
#   bench/torch/compare.sh              # core 1, 3 rounds of 6 timed steps
#   CORE=0 ROUNDS=5 STEPS=10 bench/torch/compare.sh
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
rounds=${ROUNDS:-3}
steps=${STEPS:-6}
warmup=${WARMUP:-1}
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
	echo "compare.sh: $py cannot import torch; apt-get install python3-torch" >&2
	exit 1
fi
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
out=$(mktemp -d)
bin="$out/pfmpi"
go build -o "$bin" ./cmd/pfmpi

common=(--lattice 8 --batch 64 --gauge-layers 8 --gauge-hidden 32,32 --gauge-dilations 1,2,3
	--ncp-mixtures 6 --pf-layers 8 --n-pt 6 --pt-hidden 2 --pf-context-hidden 16 --hasenbusch 0.001,0.01,0.05)
cases=("eo-f64|bench/torch/reference.toml|float64|--precondition eo --pf-partition rows"
	"eo-f32|bench/torch/reference.toml|float32|--precondition eo --pf-partition rows"
	"none-f64|bench/torch/reference-none.toml|float64|--precondition none --pf-partition checkerboard")
# OpenBLAS names the kernels it chose for this CPU (an unknown CPU gets older
# ones; OPENBLAS_CORETYPE overrides, and compare.sh passes it through).
obcore=$(OPENBLAS_VERBOSE=2 "$py" -c 'import torch; torch.ones(2, 2, dtype=torch.float64) @ torch.ones(2, 2, dtype=torch.float64)' 2>&1 | sed -n 's/^Core: //p' | head -1)
echo "core $core, $rounds round(s) of $steps timed steps after $warmup; PyTorch $("$py" -c 'import torch; print(torch.__version__)') with BLAS $blas (OpenBLAS kernels: ${obcore:-unknown})"
for r in $(seq 1 "$rounds"); do
	for c in "${cases[@]}"; do
		IFS='|' read -r name file prec flags <<<"$c"
		GOMAXPROCS=1 taskset -c "$core" "$bin" bench -train "$file" -precision "$prec" -steps "$steps" -warmup "$warmup" -json >"$out/$name.$r.json"
		params=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["params"])' "$out/$name.$r.json")
		# shellcheck disable=SC2086 # flags are words
		OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c "$core" "$py" bench/torch/twin.py --precision "$prec" \
			--steps "$steps" --warmup "$warmup" --threads 1 --expect-params "$params" "${common[@]}" $flags >"$out/$name.$r.twin"
		echo "round $r: $name done" >&2
	done
done
"$py" - "$out" "$rounds" <<'PY'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
names = {"eo-f64": "even/odd + 3 Hasenbusch, float64", "eo-f32": "even/odd + 3 Hasenbusch, float32",
         "none-f64": "unpreconditioned, float64"}
print(f"{'case':<36} {'pfmpi s/step':>12} {'twin s/step':>12} {'ratio':>7} {'pfmpi MiB':>10} {'twin MiB':>9}")
for name, label in names.items():
    pf, tw, ratio, prss, trss = [], [], [], [], []
    for r in range(1, rounds + 1):
        j = json.load(open(f"{out}/{name}.{r}.json"))
        t = open(f"{out}/{name}.{r}.twin").read()
        m = re.search(r"median ([0-9.]+) s/step .* peak RSS ([0-9]+) MiB", t)
        pf.append(j["median_seconds"]); tw.append(float(m.group(1)))
        ratio.append(tw[-1] / pf[-1]); prss.append(j["peak_rss_mib"]); trss.append(float(m.group(2)))
    med = statistics.median
    print(f"{label:<36} {med(pf):12.3f} {med(tw):12.3f} {med(ratio):6.2f}× {max(prss):10.0f} {max(trss):9.0f}")
PY
echo "pfmpi's breakdowns (JSON) and the twin's logs: $out"
