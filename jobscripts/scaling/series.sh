#!/usr/bin/env bash
# Scaling series: `pfmpi bench -weak` (a fixed number of sites per rank) or
# `pfmpi bench -strong` (a fixed lattice) over rank counts, appended to a CSV;
# then the efficiency table and PNG.
#
#   series.sh weak|strong OUT.csv [RANKS…]      default ranks: 1 2
#
# Environment:
#   PFMPI    the binary (default: pfmpi on PATH); build with -tags mpi for
#            LAUNCH=mpirun or srun
#   LAUNCH   inprocess (-ranks N in one process, GOMAXPROCS=N), mpirun (one
#            process per rank, GOMAXPROCS=1, bound to cores) or srun (inside
#            a Slurm allocation: srun --mpi=pmix, one core per rank)
#   REPEATS  timed repetitions (default 5)
#   ROUNDS   times the whole series runs, rank counts interleaved (default 3;
#            the report keeps the fastest: on shared nodes the others time
#            the neighbours too)
#   SPECS    the series, one "group size ops" per line: sites per rank (weak)
#            or the lattice (strong); defaults below
#
# Every rank runs GOMAXPROCS=1 (mpirun/srun): weak scaling per core. The
# one-rank points are the reference of every efficiency, so keep 1 in RANKS.
set -euo pipefail
series=${1:?usage: series.sh weak|strong OUT.csv [RANKS…]}
out=${2:?usage: series.sh weak|strong OUT.csv [RANKS…]}
shift 2
case $series in
weak) default="u1 256x256 dslash,cg
u1 64x64 halo
u1 512x512 halo
u1 32x32 hmc
su3 64x64 dslash,cg,hmc
su3 8x8x8x8 dslash,cg,hmc
u1 16x16 train_step,train_replicas" ;;
strong) default="u1 512x512 dslash,cg
u1 64x64 hmc
su3 128x128 dslash,cg,hmc
su3 8x8x8x16 dslash,cg,hmc
u1 16x16 train_step,train_replicas" ;;
*) echo "series.sh: the first argument is weak or strong" >&2; exit 2 ;;
esac
ranks=${*:-1 2}
pfmpi=${PFMPI:-pfmpi}
launch=${LAUNCH:-inprocess}
repeats=${REPEATS:-5}
rounds=${ROUNDS:-3}
specs=${SPECS:-$default}

export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
for round in $(seq "$rounds"); do
for n in $ranks; do
	while read -r group size ops; do
		[ -z "$group" ] && continue
		args=(bench "-$series" "$size" -group "$group" -ops "$ops" -repeats "$repeats" -csv "$out")
		echo "== round $round, $series, $n rank(s), $launch: $group $size $ops" >&2
		case $launch in
		inprocess) GOMAXPROCS=$n "$pfmpi" "${args[@]}" -ranks "$n" </dev/null ;;
		mpirun)
			over=()
			[ "$n" -gt "$(nproc)" ] && over=(--oversubscribe)
			GOMAXPROCS=1 mpirun -n "$n" "${over[@]}" --bind-to core -x GOMAXPROCS "$pfmpi" "${args[@]}" </dev/null ;;
		srun) GOMAXPROCS=1 srun --mpi=pmix -n "$n" --cpus-per-task=1 --cpu-bind=cores "$pfmpi" "${args[@]}" </dev/null ;;
		*) echo "LAUNCH=$launch: use inprocess, mpirun or srun" >&2; exit 2 ;;
		esac
	done <<<"$specs"
done
done
"$pfmpi" bench -report -png "${out%.csv}.png" "$out"
