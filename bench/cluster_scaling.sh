#!/usr/bin/env bash
# Weak scaling across hosts, in one run: the same number of ranks, and so the same
# tasks per rank, on 1 host (shared memory between all ranks) and spread over H
# hosts (TCP between hosts), on the one-machine cluster of tests/cluster/hosts.sh.
# Prints the medians of each run's per-step metrics side by side and the ratio:
# what crossing hosts costs a step. On one machine the hosts share the cores and
# the "network" is a veth pair through a bridge, so this measures the launcher and
# transport overhead, not a real interconnect (docs/cluster.md).
#
#   bench/cluster_scaling.sh --bin build/bin --fx build/tests/dist/fixture --out /tmp/scaling \
#       [--ranks 4] [--hosts 2] [--steps 24] [--config tiny.ini] [-- bora-train options]
#
# --fx: a folder with model/ and data/ (the dist fixture, tests/dist/make_fixture.sh);
# --config: a bora-train config instead (then --fx is not needed). Output rows:
#   layout hosts*ranks_per_host | step_s | allreduce_s | tokens_per_s | steps
# then "step time ratio <H>x<R/H> / 1x<R>: <r>" and the tokens/s ratio.
# Needs root (network namespaces) and Open MPI.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="" fx="" out="" ranks=4 hosts=2 steps=24 config=""
while (($#)); do
  case "$1" in
  --bin) bin=$2; shift 2 ;;
  --fx) fx=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --ranks) ranks=$2; shift 2 ;;
  --hosts) hosts=$2; shift 2 ;;
  --steps) steps=$2; shift 2 ;;
  --config) config=$2; shift 2 ;;
  --) shift; break ;;
  *) echo "cluster_scaling.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$bin/bora-train" ] || { echo "cluster_scaling.sh: no bora-train in --bin '$bin'" >&2; exit 2; }
[ -n "$out" ] || { echo "cluster_scaling.sh: --out <folder> is required" >&2; exit 2; }
((ranks % hosts == 0)) || { echo "cluster_scaling.sh: --ranks $ranks is not a multiple of --hosts $hosts" >&2; exit 2; }
per=$((ranks / hosts))
source "$here/tests/cluster/hosts.sh"
source "$here/tests/common/tiny_run.sh"
trap cluster_stop EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
rm -rf "$out"
mkdir -p "$out"
if [ -z "$config" ]; then
  if [ ! -d "$fx/model" ] || [ ! -d "$fx/data" ]; then
    echo "cluster_scaling.sh: --fx '$fx' has no model/ and data/ (or give --config)" >&2
    exit 2
  fi
  config=$out/tiny.ini
  { tiny_run_ini "$fx" "$steps"; printf 'tau = 10\neval_every = 1000000\n'; } >"$config"
fi
cluster_start "$out/cluster" "$hosts" >&2 || { echo "cluster_scaling.sh: the cluster did not start" >&2; exit 1; }
declare -A stats
for layout in "1 $ranks" "$hosts $per"; do
  read -r h r <<<"$layout"
  name=${h}x$r
  cluster_hostfile "$out/hosts_$name" "$r" "$h"
  cluster_mpirun "$out/hosts_$name" -np "$ranks" "$bin/bora-train" --config "$config" --run_dir "$out/$name" "$@" \
    >"$out/$name.log" 2>&1 || { tail -20 "$out/$name.log" >&2; echo "cluster_scaling.sh: the $name run failed" >&2; exit 1; }
  stats[$name]=$(cluster_run_stats "$out/$name")
done
one=1x$ranks many=${hosts}x$per
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"${stats[$2]}"; }
echo "# $ranks ranks, same tasks per rank; medians over steps 2..$steps (metrics.jsonl)"
printf '%-7s %10s %12s %12s %6s\n' layout step_s allreduce_s tokens_per_s steps
for name in "$one" "$many"; do
  printf '%-7s %10s %12s %12s %6s\n' "$name" "$(field step_s "$name")" "$(field allreduce_s "$name")" \
    "$(field tokens_per_s "$name")" "$(field steps "$name")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "step time ratio $many / $one: $(ratio "$(field step_s "$many")" "$(field step_s "$one")")"
echo "tokens/s ratio $many / $one: $(ratio "$(field tokens_per_s "$many")" "$(field tokens_per_s "$one")")"
