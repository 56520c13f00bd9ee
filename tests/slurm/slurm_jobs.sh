#!/usr/bin/env bash
# The project's sbatch scripts on a real (throwaway, single-node) Slurm: starts
# munged + slurmctld + slurmd (tests/slurm/cluster.sh), submits one scenario,
# checks its results, stops the daemons by PID (always: an EXIT trap).
#
#   slurm_jobs.sh <scenario> <scratch dir>
#     train     slurm/train.sbatch on 2 tasks = a plain `mpirun -np 2` run (compare_runs)
#     array     slurm/sweep-array.sbatch, 3 elements (taus 0, 10, inf), then bora-report:
#               Table 1 has 3 rows, each tau = a plain single run (compare_runs)
#     preempt   slurm/train.sbatch sent SIGUSR1 (`scancel --signal=USR1 --batch`, what
#               --signal=B:USR1@N does) mid-run: checkpoint, exit 75, requeue, resume;
#               ends with the adapters of an uninterrupted run (compare_runs)
#     early     SIGUSR1 as the job starts (before bora-train can checkpoint): still requeued
#     groups    slurm/sweep-groups.sbatch on 4 tasks: 2 groups (taus 0, 10) of 2 ranks
#     srunkill  kill -9 of srun inside a running train.sbatch (2 ranks, checkpoint every
#               2 steps): both ranks gone within 30 s, no .step_<N>.tmp marked
#               COMPLETE, and a --resume auto run from what is left ends with the
#               adapters of an uninterrupted run (compare_runs)
#
# Environment (set by tests/slurm/CMakeLists.txt): BORA_SOURCE (repository),
# BORA_BIN (bora-train, bora-report), COMPARE_RUNS, FX (the dist fixture: model/,
# data/), MPIEXEC. A daemon that does not start FAILS the test (CI runs it).
set -euo pipefail
scenario=$1 scratch=$2
: "${BORA_SOURCE:?} ${BORA_BIN:?} ${COMPARE_RUNS:?} ${FX:?} ${MPIEXEC:=mpirun}"
source "$BORA_SOURCE/tests/slurm/cluster.sh"
source "$BORA_SOURCE/tests/common/tiny_run.sh"
trap slurm_cluster_stop EXIT
scenario_env "slurm_jobs $scenario"

# A clean slate: a previous run's folders would be resumed, or fool the waits below.
rm -rf "$scratch"
mkdir -p "$scratch"
slurm_cluster_start "$scratch/cluster" 4 || fail "the test Slurm did not start (log tails above)"
out=$scratch/runs
mkdir -p "$out"

# The tiny run of tests/dist, as a config file for the sweep scripts.
steps=${STEPS:-24}
{ tiny_run_ini "$FX" "$steps"; printf 'eval_every = 12\nreplica_check_every = 4\n'; } >"$scratch/tiny.ini"

# A reference run outside Slurm: mpirun -np <np> bora-train <args>.
reference() {
  local np=$1 dir=$2; shift 2
  [ -f "$dir/results.json" ] && return 0
  say "reference: mpirun -np $np -> $dir"
  "$MPIEXEC" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np "$np" \
    "$BORA_BIN/bora-train" --config "$scratch/tiny.ini" --run_dir "$dir" "$@" >"$dir.log" 2>&1 ||
    { tail -20 "$dir.log"; fail "reference run $dir failed"; }
}

# Submits and prints the job id (sbatch --parsable; an array gives "id").
submit() { sbatch --parsable "$@"; }

# Waits for a job (all array elements) to leave the queue; fails unless COMPLETED.
expect_completed() {
  local id=$1 timeout=$2 state
  state=$(slurm_wait_job "$id" "$timeout") || fail "job $id did not end within $timeout s"
  [ "$state" = COMPLETED ] || { tail -30 "$scratch"/*"$id"*.out 2>/dev/null || true; fail "job $id ended $state (exit $(slurm_job_field "$id" ExitCode))"; }
}

# Waits (60 s at most) until <metrics.jsonl> logs <n> training steps while job <id>
# is queued, and sets n to the count; fails if the job ends first.
#   wait_for_steps <metrics.jsonl> <n> <id> <what the job must not end before>
wait_for_steps() {
  local metrics=$1 want=$2 id=$3 before=$4
  for _ in $(seq 600); do
    n=$(grep -c '"step":[0-9]*,"epoch"' "$metrics" 2>/dev/null || true)
    [ "${n:-0}" -ge "$want" ] && return 0
    [ -n "$(squeue -h -j "$id")" ] || fail "job $id ended before $before (make STEPS larger)"
    sleep 0.1
  done
}


case "$scenario" in
train)
  reference 2 "$out/ref_np2" --tau 10
  id=$(submit -n 2 -J slurm-train -o "$scratch/%x-%j.out" --chdir "$scratch" \
       "--export=ALL,BORA_CONFIG=$scratch/tiny.ini,BORA_RUN_DIR=$out/slurm_np2" \
       "$BORA_SOURCE/slurm/train.sbatch" --tau 10)
  say "submitted slurm/train.sbatch -n 2 as job $id"
  expect_completed "$id" 240
  grep -q "2 rank(s)" "$scratch/slurm-train-$id.out" || fail "the job log does not show 2 ranks"
  [ -f "$out/slurm_np2/results.json" ] || fail "no results.json in $out/slurm_np2"
  [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ranks"])' "$out/slurm_np2/results.json")" = 2 ] ||
    fail "results.json does not record 2 ranks"
  same "$out/ref_np2" "$out/slurm_np2"
  ;;
array)
  printf 'taus = 0, 10, inf\nconfig = %s\n' "$scratch/tiny.ini" >"$scratch/sweep.ini"
  for tau in 0 10 inf; do reference 1 "$out/ref_tau_$tau" --tau "$tau"; done
  id=$(submit --array=0-2 -n 1 -J slurm-array -o "$scratch/%x-%A_%a.out" --chdir "$scratch" \
       "--export=ALL,BORA_SWEEP=$scratch/sweep.ini,BORA_OUT=$out/sweep" "$BORA_SOURCE/slurm/sweep-array.sbatch")
  say "submitted slurm/sweep-array.sbatch --array=0-2 as job $id"
  expect_completed "$id" 300
  for tau in 0 10 inf; do same "$out/ref_tau_$tau" "$out/sweep/tau_$tau"; done
  "$BORA_BIN/bora-report" --runs "$out/sweep/tau_0,$out/sweep/tau_10,$out/sweep/tau_inf" --out "$out/sweep/report" \
    --plots false >"$scratch/report.txt" 2>&1 || { cat "$scratch/report.txt"; fail "bora-report failed"; }
  rows=$(($(wc -l <"$out/sweep/report/table1.csv") - 1))
  cat "$out/sweep/report/table1.md"
  [ "$rows" -eq 3 ] || fail "Table 1 has $rows rows, expected 3"
  # The same sweep pruned (prune = asha, judged from rung 1): the elements share one
  # leaderboard, and element i trains the i-th tau of the pruning order (10, 0, inf).
  printf 'taus = 0, 10, inf\nconfig = %s\nprune = asha\nprune_min_rungs = 1\n' "$scratch/tiny.ini" >"$scratch/pruned.ini"
  id=$(submit --array=0-2 -n 1 -J slurm-pruned -o "$scratch/%x-%A_%a.out" --chdir "$scratch" \
       "--export=ALL,BORA_SWEEP=$scratch/pruned.ini,BORA_OUT=$out/pruned" "$BORA_SOURCE/slurm/sweep-array.sbatch")
  say "submitted the pruned sweep-array.sbatch --array=0-2 as job $id"
  expect_completed "$id" 300
  k=0
  for tau in 10 0 inf; do
    grep -q "element $k of 3: tau = $tau -> " "$scratch/slurm-pruned-${id}_$k.out" ||
      { cat "$scratch/slurm-pruned-${id}_$k.out"; fail "element $k did not train tau = $tau (the pruning order)"; }
    [ -f "$out/pruned/tau_$tau/results.json" ] || fail "the pruned sweep's tau = $tau has no results.json"
    k=$((k + 1))
  done
  python3 - "$out/pruned" <<'PY' || fail "the leaderboard and the runs' results disagree"
import json, sys
d = sys.argv[1]
board = json.load(open(d + "/leaderboard.json"))["runs"]
assert sorted(board) == ["tau_0", "tau_10", "tau_inf"], sorted(board)
for name, r in board.items():
    res = json.load(open("%s/%s/results.json" % (d, name)))
    assert "1" in r["rungs"], (name, r)
    assert (r["pruned"] or {}).get("rung") == (res["pruned"] or {}).get("rung"), (name, r["pruned"], res["pruned"])
    print(name, "rungs", sorted(r["rungs"]), "pruned", r["pruned"])
PY
  ;;
preempt)
  # Long enough to be caught mid-run; the reference runs the same steps uninterrupted.
  reference 2 "$out/ref_long" --tau 10
  id=$(submit -n 2 -J slurm-preempt -o "$scratch/%x-%j.out" --chdir "$scratch" \
       "--export=ALL,BORA_CONFIG=$scratch/tiny.ini,BORA_RUN_DIR=$out/preempted" \
       "$BORA_SOURCE/slurm/train.sbatch" --tau 10)
  log=$scratch/slurm-preempt-$id.out
  say "submitted slurm/train.sbatch -n 2 as job $id; waiting for its first steps"
  wait_for_steps "$out/preempted/metrics.jsonl" 3 "$id" "it could be signalled"
  say "after ${n:-0} logged steps: scancel --signal=USR1 --batch $id"
  scancel --signal=USR1 --batch "$id"
  # The script requeues on exit 75; Slurm then holds the job for 2 minutes
  # (BeginTime = requeue + 120 s, Slurm's own delay). Wait for the requeue and for
  # the old steps' sockets (pmix, stepd) to be cleaned up, then start it now.
  for _ in $(seq 300); do
    [ "$(slurm_job_field "$id" Restarts)" = 1 ] && [ "$(slurm_job_field "$id" JobState)" = PENDING ] && break
    [ -n "$(squeue -h -j "$id")" ] || break
    sleep 0.2
  done
  [ "$(slurm_job_field "$id" Restarts)" = 1 ] || { cat "$log"; fail "job $id was not requeued (Restarts=$(slurm_job_field "$id" Restarts), state $(slurm_job_field "$id" JobState))"; }
  grep -q "exit code 75" "$log" || { cat "$log"; fail "the step did not end with 75"; }
  [ -d "$out/preempted/checkpoints" ] || fail "no checkpoints/ in the preempted run"
  [ -f "$out/preempted/results.json" ] && fail "the preempted run finished before the signal took effect (make STEPS larger)"
  say "requeued (exit 75, checkpoint in $out/preempted/checkpoints); releasing the 2-minute hold"
  spool=$SLURM_SCRATCH/spool
  for _ in $(seq 100); do compgen -G "$spool/*[._]$id.*" >/dev/null || break; sleep 0.1; done
  scontrol update JobId="$id" StartTime=now
  expect_completed "$id" 240
  cat "$log"
  grep -q "run 1:" "$log" || fail "no second run in the job log"
  grep -Eq '"event": ?"resume"' "$out/preempted/metrics.jsonl" || fail "metrics.jsonl has no resume event"
  same "$out/ref_long" "$out/preempted"
  ;;
early)
  # SIGUSR1 at the very start, before bora-train has its handler (or just after):
  # either way the job must be requeued, not lost.
  id=$(submit -n 2 -J slurm-early -o "$scratch/%x-%j.out" --chdir "$scratch" \
       "--export=ALL,BORA_CONFIG=$scratch/tiny.ini,BORA_RUN_DIR=$out/early" \
       "$BORA_SOURCE/slurm/train.sbatch" --tau 10)
  log=$scratch/slurm-early-$id.out
  for _ in $(seq 300); do grep -q "step: srun" "$log" 2>/dev/null && break; sleep 0.1; done
  scancel --signal=USR1 --batch "$id"
  for _ in $(seq 300); do
    [ "$(slurm_job_field "$id" Restarts)" = 1 ] && break
    [ -n "$(squeue -h -j "$id")" ] || break
    sleep 0.2
  done
  cat "$log"
  [ "$(slurm_job_field "$id" Restarts)" = 1 ] || fail "job $id was not requeued after an early SIGUSR1 (state $(slurm_job_field "$id" JobState))"
  grep -Eq "requeueing" "$log" || fail "no requeue in the job log"
  scancel "$id"
  ;;
groups)
  printf 'taus = 0,10\nconfig = %s\n' "$scratch/tiny.ini" >"$scratch/sweep2.ini"
  for tau in 0 10; do reference 2 "$out/ref2_tau_$tau" --tau "$tau"; done
  id=$(submit -n 4 -J slurm-groups -o "$scratch/%x-%j.out" --chdir "$scratch" \
       "--export=ALL,BORA_SWEEP=$scratch/sweep2.ini,BORA_OUT=$out/groups" "$BORA_SOURCE/slurm/sweep-groups.sbatch")
  say "submitted slurm/sweep-groups.sbatch -n 4 as job $id"
  expect_completed "$id" 300
  for tau in 0 10; do same "$out/ref2_tau_$tau" "$out/groups/tau_$tau"; done
  [ -f "$out/groups/report/table1.csv" ] || fail "no report written by the job"
  ;;
srunkill)
  reference 2 "$out/ref_long" --tau 10
  run=$out/srunkill
  id=$(submit -n 2 -J slurm-srunkill -o "$scratch/%x-%j.out" --chdir "$scratch" \
       "--export=ALL,BORA_CONFIG=$scratch/tiny.ini,BORA_RUN_DIR=$run" \
       "$BORA_SOURCE/slurm/train.sbatch" --tau 10 --checkpoint_every 2)
  log=$scratch/slurm-srunkill-$id.out
  say "submitted slurm/train.sbatch -n 2 as job $id; waiting for its first steps"
  wait_for_steps "$run/metrics.jsonl" 5 "$id" "srun could be killed"
  # This job's srun and ranks, found by their unique run folder (killed by pid).
  srun_pid=$(ps -eo pid=,args= | awk -v r="--run_dir $run " '$2 ~ /srun$/ && index($0 " ", r) {print $1}' | head -1)
  ranks=$(ps -eo pid=,args= | awk -v r="--run_dir $run " '$2 ~ /bora-train$/ && index($0 " ", r) {print $1}' | tr '\n' ' ')
  [ -n "$srun_pid" ] && [ -n "$ranks" ] || { ps -eo pid,ppid,args | grep -v grep | grep -e srun -e bora-train; fail "cannot find srun or the ranks"; }
  say "after ${n:-0} logged steps: kill -9 of srun (pid $srun_pid); ranks: $ranks"
  kill -9 "$srun_pid"
  start=$(date +%s.%N)
  gone=""
  for _ in $(seq 900); do
    alive=0
    for p in $ranks; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && { gone=$(echo "$(date +%s.%N) - $start" | bc); break; }
    sleep 0.1
  done
  [ -n "$gone" ] || { for p in $ranks; do kill -9 "$p" 2>/dev/null; done; cat "$log"; fail "ranks still running 90 s after kill -9 of srun"; }
  slurm_wait_job "$id" 120 >/dev/null || true
  cat "$log"
  say "ranks gone ${gone} s after kill -9 of srun; job $id ended $(slurm_job_field "$id" JobState) (exit $(slurm_job_field "$id" ExitCode)); complete checkpoints: $(ls "$run/checkpoints" | tr '\n' ' ')"
  [ "$(echo "$gone < 30" | bc)" -eq 1 ] || fail "the ranks took ${gone} s to exit after srun was killed"
  for tmp in "$run"/checkpoints/.step_*.tmp; do
    [ -e "$tmp" ] || continue
    [ ! -e "$tmp/COMPLETE" ] || fail "$tmp is marked COMPLETE"
  done
  [ -f "$run/results.json" ] && fail "the run finished before srun was killed (make STEPS larger)"
  reference 2 "$run" --tau 10 --checkpoint_every 2 --resume auto
  grep -q "resuming from" "$run.log" || { cat "$run.log"; fail "the run after the kill did not resume from a checkpoint"; }
  same "$out/ref_long" "$run"
  ;;
*) fail "unknown scenario '$scenario'" ;;
esac
say "OK"
