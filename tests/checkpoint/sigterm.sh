#!/usr/bin/env bash
# SIGTERM to one rank of a 2-rank run (Slurm signals every task; one is enough: the
# flag travels in the step's all-reduce): the job must end within <grace> seconds
# with exit code 75 and a complete checkpoint of the step it stopped at, which a
# --resume auto run then loads and finishes.
#
#   sigterm.sh <grace seconds> <mpiexec> <bora-train> <work dir> [bora-train args...]
source "$(dirname "$0")/common.sh"
grace=$1 MPIEXEC=$2 TRAIN=$3 work=$4
shift 4
rm -rf "$work"; mkdir -p "$work"; PIDS_DIR=$work
run="$work/run"
mpi 2 "$@" --run_dir "$run" >"$work/job.log" 2>&1 &
job=$!
wait_steps "$run/metrics.jsonl" 3
start=$(date +%s.%N)
kill -TERM "$(cat "$work/pid.1")"
for _ in $(seq $((grace * 10 + 300))); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
kill -0 "$job" 2>/dev/null && { kill -9 "$job"; cat "$work/job.log"; fail "still running long after SIGTERM"; }
wait "$job"; rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
tail -n 5 "$work/job.log"
echo "---- exit code $rc, ${elapsed} s after SIGTERM (grace ${grace} s); checkpoints: $(complete_steps "$run")"
[ "$rc" -eq 75 ] || fail "exit code $rc, expected 75"
[ "$(echo "$elapsed < $grace" | bc)" -eq 1 ] || fail "took longer than the grace period"
last=$(complete_steps "$run" | awk '{print $NF}')
[ -n "$last" ] || fail "no complete checkpoint"
grep -q "stopping at step $last for SIGTERM/SIGUSR1" "$work/job.log" || fail "the log does not name step $last"
mpi 2 "$@" --run_dir "$run" --resume auto >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "the resumed run failed"; }
grep -q "resuming from .*$(printf 'step_%08d' "$last")" "$work/resume.log" || fail "did not resume from step $last"
[ -f "$run/results.json" ] || fail "the resumed run wrote no results"
echo "OK: SIGTERM -> checkpoint of step $last and exit 75 in ${elapsed} s; resumed to the end"
