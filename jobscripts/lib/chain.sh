# Sourced by the pfmpi Slurm job scripts: launch pfmpi on the allocation,
# stop it cleanly before the allocation ends, and resubmit the job script
# until the run is finished.
#
#   pfmpi_chain RUN.toml [pfmpi flags…]
#
# Environment (all optional):
#   PFMPI         the binary (default: bin/pfmpi under the submit directory,
#                 else pfmpi on PATH); build it with -tags mpi
#   LAUNCHER      srun (default: srun --mpi=pmix) or mpirun
#   MARGIN        how long before the end of the allocation pfmpi stops
#                 (default 5m; pfmpi adds twice its longest step)
#   MAX_CHAIN     how many jobs the chain may use (default 20)
#   PFMPI_CHAIN   this job's place in the chain (set by the resubmission)
#
# pfmpi's exit codes decide what happens next:
#   0  the run is finished                      → the chain ends
#   4  stopped with a checkpoint (wall time,    → the job script is
#      signal)                                    submitted again
#   5  stopped because OUTPUT/STOP exists       → the chain ends (you asked)
#   *  an error                                 → the chain ends, the job fails

pfmpi_chain() {
	local run=${1:?pfmpi_chain: give the run file}
	shift
	local bin=${PFMPI:-}
	if [ -z "$bin" ]; then
		if [ -x "${SLURM_SUBMIT_DIR:-.}/bin/pfmpi" ]; then
			bin=${SLURM_SUBMIT_DIR:-.}/bin/pfmpi
		else
			bin=pfmpi
		fi
	fi
	local chain=${PFMPI_CHAIN:-1} max=${MAX_CHAIN:-20}
	# One Go thread per core the task owns: Go would otherwise size its
	# scheduler by the node's cores, not the task's.
	export GOMAXPROCS=${SLURM_CPUS_PER_TASK:-1}
	echo "pfmpi chain: job ${SLURM_JOB_ID:-?} is link $chain of at most $max; $SLURM_NTASKS ranks × GOMAXPROCS $GOMAXPROCS"

	local cmd
	case ${LAUNCHER:-srun} in
	srun) cmd=(srun --mpi=pmix --cpu-bind=cores "$bin" run "$run" -t slurm -margin "${MARGIN:-5m}" "$@") ;;
	mpirun)
		cmd=(mpirun -n "$SLURM_NTASKS" --map-by "ppr:${SLURM_NTASKS_PER_NODE:-1}:node:PE=${SLURM_CPUS_PER_TASK:-1}"
			--bind-to core -x GOMAXPROCS "$bin" run "$run" -t slurm -margin "${MARGIN:-5m}" "$@") ;;
	*)
		echo "pfmpi chain: LAUNCHER=$LAUNCHER: use srun or mpirun" >&2
		return 2
		;;
	esac
	# Slurm's --signal=B:USR1@… reaches this shell: pass it on, and pfmpi
	# checkpoints and stops (exit 4) as it would at the wall-time margin.
	"${cmd[@]}" &
	local pid=$!
	trap 'kill -USR1 "$pid" 2>/dev/null' USR1 TERM
	local code=0
	wait "$pid" || code=$?
	while kill -0 "$pid" 2>/dev/null; do # wait returns early on a trapped signal
		code=0
		wait "$pid" || code=$?
	done
	trap - USR1 TERM

	case $code in
	0) echo "pfmpi chain: the run is finished" ;;
	4)
		if [ "$chain" -ge "$max" ]; then
			echo "pfmpi chain: stopped with a checkpoint, but the chain has used $max jobs (MAX_CHAIN); resubmit by hand to continue" >&2
			return 4
		fi
		# The job's command line: the script and its arguments.
		local -a script
		read -r -a script <<<"$(scontrol show job "$SLURM_JOB_ID" | awk -F= '/ Command=/{print $2; exit}')"
		echo "pfmpi chain: stopped with a checkpoint; submitting link $((chain + 1)): ${script[*]}"
		sbatch --export="ALL,PFMPI_CHAIN=$((chain + 1))" "${script[@]}"
		;;
	5) echo "pfmpi chain: OUTPUT/STOP ended the run; run the job script again to continue it" ;;
	*)
		echo "pfmpi chain: pfmpi failed (exit $code); the chain ends" >&2
		return "$code"
		;;
	esac
}
