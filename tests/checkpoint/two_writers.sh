#!/usr/bin/env bash
# One writer per run folder (train/run_lock.h), with real bora-train jobs:
#   1. a second `--resume auto` job started on the folder of a running job exits
#      non-zero within seconds, naming the first one's host, job and pid, and
#      writes nothing; the first completes with the results of an undisturbed run
#      (compare_runs --tol 1e-5 against a reference run of the same arguments);
#   2. a job killed with kill -9 leaves a stale LOCK (its pid is dead): a new
#      `--resume auto` takes it over (a warning naming the old holder), resumes from
#      the newest complete checkpoint and ends with the same results again.
#
#   two_writers.sh <bora-train> <compare_runs> <work dir> [bora-train args...]
source "$(dirname "$0")/common.sh"
TRAIN=$1 COMPARE=$2 work=$3
shift 3
rm -rf "$work"; mkdir -p "$work"
host=$(hostname)

"$TRAIN" "$@" --run_dir "$work/ref" >"$work/ref.log" 2>&1 || { cat "$work/ref.log"; fail "the reference run failed"; }

# ---- 1. a second job on a running job's folder ------------------------------------
run=$work/run
SLURM_JOB_ID=991 "$TRAIN" "$@" --run_dir "$run" >"$work/first.log" 2>&1 &
first=$!
wait_steps "$run/metrics.jsonl" 3
lines_before=$(wc -l <"$run/metrics.jsonl")
start=$(date +%s.%N)
timeout --signal=KILL 60 "$TRAIN" "$@" --run_dir "$run" --resume auto >"$work/second.log" 2>&1; rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
tail -n 1 "$work/second.log"
echo "---- second job: exit code $rc after ${elapsed} s"
kill -0 "$first" 2>/dev/null || fail "the first job ended before the second was refused (make the run longer)"
[ "$rc" -eq 2 ] || { cat "$work/second.log"; fail "the second job exited $rc, expected 2 (ConfigError)"; }
[ "$(echo "$elapsed < 20" | bc)" -eq 1 ] || fail "the refusal took ${elapsed} s"
grep -Eq "error: run folder .* is in use by host $host, job 991, pid $first \(since .*, last heartbeat [0-9]+ s ago\)" \
  "$work/second.log" || fail "the refusal does not name host $host, job 991, pid $first"
[ "$(grep -c 'error:' "$work/second.log")" -eq 1 ] || fail "more than one error line"
wait "$first"; rc=$?
[ "$rc" -eq 0 ] || { cat "$work/first.log"; fail "the first job exited $rc"; }
grep -q '"event":"resume"' "$run/metrics.jsonl" && fail "the second job wrote into metrics.jsonl"
[ "$(head -n "$lines_before" "$run/metrics.jsonl" | grep -c '"step"')" -ge 3 ] || fail "metrics.jsonl lost lines"
[ ! -e "$run/LOCK" ] || fail "the first job left its LOCK behind"
"$COMPARE" --tol 1e-5 "$work/ref" "$run" || fail "the first job's results differ from the reference"

# ---- 2. a killed job's stale lock is taken over -----------------------------------
run=$work/killed
"$TRAIN" "$@" --run_dir "$run" --checkpoint_every 3 >"$work/killed.log" 2>&1 &
victim=$!
wait_steps "$run/metrics.jsonl" 8
kill -9 "$victim"; wait "$victim" 2>/dev/null
[ -f "$run/LOCK" ] || fail "no LOCK left by the killed job"
grep -q "\"pid\":$victim," "$run/LOCK" || fail "the LOCK does not name the killed pid $victim"
echo "killed pid $victim after 8 steps; complete checkpoints: $(complete_steps "$run")"
"$TRAIN" "$@" --run_dir "$run" --checkpoint_every 3 --resume auto >"$work/takeover.log" 2>&1 ||
  { cat "$work/takeover.log"; fail "--resume auto on the killed job's folder failed"; }
grep -E "took over the lock of host $host, job none, pid $victim .*its process $victim on $host is gone" \
  "$work/takeover.log" || { cat "$work/takeover.log"; fail "no takeover warning naming pid $victim"; }
grep -h "resuming from" "$work/takeover.log" || fail "did not resume from a checkpoint"
[ ! -e "$run/LOCK" ] || fail "the resumed job left its LOCK behind"
"$COMPARE" --tol 1e-5 "$work/ref" "$run" || fail "the resumed run differs from the reference"
echo "OK: a second writer refused in ${elapsed} s naming host $host, job 991, pid $first; a kill -9'd job's lock taken over"
