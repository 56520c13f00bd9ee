# shellcheck shell=bash
# A throwaway single-node Slurm for the tests (sourced, not run). It needs root and
# Debian's packages (munge slurm-wlm slurmctld slurmd slurm-client
# slurm-wlm-basic-plugins, see launch/install-deps.sh) and no systemd:
#
#   source tests/slurm/cluster.sh
#   trap slurm_cluster_stop EXIT
#   slurm_cluster_start <scratch dir> <cpus>    # exports SLURM_CONF; fails loudly
#   sbatch ...                                  # clients find the cluster by SLURM_CONF
#
# Everything lives under the scratch dir: slurm.conf, the controller's state, the
# node's spool, logs, pid files and munged's own socket, so that it runs next to
# (and never touches) a Slurm or munge the machine may already have. Ports are
# picked free at start. The node advertises <cpus> CPUs whatever the machine has
# (SlurmdParameters=config_overrides), so 4 ranks fit on a 2-core runner.
# slurm_cluster_stop cancels what is still queued and stops the three daemons by
# the PIDs it started them with (slurmd, slurmctld, munged), never by name.
# Facts behind the choices: docs/slurm.md, "The test cluster" (plugins that need no
# cgroups or systemd: proctrack/linuxproc, task/none, accounting none).

source "$(dirname "${BASH_SOURCE[0]}")/../common/slurm_conf.sh"

_SLURM_PIDS=()  # "name:pid", in start order
SLURM_SCRATCH=""

_slurm_log() { echo "[slurm-cluster] $*" >&2; }


_slurm_fail() {
  _slurm_log "FAILED: $*"
  slurm_dump_logs "$SLURM_SCRATCH/log"
  return 1
}

# Starts "$@" in the background, remembers its PID under `name`.
_slurm_spawn() {
  local name=$1; shift
  "$@" >"$SLURM_SCRATCH/log/$name.out" 2>&1 &
  _SLURM_PIDS+=("$name:$!")
}

# True when the daemon `name` we started is still running.
_slurm_alive() {
  local entry
  for entry in "${_SLURM_PIDS[@]}"; do
    [ "${entry%%:*}" = "$1" ] && kill -0 "${entry#*:}" 2>/dev/null && return 0
  done
  return 1
}

slurm_cluster_start() {
  local dir=$1 cpus=$2
  local host mem port_ctld port_d
  [ "$(id -u)" -eq 0 ] || { _slurm_log "FAILED: needs root (munged as user munge, slurmd as root)"; return 1; }
  slurm_check_installed _slurm_log || return 1

  rm -rf "$dir"
  mkdir -p "$dir"/{state,spool,log,run,munge}
  SLURM_SCRATCH=$(cd "$dir" && pwd)
  # munged (user munge) wants its socket folder its own, writable by nobody else
  # and searchable by all (clients connect to the socket), like /run/munge.
  chown munge:munge "$SLURM_SCRATCH/munge"
  chmod 0755 "$SLURM_SCRATCH/munge"
  local sock=$SLURM_SCRATCH/munge/munge.sock

  host=$(hostname -s)
  # The node's memory as slurmd measures it (a larger value drains the node).
  mem=$(/usr/sbin/slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  port_ctld=$(slurm_free_port) port_d=$(slurm_free_port)
  cat >"$SLURM_SCRATCH/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a one-node test cluster, no systemd, no cgroups.
ClusterName=boratest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port_ctld
SlurmdPort=$port_d
$(slurm_conf_common "$sock")
StateSaveLocation=$SLURM_SCRATCH/state
SlurmdSpoolDir=$SLURM_SCRATCH/spool
SlurmctldLogFile=$SLURM_SCRATCH/log/slurmctld.log
SlurmdLogFile=$SLURM_SCRATCH/log/slurmd.log
SlurmctldPidFile=$SLURM_SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SLURM_SCRATCH/run/slurmd.pid
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  export SLURM_CONF=$SLURM_SCRATCH/slurm.conf

  _slurm_spawn munged setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged --foreground --socket="$sock" --pid-file="$sock.pid" \
    --log-file=/dev/stderr --seed-file="$sock.seed"
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || _slurm_fail "munged did not create $sock (see munged.out)" || return 1
  _slurm_spawn slurmctld /usr/sbin/slurmctld -D -f "$SLURM_CONF"
  _slurm_spawn slurmd /usr/sbin/slurmd -D -N "$host" -f "$SLURM_CONF"
  # The node reports in well under a second; allow 30 s for a loaded CI runner.
  local state=""
  for _ in $(seq 300); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    [ "$state" = idle ] && break
    local entry
    for entry in "${_SLURM_PIDS[@]}"; do
      kill -0 "${entry#*:}" 2>/dev/null || { _slurm_fail "${entry%%:*} exited at start (see ${entry%%:*}.out)"; return 1; }
    done
    sleep 0.1
  done
  [ "$state" = idle ] || { _slurm_fail "node $host not idle after 30 s (state '$state')"; return 1; }
  _slurm_log "up: node $host with $cpus CPUs, controller on port $port_ctld, state in $SLURM_SCRATCH"
}

# Cancels every job of the test cluster, waits for their processes to end, then
# stops slurmd, slurmctld and munged by PID (TERM, then KILL after 10 s).
slurm_cluster_stop() {
  local entry name pid n
  # Only with a live controller (clients would retry for a while without one).
  if _slurm_alive slurmctld; then slurm_cancel_all; fi
  for ((n = ${#_SLURM_PIDS[@]} - 1; n >= 0; n--)); do
    entry=${_SLURM_PIDS[n]}; name=${entry%%:*}; pid=${entry#*:}
    slurm_stop_daemon "$name" "$pid" _slurm_log
  done
  ((${#_SLURM_PIDS[@]})) && _slurm_log "stopped (slurmd, slurmctld, munged)"
  _SLURM_PIDS=()
}

# Waits for job `id` to leave the queue (requeues included) within `timeout` s and
# prints its final JobState (COMPLETED, FAILED, ...; an array's distinct states,
# space-separated); returns 1 on a timeout.
# squeue, not 'sbatch --wait', whose growing sleeps cost tens of seconds.
slurm_wait_job() {
  local id=$1 timeout=$2 start=$SECONDS
  while [ -n "$(squeue -h -j "$id" -o %i 2>/dev/null)" ]; do
    if ((SECONDS - start > timeout)); then
      _slurm_log "job $id still queued after $timeout s: $(squeue -h -j "$id" -o '%i %T %r' | tr '\n' ' ')"
      return 1
    fi
    sleep 0.5
  done
  scontrol show job "$id" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p' | sort -u | paste -sd' '
}

# One field (JobState, ExitCode, Restarts, ...) of 'scontrol show job'.
slurm_job_field() {
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
