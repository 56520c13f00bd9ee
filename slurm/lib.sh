# shellcheck shell=bash
# Shared by the sbatch scripts in this folder (sourced, not run). Slurm runs a copy
# of a batch script from its spool folder, so the scripts find this file through
# BORA_ROOT (default: the folder sbatch was called from), not through $0.
#
#   bora_read_sweep FILE       BORA_TAUS=(0 1 10 inf), BORA_SWEEP_CONFIG=<config path>,
#                              BORA_PRUNE_ARGS (launch/sweep-lib.sh)
#   bora_step CMD...           runs a job step (srun) with the signal protocol; sets BORA_STEP_RC
#   bora_finish RC             requeues on 75 (docs/slurm.md), otherwise exits with RC
#   bora_unconverged, bora_budget_args   from launch/converge.sh (continuing a sweep)
#
# The signal protocol (docs/slurm.md): the scripts ask for `--signal=B:USR1@<s>`,
# so Slurm sends SIGUSR1 to this batch shell <s> seconds before the time limit. The
# shell forwards it to srun, srun to every rank; bora-train finishes its step,
# writes a checkpoint and exits 75. On 75 the script requeues the job
# (`scontrol requeue`), and the next run continues from the checkpoint
# (`--resume auto`). A SIGTERM (scancel, or Slurm's own preemption, which requeues
# by itself when the cluster says so) also ends the ranks with 75 but is not
# requeued: a user's scancel must stay a cancel.

BORA_STEP_PID=""
BORA_RESEND_PID=""
BORA_GOT_USR1=${BORA_GOT_USR1:-0}  # the scripts trap USR1 into it from their first line
BORA_GOT_TERM=0

# Beside this file, wherever it is sourced from (a batch script runs from Slurm's spool).
source "$(dirname "${BASH_SOURCE[0]}")/../launch/converge.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../launch/sweep-lib.sh"

bora_log() { echo "[$(date +%H:%M:%S) ${BORA_SCRIPT:-bora} job ${SLURM_JOB_ID:-?}] $*" >&2; }

# Resolves a path given relative to the submit folder.
bora_abs() { case "$1" in /*) echo "$1" ;; *) echo "${BORA_ROOT:-$PWD}/$1" ;; esac; }

# Signal handlers of the batch shell. Bash runs a trap only between commands, so
# the step runs in the background and the shell sits in `wait`, which a trapped
# signal interrupts at once.
_bora_on_usr1() {
  BORA_GOT_USR1=1
  bora_log "SIGUSR1 (time limit near or preemption asked): forwarding to the ranks"
  if [ -n "$BORA_STEP_PID" ]; then _bora_forward_usr1; fi
}
# srun drops a signal that comes before it has launched the tasks, so the signal is
# sent again every BORA_RESEND_S seconds until the step ends (a rank that already
# stops just sees its stop flag set again).
_bora_forward_usr1() {
  kill -USR1 "$BORA_STEP_PID" 2>/dev/null || true
  if [ -z "$BORA_RESEND_PID" ]; then
    (
      trap - USR1 TERM
      while sleep "${BORA_RESEND_S:-2}"; do kill -USR1 "$BORA_STEP_PID" 2>/dev/null || exit 0; done
    ) &
    BORA_RESEND_PID=$!
  fi
}
_bora_on_term() {
  BORA_GOT_TERM=1
  bora_log "SIGTERM (cancel or preemption): the ranks get it from Slurm and checkpoint; no requeue from here"
}

# Runs one job step in the background and waits for it, forwarding SIGUSR1;
# BORA_STEP_RC is the step's exit code (srun: the largest of the ranks').
bora_step() {
  trap _bora_on_usr1 USR1
  trap _bora_on_term TERM
  bora_log "step: $*"
  "$@" &
  BORA_STEP_PID=$!
  # A USR1 that came while the step was being set up is passed on now.
  if ((BORA_GOT_USR1)); then _bora_forward_usr1; fi
  BORA_STEP_RC=0
  while :; do
    wait "$BORA_STEP_PID" && BORA_STEP_RC=0 || BORA_STEP_RC=$?
    # wait returns > 128 when a trapped signal interrupted it; the step still runs.
    kill -0 "$BORA_STEP_PID" 2>/dev/null || break
  done
  # The true status (the loop's last wait may have been interrupted just as it ended).
  # (127: already collected above, BORA_STEP_RC holds it.)
  local rc=0
  wait "$BORA_STEP_PID" 2>/dev/null || rc=$?
  if [ "$rc" -ne 127 ]; then BORA_STEP_RC=$rc; fi
  BORA_STEP_PID=""
  if [ -n "$BORA_RESEND_PID" ]; then
    kill "$BORA_RESEND_PID" 2>/dev/null || true
    wait "$BORA_RESEND_PID" 2>/dev/null || true
    BORA_RESEND_PID=""
  fi
  bora_log "step ended with exit code $BORA_STEP_RC"
}

# A failed step of a multi-node job may be a lost node: its ranks died with it, and
# the others failed in their next all-reduce. With BORA_NODE_FAIL_WAIT=<s> (0: off;
# set it above the cluster's SlurmdTimeout) the script waits up to <s> seconds for
# Slurm to mark one of the job's nodes DOWN, NOT_RESPONDING or FAIL, and says which.
# True (requeue) when one is; a job submitted with a node range (sbatch -N 1-4)
# then resumes on the nodes left, with fewer ranks (--resume auto). Slurm itself
# may end and requeue the job first (node failure of a --requeue job): same result.
_bora_lost_node() {
  local rc=$1 wait=${BORA_NODE_FAIL_WAIT:-0} start=$SECONDS bad
  ((wait > 0 && ${SLURM_JOB_NUM_NODES:-1} > 1)) || return 1
  bora_log "step failed (exit $rc) on ${SLURM_JOB_NUM_NODES} nodes ($SLURM_JOB_NODELIST): waiting up to $wait s for Slurm's verdict on them (BORA_NODE_FAIL_WAIT)"
  while ((SECONDS - start < wait)); do
    bad=$(sinfo -h -N -n "$SLURM_JOB_NODELIST" -t down,no_respond,fail -o %N 2>/dev/null | sort -u | paste -sd, -)
    if [ -n "$bad" ]; then
      bora_log "error: lost node(s) $bad ($(sinfo -h -N -n "$bad" -o '%N: %T' 2>/dev/null | sort -u | paste -sd, -)) after $((SECONDS - start)) s: the step failed with them"
      return 0
    fi
    sleep 1
  done
  bora_log "every node of the job still answers after $wait s: a failure of the run, not of a node"
  return 1
}

# Ends the job: exit code 75 (a checkpoint was written on request) requeues the job
# when BORA_REQUEUE=1, no SIGTERM came and it has been requeued fewer than
# BORA_MAX_REQUEUES times (a guard against a requeue loop); anything else is the
# job's exit code.
bora_finish() {
  local rc=$1
  # > 128 after our SIGUSR1: the signal came before bora-train had set up its
  # handler (its first seconds), so a rank died of it (138 = 128 + SIGUSR1) and
  # srun ended the others (143 = 128 + SIGTERM). Nothing is lost but the start-up
  # (and the steps since the last periodic checkpoint): requeue as well.
  if ((rc > 128 && BORA_GOT_USR1)); then
    bora_log "the ranks died of a signal ($((rc - 128))) after SIGUSR1, before they could checkpoint (start-up): treated as 75"
    rc=75
  fi
  # A lost node (BORA_NODE_FAIL_WAIT > 0): requeued like a checkpoint on request.
  local why="checkpoint on request"
  if ((rc != 0 && rc != 75)) && _bora_lost_node "$rc"; then rc=75 why="lost node, resuming from the last checkpoint"; fi
  if [ "$rc" -eq 75 ] && ((${SLURM_RESTART_COUNT:-0} >= ${BORA_MAX_REQUEUES:-50})); then
    bora_log "not requeueing: the job has run ${SLURM_RESTART_COUNT} times already (BORA_MAX_REQUEUES=${BORA_MAX_REQUEUES:-50}); resubmit it to continue"
  elif [ "$rc" -eq 75 ] && [ "${BORA_REQUEUE:-1}" = 1 ] && ((!BORA_GOT_TERM)); then
    bora_log "exit 75 ($why): requeueing (restart ${SLURM_RESTART_COUNT:-0} -> $((${SLURM_RESTART_COUNT:-0} + 1)))"
    if scontrol requeue "$SLURM_JOB_ID"; then
      exit 0  # Slurm ends this run and queues the job again; it resumes from the checkpoint
    fi
    bora_log "error: scontrol requeue failed (was the job submitted with --no-requeue, or is JobRequeue=0?); resubmit it to resume"
  fi
  exit "$rc"
}

# srun with one rank per task: --mpi=pmix wires Open MPI up without mpirun. Slurm
# 22.05's srun no longer inherits --cpus-per-task from sbatch, so it is passed on.
bora_srun() {
  local args=(--mpi="${BORA_MPI:-pmix}" --kill-on-bad-exit=1)
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && args+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  # shellcheck disable=SC2206  # BORA_SRUN_ARGS is a list of words on purpose
  [ -n "${BORA_SRUN_ARGS:-}" ] && args+=(${BORA_SRUN_ARGS})
  # BORA_RANK_HOSTS=1: each rank first writes "rank <i> of <n> on <host>" to the job
  # log, then becomes the command (exec, same PID): where the ranks really ran.
  if [ "${BORA_RANK_HOSTS:-0}" = 1 ]; then
    # shellcheck disable=SC2016  # expanded by each rank's shell
    set -- bash -c 'echo "rank ${SLURM_PROCID:-?} of ${SLURM_NTASKS:-?} on $(hostname -s)" >&2; exec "$@"' bora-rank "$@"
  fi
  bora_step srun "${args[@]}" "$@"
}
