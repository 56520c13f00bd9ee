# What every test cluster shares: its slurm.conf's common lines (sourced by tests/slurm/cluster.sh, a
# single node, and tests/cluster/hosts.sh, one node per network namespace): daemons
# as root, munge on a socket path of the test's own, pmix, no cgroups, accounting or
# mail, and finished jobs visible to 'scontrol show job' for 10 minutes. The callers
# add the cluster's name, hosts, ports, paths and nodes (order does not matter in
# slurm.conf).

# A TCP port nobody listens on (the kernel picks it).
slurm_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

#   slurm_conf_common <munge socket>
slurm_conf_common() {
  cat <<CONF
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$1
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
CONF
}

# Cancels every job the clients see and waits up to 10 s for the queue to empty
# (call it only with a live controller: clients retry for a while without one).
slurm_cancel_all() {
  local jobs
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086  # a list of job ids
  [ -z "${jobs// /}" ] || scancel --quiet $jobs 2>/dev/null || true
  for _ in $(seq 50); do
    [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
    sleep 0.2
  done
}

# Stops a daemon this shell started, by its pid: TERM, then KILL after 10 s; reaps it.
#   slurm_stop_daemon <name> <pid> <log function>
slurm_stop_daemon() {
  local name=$1 pid=$2 log=$3
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      "$log" "$name ($pid) ignored TERM for 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# The end of every daemon log in <folder>: what a failing start needs to be understood.
#   slurm_dump_logs <folder>
slurm_dump_logs() {
  local f
  for f in "$1"/*.log "$1"/*.out; do
    [ -f "$f" ] || continue
    echo "----- $f (last 20 lines) -----" >&2
    tail -n 20 "$f" >&2
  done
}

# Whether Slurm and munge are installed as the test clusters need them; on a miss,
# says what is missing through <log function> and returns 1.
#   slurm_check_installed <log function>
slurm_check_installed() {
  local log=$1 prog
  for prog in munged slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
    command -v "$prog" >/dev/null || [ -x "/usr/sbin/$prog" ] ||
      { "$log" "FAILED: '$prog' not installed (launch/install-deps.sh installs munge and slurm-wlm)"; return 1; }
  done
  id munge >/dev/null 2>&1 || { "$log" "FAILED: no user 'munge' (the munge package creates it)"; return 1; }
  [ -r /etc/munge/munge.key ] || { "$log" "FAILED: /etc/munge/munge.key missing (the munge package creates it)"; return 1; }
}
