# shellcheck shell=bash
# A small cluster on one machine (sourced, not run): N "hosts", each a network
# namespace with its own address on one private /24 and its own host name, so that
# mpirun and Slurm really launch across hosts and MPI really talks TCP between them.
# It needs root, iproute2, util-linux (nsenter, unshare) and, for Slurm, Debian's
# munge/slurm packages (tests/slurm/cluster.sh lists them).
#
#   source tests/cluster/hosts.sh
#   trap cluster_stop EXIT
#   cluster_start <scratch> <nhosts> [--ro <i>:<path>]...   # the network; exports BORA_CLUSTER_*
#   cluster_slurm_start <cpus per host>   # munged + slurmctld (host 0) + one slurmd per host
#   cluster_exec <i> cmd args...          # runs a command on host i (its netns + host name)
#   cluster_hostfile <file> <slots> <nhosts>   # an Open MPI hostfile: the first nhosts, slots each
#   cluster_mpirun <hostfile> mpirun-args...   # mpirun on host 0 over TCP between the hosts
#   cluster_kill_host <i>                 # SIGKILL every process of host i (a lost node)
#   cluster_stop                          # stops everything, deletes every namespace
#
# The network. Host i is the network namespace $CLUSTER_NS_PREFIX-h<i> with lo up
# and one veth, net0, with address <net>.<i + 1>. The other end of every veth is a
# port of one Linux bridge, br0, which lives in a namespace of its own (the
# "switch", $CLUSTER_NS_PREFIX-sw): nothing is created in, and no address or route
# is added to, the machine's own namespace. Names carry this shell's PID and a
# random suffix, so parallel or leftover runs never collide; deleting the
# namespaces removes the veths and the bridge with them. The /24 is picked at
# random in 10.0.0.0/8 among those that overlap no address or route of the machine
# (`ip -4 addr`, `ip -4 route`), or taken from BORA_CLUSTER_NET if set (checked the
# same way). Open MPI is told to use it through BORA_CLUSTER_IF (default: that
# CIDR; a site would name its interface or network here).
#
# Hosts. tests/cluster/agent.sh <host name or address> <command line> runs a
# command on a host: in its netns, in a fresh UTS namespace with the host's name
# (h0, h1, ...), and, for a host started with --ro <i>:<path>, in a mount namespace
# of its own where <path> is bind-mounted read-only (a node that cannot write the
# checkpoint folder). It is Open MPI's plm_rsh_agent (in place of ssh) and starts
# every process of this file, so every process of host i, and nothing else, is in
# host i's netns: cluster_kill_host and cluster_stop find them with `ip netns pids`.
# The agent reads $BORA_CLUSTER_DIR/hosts (name, address, netns, read-only paths).
#
# Slurm. One munged (on host 0; its socket is a path, which every netns reaches), slurmctld on
# host 0 (SlurmctldHost=h0(<address>)), one `slurmd -D -N h<i>` per host with its
# own spool, log and pid file (%n in slurm.conf). The rest is tests/slurm/cluster.sh's
# configuration: no cgroups or systemd, MpiDefault=pmix, each node advertising the
# CPUs asked for (config_overrides), ports picked free, all state under the
# scratch folder. The clients reach the controller from host 0: after
# cluster_slurm_start, sbatch, squeue, scontrol, scancel, sinfo and srun in the
# sourcing shell are functions that run the real client in host 0's netns, so that
# tests/slurm/cluster.sh's slurm_wait_job and slurm_job_field work unchanged.
#
# cluster_stop cancels what is queued, stops the daemons by the PIDs it started
# them with (slurmd, slurmctld, munged: TERM, KILL after 10 s), SIGKILLs whatever
# is still running in a host's netns (job steps, ranks, orted), and deletes the
# namespaces. Call it from an EXIT trap: nothing is left when a test fails midway.

CLUSTER_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_AGENT=$CLUSTER_HERE/agent.sh
CLUSTER_DIR=""        # scratch folder (hosts file, slurm.conf, logs)
CLUSTER_N=0           # number of hosts
CLUSTER_CIDR=""       # the hosts' /24, e.g. 10.123.45.0/24
CLUSTER_NS_PREFIX=""  # bora-<pid>-<random>
CLUSTER_NAMES=()      # h0 h1 ...
CLUSTER_IPS=()        # their addresses
CLUSTER_NS=()         # their network namespaces
CLUSTER_SW=""         # the switch's namespace (the bridge)
source "$(dirname "${BASH_SOURCE[0]}")/../common/slurm_conf.sh"

_CL_PIDS=()           # "host:name:pid" of the daemons, in start order
_CL_SLURM=0

_cl_log() { echo "[cluster] $*" >&2; }

_cl_fail() {
  _cl_log "FAILED: $*"
  [ -z "$CLUSTER_DIR" ] || slurm_dump_logs "$CLUSTER_DIR/log"
  return 1
}

# A /24 in 10.0.0.0/8 that overlaps no IPv4 address or route of this machine
# (BORA_CLUSTER_NET if set, checked the same way); prints e.g. 10.123.45.0/24.
_cl_pick_net() {
  { ip -4 -o addr show | awk '{print $4}'; ip -4 route show table all 2>/dev/null | awk '{print $1}'; } |
    python3 -c '
import ipaddress, random, sys
used = []
for w in sys.stdin.read().split():
    if w in ("default", "broadcast", "local", "unreachable", "blackhole", "prohibit", "throw", "multicast"):
        continue
    try:
        used.append(ipaddress.ip_network(w, strict=False))
    except ValueError:
        pass
want = sys.argv[1]
def free(n):
    return not any(n.overlaps(u) for u in used)
if want:
    try:
        n = ipaddress.ip_network(want, strict=True)
    except ValueError as e:
        sys.exit(f"BORA_CLUSTER_NET={want} is not a network in CIDR notation ({e})")
    if n.prefixlen != 24 or not n.is_private:
        sys.exit(f"BORA_CLUSTER_NET={want} is not a private /24")
    if not free(n):
        sys.exit(f"BORA_CLUSTER_NET={want} overlaps an address or route of this machine (ip -4 addr, ip -4 route)")
    print(n); sys.exit(0)
rng = random.SystemRandom()
for _ in range(200):
    n = ipaddress.ip_network(f"10.{rng.randrange(64, 250)}.{rng.randrange(1, 255)}.0/24")
    if free(n):
        print(n); sys.exit(0)
sys.exit("no free /24 found in 10.64.0.0/10")
' "${BORA_CLUSTER_NET:-}"
}

# The index of a host given by index, name (h1) or address.
_cl_index() {
  local i
  for ((i = 0; i < CLUSTER_N; i++)); do
    if [ "$1" = "$i" ] || [ "$1" = "${CLUSTER_NAMES[i]}" ] || [ "$1" = "${CLUSTER_IPS[i]}" ]; then
      echo "$i"; return 0
    fi
  done
  _cl_log "no host '$1' in this cluster (hosts: ${CLUSTER_NAMES[*]})"
  return 1
}

# Namespaces of an earlier cluster whose shell is gone (a test killed by ctest's
# timeout, which leaves no chance to its EXIT trap): SIGKILL what runs in them, delete
# them. Only names this file makes (bora-<pid>-<6 hex>-h<i> or -sw) whose <pid> is dead.
_cl_reap_stale() {
  local ns pid procs
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ "$ns" =~ ^bora-([0-9]+)-[0-9a-f]{6}-(h[0-9]+|sw)$ ]] || continue
    pid=${BASH_REMATCH[1]}
    kill -0 "$pid" 2>/dev/null && continue
    procs=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086  # a list of PIDs
    [ -z "${procs// /}" ] || kill -KILL $procs 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null && _cl_log "removed the stale namespace $ns (its shell $pid is gone${procs:+; killed $procs})"
  done
}

# cluster_start <scratch> <nhosts> [--ro <i>:<path>]...
cluster_start() {
  local dir=$1 n=$2 i net ro_spec
  shift 2
  declare -A ro=()
  while (($#)); do
    case "$1" in
    --ro)
      ro_spec=${2:?--ro needs <host index>:<path>}
      [[ "$ro_spec" =~ ^[0-9]+:/ ]] || { _cl_log "FAILED: --ro '$ro_spec' is not <host index>:<absolute path>"; return 1; }
      i=${ro_spec%%:*}
      [ -d "${ro_spec#*:}" ] || { _cl_log "FAILED: --ro: folder '${ro_spec#*:}' does not exist"; return 1; }
      ro[$i]=${ro[$i]:+${ro[$i]},}${ro_spec#*:}
      shift 2 ;;
    *) _cl_log "FAILED: cluster_start: unknown option '$1'"; return 1 ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || { _cl_log "FAILED: needs root (network namespaces)"; return 1; }
  [[ "$n" =~ ^[1-9]$ ]] || { _cl_log "FAILED: cluster_start: <nhosts> must be 1..9, not '$n'"; return 1; }
  for prog in ip nsenter unshare python3 mount; do
    command -v "$prog" >/dev/null || { _cl_log "FAILED: '$prog' not installed"; return 1; }
  done
  [ -n "$CLUSTER_NS_PREFIX" ] && { _cl_log "FAILED: a cluster is already up in this shell ($CLUSTER_NS_PREFIX)"; return 1; }

  _cl_reap_stale
  rm -rf "$dir"
  mkdir -p "$dir"/log
  CLUSTER_DIR=$(cd "$dir" && pwd)
  CLUSTER_N=$n
  net=$(_cl_pick_net) || { _cl_log "FAILED: no network for the cluster: see the line above"; return 1; }
  CLUSTER_CIDR=$net
  CLUSTER_NS_PREFIX=bora-$$-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
  CLUSTER_SW=$CLUSTER_NS_PREFIX-sw
  local base=${net%.0/24}
  ip netns add "$CLUSTER_SW" || { _cl_fail "ip netns add $CLUSTER_SW"; return 1; }
  ip -n "$CLUSTER_SW" link set lo up
  ip -n "$CLUSTER_SW" link add br0 type bridge || { _cl_fail "no bridge in $CLUSTER_SW (bridge module?)"; return 1; }
  ip -n "$CLUSTER_SW" link set br0 up
  : >"$CLUSTER_DIR/hosts"
  for ((i = 0; i < n; i++)); do
    CLUSTER_NAMES[i]=h$i
    CLUSTER_IPS[i]=$base.$((i + 1))
    CLUSTER_NS[i]=$CLUSTER_NS_PREFIX-h$i
    ip netns add "${CLUSTER_NS[i]}" || { _cl_fail "ip netns add ${CLUSTER_NS[i]}"; return 1; }
    ip -n "${CLUSTER_NS[i]}" link set lo up
    # Both ends are created in their namespaces: nothing appears in the machine's.
    ip link add net0 netns "${CLUSTER_NS[i]}" type veth peer name "p$i" netns "$CLUSTER_SW" ||
      { _cl_fail "veth for host $i"; return 1; }
    ip -n "$CLUSTER_SW" link set "p$i" master br0
    ip -n "$CLUSTER_SW" link set "p$i" up
    ip -n "${CLUSTER_NS[i]}" addr add "${CLUSTER_IPS[i]}/24" dev net0
    ip -n "${CLUSTER_NS[i]}" link set net0 up
    echo "${CLUSTER_NAMES[i]} ${CLUSTER_IPS[i]} ${CLUSTER_NS[i]} ${ro[$i]:--}" >>"$CLUSTER_DIR/hosts"
  done
  export BORA_CLUSTER_DIR=$CLUSTER_DIR
  export BORA_CLUSTER_CIDR=$CLUSTER_CIDR
  export BORA_CLUSTER_IF=${BORA_CLUSTER_IF:-$CLUSTER_CIDR}
  # Every host reaches every other (the bridge forwards as soon as the ports are up).
  for ((i = 1; i < n; i++)); do
    _cl_reach 0 "$i" || { _cl_fail "host h0 cannot reach h$i (${CLUSTER_IPS[i]}) over the bridge"; return 1; }
  done
  _cl_log "up: $n hosts (${CLUSTER_NAMES[*]}) at ${CLUSTER_IPS[*]} on $CLUSTER_CIDR, namespaces $CLUSTER_NS_PREFIX-*, state in $CLUSTER_DIR"
}

# True when host a can open a TCP connection to a port host b listens on (no ping
# on this machine): a listener in b, a connect from a, within 5 s.
_cl_reach() {
  local a=$1 b=$2
  nsenter --net="/run/netns/${CLUSTER_NS[b]}" python3 - "${CLUSTER_IPS[b]}" "/run/netns/${CLUSTER_NS[a]}" <<'EOF'
import os, socket, sys, subprocess
ip, peer_ns = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind((ip, 0)); s.listen(1); s.settimeout(5)
port = s.getsockname()[1]
c = subprocess.Popen(["nsenter", f"--net={peer_ns}", "python3", "-c",
    f"import socket; socket.create_connection(('{ip}', {port}), timeout=5).close()"])
conn, _ = s.accept(); conn.close()
sys.exit(c.wait())
EOF
}

# cluster_exec <i | name | address> cmd args...: runs on that host (agent.sh), in
# the foreground; the arguments are passed through exactly. CLUSTER_TIMEOUT=<s>:
# TERM after <s> seconds (exit 124).
cluster_exec() {
  local i
  i=$(_cl_index "$1") || return 1
  shift
  # shellcheck disable=SC2086  # "timeout <s>" or nothing
  ${CLUSTER_TIMEOUT:+timeout $CLUSTER_TIMEOUT} "$CLUSTER_AGENT" "${CLUSTER_NAMES[i]}" "$(printf '%q ' "$@")"
}

# Starts `cmd args...` on host i in the background as daemon `name` (log in
# log/<name>.out); the PID recorded is the daemon's own (every step execs).
_cl_spawn() {
  local host=$1 name=$2; shift 2
  "$CLUSTER_AGENT" "h$host" "exec $(printf '%q ' "$@")" >"$CLUSTER_DIR/log/$name.out" 2>&1 &
  _CL_PIDS+=("$host:$name:$!")
}

_cl_alive() {
  local entry rest
  for entry in "${_CL_PIDS[@]}"; do
    rest=${entry#*:}
    [ "${rest%%:*}" = "$1" ] && kill -0 "${rest#*:}" 2>/dev/null && return 0
  done
  return 1
}

# cluster_hostfile <file> <slots> <nhosts>: an Open MPI hostfile naming the first
# <nhosts> hosts by address, <slots> slots each.
cluster_hostfile() {
  local file=$1 slots=$2 n=$3 i
  ((n >= 1 && n <= CLUSTER_N)) || { _cl_log "cluster_hostfile: $n hosts asked, the cluster has $CLUSTER_N"; return 1; }
  : >"$file"
  for ((i = 0; i < n; i++)); do echo "${CLUSTER_IPS[i]} slots=$slots" >>"$file"; done
}

# The mpirun options that launch across these hosts: the agent instead of ssh, TCP
# between hosts on BORA_CLUSTER_IF only (MPI traffic and Open MPI's own out-of-band
# channel), shared memory within a host, and TCP keepalives short enough that a
# daemon whose host vanished is noticed in seconds (BORA_CLUSTER_KEEPALIVE: idle
# s, interval s, probes).
cluster_mpi_options() {
  local ka=${BORA_CLUSTER_KEEPALIVE:-5,2,3}
  IFS=, read -r ka_time ka_intvl ka_probes <<<"$ka"
  # shellcheck disable=SC2054  # "self,vader,tcp" is one value
  CLUSTER_MPI_OPTIONS=(--allow-run-as-root --oversubscribe --bind-to none
    --mca plm_rsh_agent "$CLUSTER_AGENT" --mca plm_rsh_no_tree_spawn 1
    --mca btl self,vader,tcp
    --mca btl_tcp_if_include "$BORA_CLUSTER_IF" --mca oob_tcp_if_include "$BORA_CLUSTER_IF"
    --mca oob_tcp_keepalive_time "$ka_time" --mca oob_tcp_keepalive_intvl "$ka_intvl"
    --mca oob_tcp_keepalive_probes "$ka_probes")
}

# cluster_mpirun <hostfile> mpirun-args...: mpirun on host 0 with the options above.
cluster_mpirun() {
  local hostfile=$1; shift
  cluster_mpi_options
  cluster_exec 0 "${MPIEXEC:-mpirun}" "${CLUSTER_MPI_OPTIONS[@]}" --hostfile "$hostfile" "$@"
}

# cluster_run_stats <run dir>: medians over the logged steps after the first (which
# pays for start-up) of a run's metrics.jsonl: "step_s=<s> allreduce_s=<s>
# tokens_per_s=<n> steps=<n>". step_s is rank 0's wall time of a step, allreduce_s
# the part of it in Theta's all-reduce.
cluster_run_stats() {
  python3 - "$1/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step_s"' in l]
rows = [r for r in rows if r.get("step", 0) > 1] or rows
if not rows:
    sys.exit(f"{sys.argv[1]}: no step records")
med = lambda k: statistics.median(float(r[k]) for r in rows)
print(f"step_s={med('step_s'):.5f} allreduce_s={med('allreduce_s'):.5f} tokens_per_s={med('tokens_per_s'):.1f} steps={len(rows)}")
PY
}

# ---- Slurm --------------------------------------------------------------------------

# The Slurm clients of the sourcing shell, run where the controller is reachable.
_cl_client() { nsenter --net="/run/netns/${CLUSTER_NS[0]}" "$@"; }
_cl_define_clients() {
  local c
  for c in sbatch squeue scontrol scancel sinfo srun; do
    eval "$c() { _cl_client $c \"\$@\"; }"
  done
}
_cl_undefine_clients() {
  local c
  for c in sbatch squeue scontrol scancel sinfo srun; do unset -f "$c" 2>/dev/null || true; done
}

# cluster_slurm_start <cpus per host>
cluster_slurm_start() {
  local cpus=$1 mem port_ctld port_d i
  [ -n "$CLUSTER_NS_PREFIX" ] || { _cl_log "FAILED: cluster_slurm_start before cluster_start"; return 1; }
  slurm_check_installed _cl_log || return 1
  local S=$CLUSTER_DIR/slurm
  mkdir -p "$S"/{state,run,munge}
  for ((i = 0; i < CLUSTER_N; i++)); do mkdir -p "$S/spool/h$i" "$S/tmp/h$i"; done
  chown munge:munge "$S/munge"
  chmod 0755 "$S/munge"
  local sock=$S/munge/munge.sock
  mem=$(/usr/sbin/slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  port_ctld=$(slurm_free_port) port_d=$(slurm_free_port)
  {
    cat <<EOF
# Written by tests/cluster/hosts.sh: a $CLUSTER_N-node test cluster on one machine
# (one network namespace per node), no systemd, no cgroups.
ClusterName=boracluster
SlurmctldHost=h0(${CLUSTER_IPS[0]})
SlurmctldPort=$port_ctld
SlurmdPort=$port_d
$(slurm_conf_common "$sock")
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/%n
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd-%n.log
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd-%n.pid
# Node-local temporary space, one per node: srun's pmix plugin makes its
# spmix_appdir_<uid>_<job>.<step> there, and the nodes of this cluster share /tmp.
TmpFS=$S/tmp/%n
# A node that stops answering is DOWN after ${BORA_CLUSTER_SLURMD_TIMEOUT:-10} s (default 300): its jobs
# end (and are requeued when they allow it) promptly.
SlurmdTimeout=${BORA_CLUSTER_SLURMD_TIMEOUT:-10}
EOF
    for ((i = 0; i < CLUSTER_N; i++)); do
      echo "NodeName=h$i NodeAddr=${CLUSTER_IPS[i]} CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  } >"$S/slurm.conf"
  export SLURM_CONF=$S/slurm.conf
  # What a site sets for its users: MPI over the cluster network only (the jobs get
  # it through sbatch's default --export=ALL).
  export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=$BORA_CLUSTER_IF
  _CL_SLURM=1

  # munged runs on h0 (it needs no network: every host reaches its socket, a path),
  # so that, like every process of the cluster, it lives in one of its namespaces.
  _cl_spawn 0 munged setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged --foreground --socket="$sock" --pid-file="$sock.pid" \
    --log-file=/dev/stderr --seed-file="$sock.seed"
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { _cl_fail "munged did not create $sock (see munged.out)"; return 1; }
  _cl_spawn 0 slurmctld /usr/sbin/slurmctld -D -f "$SLURM_CONF"
  for ((i = 0; i < CLUSTER_N; i++)); do
    _cl_spawn "$i" "slurmd-h$i" /usr/sbin/slurmd -D -N "h$i" -f "$SLURM_CONF"
  done
  _cl_define_clients
  # Every node reports in well under a second; allow 30 s for a loaded runner.
  local entry idle
  for _ in $(seq 300); do
    idle=$(sinfo -h -t idle -o %n 2>/dev/null | wc -l)
    ((idle == CLUSTER_N)) && break
    for entry in "${_CL_PIDS[@]}"; do
      kill -0 "${entry##*:}" 2>/dev/null || { entry=${entry#*:}; _cl_fail "${entry%%:*} exited at start (see log/${entry%%:*}.out)"; return 1; }
    done
    sleep 0.1
  done
  ((idle == CLUSTER_N)) || { _cl_fail "$idle of $CLUSTER_N nodes idle after 30 s: $(sinfo -h -N -o '%N=%t' 2>&1 | tr '\n' ' ')"; return 1; }
  _cl_log "slurm up: nodes ${CLUSTER_NAMES[*]} with $cpus CPUs each, controller on h0 (${CLUSTER_IPS[0]}:$port_ctld)"
}

# ---- failures a test can inject ---------------------------------------------------------

# cluster_kill_host <i>: SIGKILLs every process on host i (everything in its netns:
# slurmd, job steps, ranks, orted), as a node that loses power. Its namespace stays
# (a test may look at it); cluster_stop removes it. Prints how many it killed.
cluster_kill_host() {
  local i pids n=0
  i=$(_cl_index "$1") || return 1
  for _ in $(seq 20); do
    pids=$(ip netns pids "${CLUSTER_NS[i]}" 2>/dev/null | tr '\n' ' ')
    [ -n "${pids// /}" ] || break
    # shellcheck disable=SC2086  # a list of PIDs
    kill -KILL $pids 2>/dev/null || true
    n=$((n + $(wc -w <<<"$pids")))
    sleep 0.1
  done
  [ -z "$(ip netns pids "${CLUSTER_NS[i]}" 2>/dev/null)" ] || { _cl_log "host h$i still has processes after SIGKILL"; return 1; }
  _cl_log "host h$i killed ($n processes)"
  echo "$n"
}

# cluster_host_pids <i>: the PIDs now running on host i.
cluster_host_pids() {
  local i
  i=$(_cl_index "$1") || return 1
  ip netns pids "${CLUSTER_NS[i]}" 2>/dev/null | tr '\n' ' '
}

# ---- stop ---------------------------------------------------------------------------------

cluster_stop() {
  local entry rest name pid n i left
  [ -n "$CLUSTER_NS_PREFIX" ] || return 0
  if ((_CL_SLURM)) && _cl_alive slurmctld; then slurm_cancel_all; fi
  for ((n = ${#_CL_PIDS[@]} - 1; n >= 0; n--)); do
    entry=${_CL_PIDS[n]}; rest=${entry#*:}; name=${rest%%:*}; pid=${rest#*:}
    slurm_stop_daemon "$name" "$pid" _cl_log
  done
  # What still runs on a host (job steps, ranks, orted of a failed mpirun) was
  # started there by this cluster: SIGKILL it.
  for ((i = 0; i < CLUSTER_N; i++)); do
    left=$(ip netns pids "${CLUSTER_NS[i]}" 2>/dev/null | tr '\n' ' ')
    if [ -n "${left// /}" ]; then
      _cl_log "h$i: killing what is left: $(for p in $left; do ps -o comm= -p "$p"; done | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
      cluster_kill_host "$i" >/dev/null || true
    fi
  done
  for ((i = 0; i < CLUSTER_N; i++)); do
    ip netns del "${CLUSTER_NS[i]}" 2>/dev/null || _cl_log "could not delete netns ${CLUSTER_NS[i]}"
  done
  ip netns del "$CLUSTER_SW" 2>/dev/null || _cl_log "could not delete netns $CLUSTER_SW"
  left=$(ip netns list | awk -v p="$CLUSTER_NS_PREFIX-" 'index($1, p) == 1 {print $1}' | tr '\n' ' ')
  [ -z "${left// /}" ] || _cl_log "namespaces left behind: $left"
  ((_CL_SLURM)) && _cl_undefine_clients
  _cl_log "stopped: $CLUSTER_N hosts, ${#_CL_PIDS[@]} daemons; namespaces $CLUSTER_NS_PREFIX-* deleted"
  _CL_PIDS=() _CL_SLURM=0 CLUSTER_NS_PREFIX="" CLUSTER_N=0 CLUSTER_NAMES=() CLUSTER_IPS=() CLUSTER_NS=()
}
