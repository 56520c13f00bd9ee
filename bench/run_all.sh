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

if [ $found -eq 0 ]; then
  echo "run_all.sh: no bench_* binary in $bin" >&2
  exit 2
fi
echo "ran $found benchmark(s); ${#failed[@]} failed${failed:+: ${failed[*]}}"
exit ${#failed[@]}
