#!/usr/bin/env bash
# Runs a bora program on N MPI ranks of this machine (mpirun), or directly for one.
#
#   launch/run.sh [--ranks N] [--threads T] [--bind none|core|socket] [--bin DIR] -- bora-train ARGS...
#
# --threads: intra-op threads per rank (OMP_NUM_THREADS; default: cores / ranks).
# --bind:    mpirun's --bind-to (default none: ranks may share cores on small machines).
# As root, Open MPI needs --allow-run-as-root; oversubscription is allowed so that a
# laptop can run more ranks than cores (slower, but the same result).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ranks=1 threads="" bind=none bin="${BORA_BIN:-$root/build/bin}"
while (($#)); do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bind) bind=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "run.sh: no program given (launch/run.sh --ranks 2 -- bora-train ...)" >&2; exit 2; }
prog=$1; shift
[[ "$prog" == */* ]] || prog="$bin/$prog"
[ -x "$prog" ] || { echo "run.sh: '$prog' is not built (run launch/build.sh)" >&2; exit 2; }
cores=$(nproc)
[ -n "$threads" ] || threads=$(( cores / ranks > 0 ? cores / ranks : 1 ))
export OMP_NUM_THREADS=$threads
if [ "$ranks" -eq 1 ]; then
  exec "$prog" "$@"
fi
extra=()
[ "$(id -u)" -eq 0 ] && extra+=(--allow-run-as-root)
exec mpirun "${extra[@]}" --oversubscribe --bind-to "$bind" -np "$ranks" -x OMP_NUM_THREADS "$prog" "$@"
