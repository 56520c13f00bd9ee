#!/usr/bin/env bash
# bora-train across the hosts of a cluster built on this machine
# (tests/cluster/hosts.sh: one network namespace and host name per host, one
# bridge, Open MPI over TCP between hosts, Slurm with one slurmd per host). One
# scenario per call; the cluster is always torn down (an EXIT trap).
#
#   cluster_tests.sh <scenario> <scratch dir>
#     reference        plain `mpirun -np 4` (tau 10) and `-np 2` (tau 0) on this machine:
#                      what every cluster run must equal (compare_runs, 1e-5)
#     mpirun_2host     mpirun -np 4 over 2 hosts (2 ranks each, TCP between them): the
#                      ranks run on h0 and h1 (hostname per rank, mpirun's map, bytes
#                      through host 1's link) and the result = the reference
#     slurm_N2/N3      slurm/train.sbatch -N 2 -n 4 (-N 3 -n 3): every node runs a rank
#                      ("rank i of n on h<j>" lines) and the result = the reference
#     slurm_sweep      slurm/sweep-array.sbatch, taus 0 and 10, each element -N 2 -n 2
#     degraded_link    the 2-host run again with host 1's link shaped (netem if the
#                      kernel has it, else tbf: low rate, small burst, short queue);
#                      same result as the clean run, and its step time grows (printed)
#     weak_scaling     bench/cluster_scaling.sh at tiny size: 4 ranks on 1 host vs 2 x 2;
#                      the fields it prints are real numbers
#     lost_node        slurm/train.sbatch -N 2 -n 2 --requeue; host 1 is killed after a
#                      checkpoint; the job fails within 60 s naming the lost node, is
#                      requeued, resumes (--resume auto) on 1 node with 1 rank; the
#                      result = the reference (ranks do not change it)
#     lost_node_rank_first   the same, but h1's rank is killed a second before the rest of h1:
#                      the step fails at once and the batch script waits for Slurm to
#                      declare h1 lost (BORA_NODE_FAIL_WAIT), names it and requeues
#     unwritable_node  mpirun over 2 hosts where host 1 sees the run folder read-only
#
# Environment (tests/cluster/CMakeLists.txt): BORA_SOURCE, BORA_BIN, COMPARE_RUNS,
# FX (the dist fixture), MPIEXEC, REF (the reference runs' folder), STEPS.
set -euo pipefail
scenario=$1 scratch=$2
: "${BORA_SOURCE:?} ${BORA_BIN:?} ${COMPARE_RUNS:?} ${FX:?} ${REF:?} ${MPIEXEC:=mpirun}"
source "$BORA_SOURCE/tests/cluster/hosts.sh"
source "$BORA_SOURCE/tests/slurm/cluster.sh"  # slurm_wait_job, slurm_job_field
source "$BORA_SOURCE/tests/common/tiny_run.sh"
trap cluster_stop EXIT
scenario_env "cluster $scenario"

rm -rf "$scratch"
mkdir -p "$scratch"
out=$scratch/runs
mkdir -p "$out"
steps=${STEPS:-24}
# The tiny run of tests/dist and tests/slurm as a config file.
{ tiny_run_ini "$FX" "$steps"; printf 'eval_every = 12\nreplica_check_every = 4\n'; } >"$scratch/tiny.ini"

# ranks of results.json
ranks_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ranks"])' "$1/results.json"; }

# mpirun over the first <nhosts> hosts, <per> ranks each: run folder <dir>, log <dir>.log.
cluster_train() {
  local nhosts=$1 per=$2 dir=$3; shift 3
  local hf=$scratch/hosts_${nhosts}x$per
  cluster_hostfile "$hf" "$per" "$nhosts"
  cluster_mpirun "$hf" --display-map -np $((nhosts * per)) \
    "$BORA_BIN/bora-train" --config "$scratch/tiny.ini" --run_dir "$dir" "$@" >"$dir.log" 2>&1 ||
    { tail -30 "$dir.log"; fail "mpirun over $nhosts host(s) x $per failed (log $dir.log)"; }
}

# Asserts that `mpirun -np <n>` over <nhosts> x <per> puts <per> ranks on each host,
# by the host name each rank sees (its UTS namespace).
check_placement() {
  local nhosts=$1 per=$2 hf=$scratch/hosts_check got want=""
  cluster_hostfile "$hf" "$per" "$nhosts"
  # shellcheck disable=SC2016  # expanded by each rank
  got=$(cluster_mpirun "$hf" -np $((nhosts * per)) bash -c 'echo "$(hostname)"' | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')
  for ((i = 0; i < nhosts; i++)); do want+="${want:+ }h$i=$per"; done
  say "ranks per host: $got"
  [ "$got" = "$want" ] || fail "ranks per host '$got', expected '$want'"
}

# Bytes sent + received on host i's link (net0).
link_bytes() {
  ip netns exec "${CLUSTER_NS[$1]}" cat /sys/class/net/net0/statistics/rx_bytes /sys/class/net/net0/statistics/tx_bytes | paste -sd+ | bc
}

# Submits slurm/train.sbatch with sbatch options "$@" (before the script), waits
# for COMPLETED; prints the job id.
submit_train() {
  local name=$1 run=$2; shift 2
  sbatch --parsable -J "$name" -o "$scratch/%x-%j.out" --chdir "$scratch" \
    "--export=ALL,BORA_CONFIG=$scratch/tiny.ini,BORA_RUN_DIR=$run,BORA_RANK_HOSTS=1" \
    "$@" "$BORA_SOURCE/slurm/train.sbatch" --tau 10
}
expect_completed() {
  local id=$1 timeout=$2 state
  state=$(slurm_wait_job "$id" "$timeout") || fail "job $id did not end within $timeout s"
  [ "$state" = COMPLETED ] || { tail -30 "$scratch"/*"$id"*.out 2>/dev/null || true; fail "job $id ended $state (exit $(slurm_job_field "$id" ExitCode))"; }
}
# Asserts the job log has a "rank i of n on h<j>" line for every node 0..nodes-1.
check_rank_hosts() {
  local log=$1 nodes=$2 ranks=$3 hosts
  hosts=$(sed -n 's/.*rank [0-9]* of [0-9]* on \(h[0-9]*\).*/\1/p' "$log" | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')
  say "ranks per node (job log): $hosts"
  [ "$(grep -c "rank [0-9]* of $ranks on h" "$log")" = "$ranks" ] || { cat "$log"; fail "the job log has not $ranks 'rank i of $ranks on h<j>' lines"; }
  for ((i = 0; i < nodes; i++)); do
    [[ " $hosts" == *" h$i="* ]] || { cat "$log"; fail "no rank ran on h$i ($hosts)"; }
  done
}

case "$scenario" in
reference)
  [ "$(realpath -m "$REF")" != "$(realpath -m "$scratch")" ] || fail "REF must not be the scratch folder ($REF)"
  rm -rf "$REF"
  mkdir -p "$REF"
  for spec in "4 np4_tau10 10" "2 np2_tau0 0"; do
    read -r np name tau <<<"$spec"
    say "reference: mpirun -np $np --tau $tau -> $REF/$name"
    "$MPIEXEC" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np "$np" \
      "$BORA_BIN/bora-train" --config "$scratch/tiny.ini" --run_dir "$REF/$name" --tau "$tau" >"$REF/$name.log" 2>&1 ||
      { tail -20 "$REF/$name.log"; fail "reference run $name failed"; }
  done
  ;;
mpirun_2host)
  cluster_start "$scratch/cluster" 2 || fail "the cluster did not start (log tails above)"
  check_placement 2 2
  before=$(link_bytes 1)
  cluster_train 2 2 "$out/mpirun_2x2" --tau 10
  bytes=$(($(link_bytes 1) - before))
  # mpirun's map (--display-map) of the training job itself: 2 ranks on each host
  # (mpirun names its own host by name, the others by their hostfile address).
  for i in 0 1; do
    grep -Eq "Data for node: (h$i|${CLUSTER_IPS[i]//./\\.})[[:space:]]+Num slots: 2.*Num procs: 2" "$out/mpirun_2x2.log" ||
      { head -40 "$out/mpirun_2x2.log"; fail "mpirun's map does not show 2 ranks on h$i (${CLUSTER_IPS[i]})"; }
  done
  say "mpirun's map: 2 ranks on each of h0, h1; $bytes bytes through h1's link during the run"
  ((bytes > 100000)) || fail "only $bytes bytes crossed h1's link: the ranks did not talk over TCP"
  [ "$(ranks_of "$out/mpirun_2x2")" = 4 ] || fail "results.json does not record 4 ranks"
  same "$REF/np4_tau10" "$out/mpirun_2x2"
  ;;
slurm_N2 | slurm_N3)
  nodes=${scenario#slurm_N}
  ranks=$((nodes == 2 ? 4 : 3))
  cluster_start "$scratch/cluster" "$nodes" || fail "the cluster did not start (log tails above)"
  cluster_slurm_start 2 || fail "Slurm did not start on the cluster (log tails above)"
  before=$(link_bytes 1)
  id=$(submit_train "train-N$nodes" "$out/slurm_N$nodes" -N "$nodes" -n "$ranks")
  say "submitted slurm/train.sbatch -N $nodes -n $ranks as job $id"
  expect_completed "$id" 240
  log=$scratch/train-N$nodes-$id.out
  grep -q "$ranks rank(s) on $nodes node(s)" "$log" || { cat "$log"; fail "the job log does not show $ranks ranks on $nodes nodes"; }
  check_rank_hosts "$log" "$nodes" "$ranks"
  bytes=$(($(link_bytes 1) - before))
  say "$bytes bytes through h1's link during the job"
  ((bytes > 100000)) || fail "only $bytes bytes crossed h1's link: the ranks did not talk over TCP"
  [ "$(ranks_of "$out/slurm_N$nodes")" = "$ranks" ] || fail "results.json does not record $ranks ranks"
  same "$REF/np4_tau10" "$out/slurm_N$nodes"
  ;;
slurm_sweep)
  cluster_start "$scratch/cluster" 2 || fail "the cluster did not start (log tails above)"
  cluster_slurm_start 2 || fail "Slurm did not start on the cluster (log tails above)"
  printf 'taus = 0, 10\nconfig = %s\n' "$scratch/tiny.ini" >"$scratch/sweep.ini"
  id=$(sbatch --parsable --array=0-1 -N 2 -n 2 -J sweep -o "$scratch/%x-%A_%a.out" --chdir "$scratch" \
       "--export=ALL,BORA_SWEEP=$scratch/sweep.ini,BORA_OUT=$out/sweep,BORA_RANK_HOSTS=1" \
       "$BORA_SOURCE/slurm/sweep-array.sbatch")
  say "submitted slurm/sweep-array.sbatch --array=0-1 -N 2 -n 2 as job $id"
  expect_completed "$id" 300
  for a in 0 1; do check_rank_hosts "$scratch/sweep-${id}_$a.out" 2 2; done
  same "$REF/np2_tau0" "$out/sweep/tau_0"
  same "$REF/np4_tau10" "$out/sweep/tau_10"
  ;;
degraded_link)
  cluster_start "$scratch/cluster" 2 || fail "the cluster did not start (log tails above)"
  cluster_train 2 2 "$out/clean" --tau 10
  # Host 1's link, both directions: its net0 (what h1 sends) and its switch port
  # (what it receives). netem where the kernel has it; else tbf, whose short queue
  # (latency) drops what exceeds the rate, so TCP retransmits and backs off.
  qdisc=(netem delay 20ms 5ms loss 1%)
  if ! ip netns exec "${CLUSTER_NS[1]}" tc qdisc add dev net0 root "${qdisc[@]}" 2>/dev/null; then
    qdisc=(tbf rate "${BORA_CLUSTER_RATE:-2mbit}" burst 4kb latency 5ms)
    ip netns exec "${CLUSTER_NS[1]}" tc qdisc add dev net0 root "${qdisc[@]}" ||
      fail "tc cannot shape host 1's link (neither netem nor tbf)"
  fi
  ip netns exec "$CLUSTER_SW" tc qdisc add dev p1 root "${qdisc[@]}" || fail "tc cannot shape the switch port of host 1"
  say "host 1's link shaped: tc qdisc ... ${qdisc[*]} (netem: $([ "${qdisc[0]}" = netem ] && echo yes || echo 'no, not in this kernel'))"
  cluster_train 2 2 "$out/degraded" --tau 10
  echo "--- tc -s qdisc on h1's net0 after the run:"
  ip netns exec "${CLUSTER_NS[1]}" tc -s qdisc show dev net0
  shaped=$(ip netns exec "${CLUSTER_NS[1]}" tc -s qdisc show dev net0 | sed -n 's/.*overlimits \([0-9]*\).*/\1/p' | head -1)
  dropped=$(ip netns exec "${CLUSTER_NS[1]}" tc -s qdisc show dev net0 | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -1)
  same "$out/clean" "$out/degraded"
  same "$REF/np4_tau10" "$out/degraded"
  clean=$(cluster_run_stats "$out/clean") degraded=$(cluster_run_stats "$out/degraded")
  echo "--- medians over steps 2..$steps (metrics.jsonl)"
  printf '%-9s %s\n' clean "$clean" degraded "$degraded"
  c=$(sed -n 's/.*step_s=\([^ ]*\).*/\1/p' <<<"$clean") d=$(sed -n 's/.*step_s=\([^ ]*\).*/\1/p' <<<"$degraded")
  say "step time clean $c s, degraded $d s (x$(echo "scale=2; $d / $c" | bc)); qdisc overlimits $shaped, dropped $dropped"
  [ "${shaped:-0}" -gt 0 ] || [ "${qdisc[0]}" = netem ] || fail "the qdisc never throttled a packet (overlimits 0): the link was not degraded"
  [ "$(echo "$d > $c" | bc)" = 1 ] || fail "the degraded link's step time ($d s) did not grow over the clean one ($c s)"
  ;;
weak_scaling)
  table=$("$BORA_SOURCE/bench/cluster_scaling.sh" --bin "$BORA_BIN" --fx "$FX" --out "$scratch/bench" \
          --ranks 4 --steps "$steps") || fail "bench/cluster_scaling.sh failed"
  echo "$table"
  # Rows "1x4" and "2x2": hosts, ranks per host, step_s, allreduce_s, tokens/s, ratio: numbers > 0.
  for layout in 1x4 2x2; do
    row=$(awk -v l="$layout" '$1 == l' <<<"$table")
    [ -n "$row" ] || fail "no row '$layout' in the bench output"
    for f in 2 3 4 5; do
      v=$(awk -v f="$f" '{print $f}' <<<"$row")
      if ! [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v v="$v" 'BEGIN { exit !(v > 0) }'; then
        fail "row $layout field $f is '$v', not a positive number"
      fi
    done
  done
  ratio=$(sed -n 's/^step time ratio 2x2 \/ 1x4: \([0-9.]*\)$/\1/p' <<<"$table")
  [[ "$ratio" =~ ^[0-9]+\.[0-9]+$ ]] || fail "no step time ratio line"
  ;;
lost_node | lost_node_rank_first)
  # Long enough to be caught mid-run after a checkpoint; checkpoints every 10 steps.
  lsteps=${LOST_STEPS:-100}
  sed "s/^max_steps = .*/max_steps = $lsteps/" "$scratch/tiny.ini" >"$scratch/lost.ini"
  echo "checkpoint_every = 10" >>"$scratch/lost.ini"
  say "reference: mpirun -np 2, $lsteps steps, uninterrupted"
  "$MPIEXEC" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np 2 \
    "$BORA_BIN/bora-train" --config "$scratch/lost.ini" --run_dir "$out/lost_ref" --tau 10 >"$out/lost_ref.log" 2>&1 ||
    { tail -20 "$out/lost_ref.log"; fail "reference run failed"; }
  cluster_start "$scratch/cluster" 2 || fail "the cluster did not start (log tails above)"
  cluster_slurm_start 2 || fail "Slurm did not start on the cluster (log tails above)"
  run=$out/lost
  # A node range and no task count: srun starts one rank per node, 2 while both
  # nodes are up, 1 on the node left after the loss. (With --ntasks-per-node or -n
  # Slurm would give 1 node from the start, or wait for 2 forever.)
  id=$(sbatch --parsable -J lost -o "$scratch/%x-%j.out" --chdir "$scratch" -N 1-2 --requeue \
       "--export=ALL,BORA_CONFIG=$scratch/lost.ini,BORA_RUN_DIR=$run,BORA_RANK_HOSTS=1,BORA_NODE_FAIL_WAIT=40" \
       "$BORA_SOURCE/slurm/train.sbatch" --tau 10)
  log=$scratch/lost-$id.out
  say "submitted slurm/train.sbatch -N 1-2 as job $id; waiting for a checkpoint"
  for _ in $(seq 1200); do
    ck=$( (find "$run/checkpoints" -name COMPLETE 2>/dev/null || true) | wc -l)
    [ "$ck" -ge 1 ] && break
    [ -n "$(squeue -h -j "$id")" ] || { cat "$log"; fail "job $id ended before its first checkpoint"; }
    sleep 0.1
  done
  [ "${ck:-0}" -ge 1 ] || { cat "$log"; fail "no complete checkpoint after 120 s"; }
  check_rank_hosts "$log" 2 2
  [ -f "$run/results.json" ] && fail "the run finished before the node was lost (make LOST_STEPS larger)"
  steps_done=$(grep -c '"step_s"' "$run/metrics.jsonl" || true)
  if [ "$scenario" = lost_node_rank_first ]; then
    # The node's rank dies first (srun sees it exit and ends the step at once), the
    # node itself a second later: the batch script, not Slurm, sees the failure
    # first and must wait for Slurm's verdict on the node (BORA_NODE_FAIL_WAIT).
    for p in $(cluster_host_pids 1); do
      [ "$(ps -o comm= -p "$p" 2>/dev/null)" = bora-train ] && kill -KILL "$p" && say "killed h1's rank (pid $p)"
    done
    sleep 1
  fi
  say "after $steps_done steps and a checkpoint: every process of h1 killed ($(cluster_kill_host 1) processes)"
  kill_t=$SECONDS
  for _ in $(seq 600); do
    [ "$(slurm_job_field "$id" Restarts)" = 1 ] && break
    sleep 0.1
  done
  ended=$((SECONDS - kill_t))
  [ "$(slurm_job_field "$id" Restarts)" = 1 ] ||
    { cat "$log"; fail "job $id was not requeued within 60 s of losing h1 (state $(slurm_job_field "$id" JobState))"; }
  say "the job's first run ended and the job was requeued $ended s after h1 was lost"
  ((ended <= 60)) || fail "the job took $ended s (> 60) to end after the node was lost"
  grep -Eq "lost node\(s\) h1|Node failure on h1|NODE.FAIL" "$log" || { cat "$log"; fail "the job log does not name the lost node h1"; }
  if [ "$scenario" = lost_node_rank_first ]; then
    grep -q "error: lost node(s) h1" "$log" || { cat "$log"; fail "the batch script did not name the lost node (BORA_NODE_FAIL_WAIT)"; }
  fi
  # Slurm holds a requeued job (BeginTime); start it now, once the old run's files are gone.
  for _ in $(seq 100); do compgen -G "$CLUSTER_DIR/slurm/spool/h0/*[._]$id.*" >/dev/null || break; sleep 0.1; done
  # (PENDING once h1's share of the old run is written off: up to SlurmdTimeout + pings.)
  for _ in $(seq 600); do [ "$(slurm_job_field "$id" JobState)" = PENDING ] && break; sleep 0.1; done
  scontrol update JobId="$id" StartTime=now 2>/dev/null || true
  expect_completed "$id" 240
  cat "$log"
  grep -q "run 1: 1 rank(s) on 1 node(s) (h0)" "$log" || fail "the second run did not run 1 rank on h0"
  python3 - "$run/metrics.jsonl" <<'PY' || fail "metrics.jsonl has no resume event on 1 rank"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"resume"' in l]
print("resume events:", ev)
sys.exit(0 if any(e.get("ranks") == 1 for e in ev) else 1)
PY
  same "$out/lost_ref" "$run"
  ;;
unwritable_node)
  # Host 1 sees the run folder read-only (its own mount namespace): its rank cannot
  # write its part of a checkpoint. The job must end promptly, non-zero, saying so.
  run=$out/unwritable
  mkdir -p "$run"
  cluster_start "$scratch/cluster" 2 --ro "1:$run" || fail "the cluster did not start (log tails above)"
  cluster_exec 1 touch "$run/probe" 2>/dev/null && fail "h1 can write $run: the read-only mount did not take"
  cluster_exec 0 touch "$run/probe" || fail "h0 cannot write $run"
  rm -f "$run/probe"
  hf=$scratch/hosts_2x1
  cluster_hostfile "$hf" 1 2
  start=$SECONDS
  rc=0
  CLUSTER_TIMEOUT=120 cluster_mpirun "$hf" -np 2 "$BORA_BIN/bora-train" --config "$scratch/tiny.ini" --run_dir "$run" --tau 10 --checkpoint_every 5 \
    >"$scratch/unwritable.log" 2>&1 || rc=$?
  took=$((SECONDS - start))
  cat "$scratch/unwritable.log"
  say "exit code $rc after $took s"
  [ "$rc" -ne 0 ] || fail "the run succeeded although rank 1 could not write its checkpoint"
  ((took <= 60)) || fail "the run took $took s to fail (limit 60)"
  grep -Eiq "read-only|not writable|cannot (write|create)" "$scratch/unwritable.log" ||
    fail "no message saying the run folder is not writable"
  grep -Eq "rank 1 on host h1" "$scratch/unwritable.log" || fail "the error does not name rank 1 on host h1"
  ;;
*) fail "unknown scenario '$scenario'" ;;
esac
say "OK"
