#!/usr/bin/env bash
# kill -9 of one rank of a 2-rank run at a random step, then --resume auto on 2
# ranks: the final adapters and perplexities must equal those of the uninterrupted
# run BIT FOR BIT (compare_runs --tol 0). With micro_batch = 1 and one thread per
# rank, the CPU arithmetic is deterministic, and every piece of state that the next
# step reads (rows, Theta, AdamW moments and step counts, the step, early stopping,
# generator states) is in the checkpoint; the sampler is a function of the step.
#
#   kill_and_resume.sh <mpiexec> <bora-train> <compare_runs> <work dir> <reference run> [bora-train args...]
source "$(dirname "$0")/common.sh"
MPIEXEC=$1 TRAIN=$2 COMPARE=$3 work=$4 reference=$5
shift 5
rm -rf "$work"; mkdir -p "$work"; PIDS_DIR=$work
run="$work/run"
victim_step=$((4 + RANDOM % 15))   # somewhere in steps 4..18 of 24
echo "killing rank 1 once $victim_step steps are logged (checkpoint every 3 steps)"
mpi 2 "$@" --checkpoint_every 3 --run_dir "$run" >"$work/first.log" 2>&1 &
job=$!
wait_steps "$run/metrics.jsonl" "$victim_step"
kill -9 "$(cat "$work/pid.1")"
wait "$job"; rc=$?
echo "first job: exit $rc; complete checkpoints: $(complete_steps "$run")"
[ "$rc" -ne 0 ] || fail "the killed job exited 0"
[ -n "$(complete_steps "$run")" ] || fail "no complete checkpoint before the kill"
[ ! -f "$run/results.json" ] || echo "note: the job finished before the kill took effect"

mpi 2 "$@" --checkpoint_every 3 --run_dir "$run" --resume auto >"$work/second.log" 2>&1 || { cat "$work/second.log"; fail "the resumed job failed"; }
grep -h "resuming from" "$work/second.log"
"$COMPARE" --tol 0 "$reference" "$run" || fail "the resumed run differs from the uninterrupted one"
echo "OK: resumed after kill -9 at step ~$victim_step, bit-identical to the uninterrupted run"
