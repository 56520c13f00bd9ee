#!/usr/bin/env bash
# A rank killed by a signal (kill -9: no exception, no MPI_Abort of its own) must
# still end the whole job promptly: mpirun notices the lost process and kills the
# others, which would otherwise wait forever in the next all-reduce.
#
#   kill_rank.sh <seconds> <mpiexec> <bora-train> <run dir> [bora-train args...]
# Starts a 2-rank training that would run for hours, waits until it has taken
# steps, kills rank 1 with SIGKILL, and expects a non-zero exit within <seconds>
# and a launcher message naming rank 1.
set -uo pipefail
limit=$1 mpiexec=$2 train=$3 run=$4
shift 4
rm -rf "$run"
mkdir -p "$run"
log="$run/job.log"
"$mpiexec" --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np 2 \
  bash -c 'echo $$ > "$0/pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$run" \
  "$train" --run_dir "$run/out" "$@" >"$log" 2>&1 &
job=$!
# Wait (at most 60 s) until rank 0 has logged 3 steps: both ranks are in the loop.
for _ in $(seq 600); do
  steps=$(grep -c '"step":[0-9]*,"epoch"' "$run/out/metrics.jsonl" 2>/dev/null || true)
  [ "${steps:-0}" -ge 3 ] && [ -s "$run/pid.1" ] && break
  sleep 0.1
done
if [ ! -s "$run/pid.1" ] || [ "${steps:-0}" -lt 3 ]; then
  cat "$log"; echo "FAIL: the job did not start training"; kill -TERM "$job"; exit 1
fi
victim=$(cat "$run/pid.1")
echo "killing rank 1 (pid $victim) after $steps steps"
start=$(date +%s.%N)
kill -9 "$victim"
# Wait for mpirun, but no longer than limit + 30 s.
for _ in $(seq $(((limit + 30) * 10))); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then
  cat "$log"; echo "FAIL: the job still runs $((limit + 30)) s after rank 1 was killed"
  kill -TERM "$job"; sleep 2; kill -9 "$job" 2>/dev/null; exit 1
fi
wait "$job"
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
tail -n 20 "$log"
echo "---- exit code $rc ${elapsed} s after the kill (limit ${limit} s)"
fail=0
if [ "$rc" -eq 0 ]; then echo "FAIL: the job exited 0"; fail=1; fi
if [ "$(echo "$elapsed > $limit" | bc)" -eq 1 ]; then echo "FAIL: took longer than ${limit} s"; fail=1; fi
if ! grep -Eq "rank 1" "$log"; then echo "FAIL: the launcher did not name rank 1"; fail=1; fi
[ "$fail" -eq 0 ] && echo "OK: the job ended after rank 1 was killed"
exit "$fail"
