#!/usr/bin/env bash
# Runs every benchmark binary (bench_*) found in a build's bin folder, one after
# the other, with its defaults, and prints each one's output under a header. Fuzz
# targets (fuzz_*) are skipped: they run for minutes, by hand (see bench/CMakeLists.txt).
#
#   bench/run_all.sh [BUILD_DIR] [-- extra args passed to every benchmark]
#
# BUILD_DIR defaults to ./build. OMP_NUM_THREADS defaults to 1 (the benchmarks'
# claims are per core; set it to override). Exit status: the number of benchmarks
# that failed (a benchmark exits non-zero when a claim it checks does not hold).
#
# After the binaries, the script benchmarks: bench/bench_peer.sh (bora-train vs the
# reference's HF + PEFT training; 2 threads of its own, about 34 minutes at full
# size). BORA_BENCH_PEER=0 skips it; BORA_BENCH_PEER_ARGS passes it arguments (e.g.
# --quick). It is skipped with a note when the venv (.deps/venv or BORA_PYTHON) is absent.
set -u

build="${1:-build}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bin="$build/bin"
if [ ! -d "$bin" ]; then
  echo "run_all.sh: no folder $bin (build first: cmake --build $build)" >&2
  exit 2
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

found=0
failed=()
for exe in "$bin"/bench_*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  name="$(basename "$exe")"
  found=$((found + 1))
  echo "================================================================================"
  echo "== $name   ($(date '+%F %T'), load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_NUM_THREADS=$OMP_NUM_THREADS)"
  echo "================================================================================"
  start=$(date +%s)
  "$exe" "$@"
  rc=$?
  echo "-- $name: exit $rc, $(( $(date +%s) - start )) s"
  echo
  [ $rc -ne 0 ] && failed+=("$name (exit $rc)")
done

# Script benchmarks (not binaries): bench_peer.
here=$(cd "$(dirname "$0")" && pwd)
py=${BORA_PYTHON:-$here/../.deps/venv/bin/python}
if [ "${BORA_BENCH_PEER:-1}" != 0 ] && [ $found -gt 0 ]; then
  echo "================================================================================"
  echo "== bench_peer.sh   ($(date '+%F %T'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "================================================================================"
  if [ -x "$py" ]; then
    start=$(date +%s)
    # shellcheck disable=SC2086
    BORA_PYTHON="$py" "$here/bench_peer.sh" --build "$build" ${BORA_BENCH_PEER_ARGS:-}
    rc=$?
    echo "-- bench_peer.sh: exit $rc, $(( $(date +%s) - start )) s"
    echo
    found=$((found + 1))
    [ $rc -ne 0 ] && failed+=("bench_peer.sh (exit $rc)")
  else
    echo "-- bench_peer.sh: skipped (no Python at $py: launch/install-deps.sh)"
    echo
  fi
fi

if [ $found -eq 0 ]; then
  echo "run_all.sh: no bench_* binary in $bin" >&2
  exit 2
fi
echo "ran $found benchmark(s); ${#failed[@]} failed${failed:+: ${failed[*]}}"
exit ${#failed[@]}
