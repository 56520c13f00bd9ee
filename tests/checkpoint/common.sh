# Shared by the checkpoint shell tests: sourced, not run.
#   $MPIEXEC, $TRAIN (bora-train), $COMPARE (compare_runs) and the bora-train
#   arguments of the reference run in $ARGS (an array) come from the caller.
set -uo pipefail
mpi() {  # mpi <np> <args...>: bora-train under mpirun, pids of the ranks in $PIDS_DIR
  local np=$1; shift
  "$MPIEXEC" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np "$np" \
    bash -c 'echo $$ > "$0/pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$PIDS_DIR" "$TRAIN" "$@"
}
fail() { echo "FAIL: $*"; exit 1; }
# Waits until <metrics file> has logged <n> steps (at most 120 s).
wait_steps() {
  local file=$1 n=$2 steps=0
  for _ in $(seq 1200); do
    steps=$(grep -c '"step":[0-9]*,"epoch"' "$file" 2>/dev/null || true)
    [ "${steps:-0}" -ge "$n" ] && return 0
    sleep 0.1
  done
  fail "$file did not reach $n steps"
}
complete_steps() { ls "$1/checkpoints" 2>/dev/null | sed -n 's/^step_0*\([0-9][0-9]*\)$/\1/p' |
  while read -r s; do [ -f "$1/checkpoints/$(printf 'step_%08d' "$s")/COMPLETE" ] && echo "$s"; done | sort -n | tr '\n' ' '; }
