#!/usr/bin/env bash
# kill -9 of mpirun in the middle of a 2-rank run that checkpoints every 2 steps:
# every rank must be gone within <limit> seconds (the launcher watchdog of
# dist/world.h: Open MPI ranks on one node otherwise train on over shared memory),
# saying so in one line naming its rank and host; no .step_<N>.tmp folder may be
# marked COMPLETE; and --resume auto must continue from the newest complete
# checkpoint to the results of the uninterrupted run (compare_runs --tol 0: bit for
# bit, as in kill_and_resume.sh).
#
#   launcher_killed.sh <limit s> <mpiexec> <bora-train> <compare_runs> <work dir> <reference run> [bora-train args...]
source "$(dirname "$0")/common.sh"
limit=$1 MPIEXEC=$2 TRAIN=$3 COMPARE=$4 work=$5 reference=$6
shift 6
rm -rf "$work"; mkdir -p "$work"; PIDS_DIR=$work
run=$work/run
host=$(hostname)
victim_step=$((3 + RANDOM % 8))   # somewhere in steps 3..10 of 24
# mpirun itself in the background ($! is its pid), each rank's pid in pid.<rank>
# and its output in rank.<rank>.log (mpirun, which forwards it otherwise, dies).
"$MPIEXEC" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np 2 \
  bash -c 'r=$OMPI_COMM_WORLD_RANK; echo $$ > "$0/pid.$r"; exec "$@" >"$0/rank.$r.log" 2>&1' "$PIDS_DIR" "$TRAIN" "$@" \
  --checkpoint_every 2 --run_dir "$run" >"$work/job.log" 2>&1 &
launcher=$!
wait_steps "$run/metrics.jsonl" "$victim_step"
ranks="$(cat "$work/pid.0") $(cat "$work/pid.1")"
kill -9 "$launcher"
start=$(date +%s.%N)
gone=""
for _ in $(seq $(((limit + 30) * 10))); do
  alive=0
  for p in $ranks; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ "$alive" -eq 0 ] && { gone=$(echo "$(date +%s.%N) - $start" | bc); break; }
  sleep 0.1
done
wait "$launcher" 2>/dev/null
if [ -z "$gone" ]; then
  for p in $ranks; do kill -9 "$p" 2>/dev/null; done  # do not leak them
  cat "$work/job.log"
  fail "ranks ($ranks) still running $((limit + 30)) s after kill -9 of mpirun"
fi
echo "---- mpirun killed after $victim_step logged steps; ranks ($ranks) gone ${gone} s later (limit ${limit} s)"
echo "complete checkpoints: $(complete_steps "$run"); tmp folders: $(cd "$run/checkpoints" && ls -d .step_*.tmp 2>/dev/null | tr '\n' ' ')"
[ "$(echo "$gone < $limit" | bc)" -eq 1 ] || fail "the ranks took ${gone} s to exit"
[ ! -f "$run/results.json" ] || fail "the run finished before mpirun was killed (make it longer)"
for tmp in "$run"/checkpoints/.step_*.tmp; do
  [ -e "$tmp" ] || continue
  [ ! -e "$tmp/COMPLETE" ] || fail "$tmp is marked COMPLETE"
done
[ -n "$(complete_steps "$run")" ] || fail "no complete checkpoint before the kill"
# The ranks' own words: one line each, naming rank, host and the launcher's pid
# (a rank may instead end on an error of its own when its peer vanished first).
for r in 0 1; do echo "rank $r: $(tail -n 1 "$work/rank.$r.log")"; done
grep -Eq "bora-train: rank [01] on host $host: error: the launcher \(pid $launcher\) is gone; exiting without writing" \
  "$work"/rank.*.log || fail "no rank said that the launcher (pid $launcher) is gone"

newest=$(complete_steps "$run" | awk '{print $NF}')
mpi 2 "$@" --checkpoint_every 2 --run_dir "$run" --resume auto >"$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "--resume auto after the launcher's death failed"; }
grep -q "resuming from .*$(printf 'step_%08d' "$newest")" "$work/resume.log" ||
  { grep "resuming\|unusable" "$work/resume.log"; fail "did not resume from the newest complete checkpoint (step $newest)"; }
"$COMPARE" --tol 0 "$reference" "$run" || fail "the resumed run differs from the uninterrupted one"
echo "OK: kill -9 of mpirun at step ~$victim_step: ranks gone in ${gone} s, no tmp checkpoint complete, resumed from step $newest bit-identically"
