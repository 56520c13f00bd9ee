#!/usr/bin/env bash
# Runs a command on one host of the one-machine test cluster (tests/cluster/hosts.sh):
# in that host's network namespace, in a fresh UTS namespace carrying the host's
# name, and, for a host started with read-only paths, in a mount namespace of its
# own where those paths are bind-mounted read-only. It takes ssh's place for
# Open MPI (`--mca plm_rsh_agent tests/cluster/agent.sh`) and starts every process
# of hosts.sh, so that each process of a host lives in that host's namespaces.
#
#   agent.sh <host> <command line...>
#
# <host> is a name (h1) or an address (10.x.y.2), as an mpirun hostfile gives it.
# Like ssh, the words after the host are joined into one command line for a shell
# (bash), which is how Open MPI passes the orted command.
# The hosts come from $BORA_CLUSTER_DIR/hosts (one line per host: name, address,
# netns, comma-separated read-only paths or "-"), which cluster_start writes and
# exports; mpirun passes the variable on to the agent it starts.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "agent.sh: usage: agent.sh <host name or address> <command...>" >&2
  exit 255
fi
hosts=${BORA_CLUSTER_DIR:?agent.sh: BORA_CLUSTER_DIR is unset (cluster_start exports it)}/hosts
target=$1
shift
line=$(awk -v t="$target" '$1 == t || $2 == t' "$hosts")
if [ -z "$line" ]; then
  echo "agent.sh: unknown host '$target' (not in $hosts)" >&2
  exit 255
fi
read -r name _ ns ro <<<"$line"
[ -e "/run/netns/$ns" ] || { echo "agent.sh: host $name's namespace $ns is gone" >&2; exit 255; }
unshare_args=(--uts)
[ "$ro" = - ] || unshare_args+=(--mount --propagation private)
# shellcheck disable=SC2016  # expanded by the inner shell
exec nsenter --net="/run/netns/$ns" unshare "${unshare_args[@]}" bash -c '
  set -e
  hostname "$1"
  if [ "$2" != - ]; then
    IFS=, read -ra paths <<<"$2"
    for p in "${paths[@]}"; do mount --bind -o ro "$p" "$p"; done
  fi
  exec bash -c "$3"' agent "$name" "$ro" "$*"
