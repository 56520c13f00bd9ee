#!/usr/bin/env bash
# The one command of the GPU host (docs/gpu.md): builds bora against the host's
# torch, then runs four stages and writes ONE result, results.json + results.md (and
# run.log, everything printed), into OUTDIR. A failing stage never stops the later
# ones; each has a time limit, and the whole run ends within 8 minutes.
#
#   bench/gpu/run.sh [--cpu] [--build DIR] [OUTDIR]
#
#   OUTDIR      where results.json, results.md and run.log go (default: $OUT)
#   --cpu       the dry run: tiny shapes on the CPU, every stage, the same files (CI:
#               ctest gpu_bench_dryrun, label gpu-dryrun)
#   --build DIR an existing build to use (or BORA_BUILD_DIR); without it the GPU run
#               configures and builds build-gpu/ (Ninja, Release, BORA_CUDA=ON,
#               TORCH_CUDA_ARCH_LIST 9.0, BORA_PYTHON = the host's python3): the
#               targets the stages run only
#
# Environment: BORA_PYTHON (the Python with torch, transformers, peft, h5py; default
# /opt/torch/.venv/bin/python3 on the GPU host, .deps/venv in the dry run),
# BORA_SCRATCH (models and datasets; default a fresh folder under /tmp, removed at
# the end unless BORA_KEEP_SCRATCH=1), BORA_TIME_LIMIT (seconds for the whole run;
# default 470 on the GPU, 170 in the dry run).
#
# Stages and their time limits on the GPU (each also shortened so that the later
# ones keep their minimum): build 300 s, 1 tests 150 s, 2 throughput 120 s,
# 3 mfu 90 s, 4 capacity 120 s.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=gpu
build=${BORA_BUILD_DIR:-}
outdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) mode=cpu ;;
    --build) build=$2; shift ;;
    --build=*) build=${1#--build=} ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) outdir=$1 ;;
  esac
  shift
done
outdir=${outdir:-${OUT:-}}
[ -n "$outdir" ] || { echo "run.sh: no OUTDIR given and \$OUT is unset" >&2; exit 2; }
mkdir -p "$outdir" && outdir=$(cd "$outdir" && pwd)
start=$(date +%s)
limit=${BORA_TIME_LIMIT:-$([ $mode = gpu ] && echo 470 || echo 170)}

if [ -z "${BORA_PYTHON:-}" ]; then
  if [ $mode = gpu ] && [ -x /opt/torch/.venv/bin/python3 ]; then BORA_PYTHON=/opt/torch/.venv/bin/python3
  elif [ -x "$root/.deps/venv/bin/python3" ]; then BORA_PYTHON=$root/.deps/venv/bin/python3
  else BORA_PYTHON=$(command -v python3); fi
fi
if ! "$BORA_PYTHON" -c 'import torch, transformers, peft, h5py' 2>/dev/null; then
  echo "SKIP: $BORA_PYTHON lacks torch, transformers, peft or h5py (launch/install-deps.sh)"
  exit 77
fi
export BORA_PYTHON
scratch=${BORA_SCRATCH:-$(mktemp -d /tmp/bora-gpu-bench.XXXXXX)}
mkdir -p "$scratch" && rm -f "$scratch"/stage_*.json "$scratch"/rc_*
logf=$outdir/run.log
: >"$logf"
exec > >(tee -a "$logf") 2>&1

say() { echo "[$(date +%H:%M:%S)] run.sh: $*"; }
left() { echo $(( limit - ($(date +%s) - start) )); }
# stage_limit WANT RESERVE: WANT seconds, but leave RESERVE for the stages after it.
stage_limit() { local l=$(( $(left) - $2 )); [ $l -gt $1 ] && l=$1; [ $l -lt 10 ] && l=10; echo $l; }

say "mode $mode, output $outdir, scratch $scratch, python $BORA_PYTHON, time limit ${limit} s"
[ $mode = gpu ] && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true; }
for t in cmake ctest ninja nvcc mpirun pkg-config; do printf '  %-10s %s\n' "$t" "$(command -v $t || echo MISSING)"; done

# ---- build ----------------------------------------------------------------------------
b0=$(date +%s)
build_status=pass
build_note=""
if [ -n "$build" ]; then
  build=$(cd "$build" && pwd)
  build_status=skipped
  build_note="used the existing build $build"
  for t in bora-train bora-eval data_prep gpu_step_bench; do
    [ -x "$build/bin/$t" ] || { build_status=fail; build_note="$build lacks bin/$t"; }
  done
else
  build=$root/build-gpu
  # What the stages run, and nothing else (the other tests and benchmarks would
  # double the build's minutes).
  targets=(bora-train bora-eval data_prep bora-make-model gpu_step_bench test_device_comm opt_logprobs compare_runs)
  gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  [ -f "$build/CMakeCache.txt" ] && gen=()
  say "configuring $build"
  if timeout "$(stage_limit 300 240)" cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBORA_CUDA=ON \
       -DBORA_PYTHON="$BORA_PYTHON" -DBORA_HF_TESTS=ON -DTORCH_CUDA_ARCH_LIST=9.0 >"$scratch/configure.log" 2>&1 &&
     timeout "$(stage_limit 300 240)" cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"; then
    build_note="built $build ($(grep -o -- '-- bora .*' "$scratch/configure.log" | head -1))"
  else
    build_status=fail
    build_note="configure or build failed (run.log)"
    tail -40 "$scratch/configure.log"
  fi
fi
b1=$(date +%s)
say "build: $build_status in $((b1 - b0)) s: $build_note"
device_name=$("$BORA_PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")' 2>/dev/null)
RUN_START=$start "$BORA_PYTHON" - "$scratch/run_meta.json" "$mode" "$build_status" "$((b1 - b0))" "$build_note" "$device_name" "$limit" <<'PY'
import json, sys, time, platform, os
out, mode, status, secs, note, dev, limit = sys.argv[1:]
import torch
json.dump({"mode": mode, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.environ["RUN_START"]))),
           "started_epoch": int(os.environ["RUN_START"]), "device_name": dev,
           "host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__, "time_limit_s": int(limit),
           "build": {"status": status, "seconds": int(secs), "note": note}}, open(out, "w"), indent=1)
PY

# ---- stages -----------------------------------------------------------------------------
# name want reserve (the minimum left for the stages after it)
run_stage() {
  local name=$1 want=$2 reserve=$3
  local l; l=$(stage_limit "$want" "$reserve")
  say "stage $name (limit $l s)"
  local s0; s0=$(date +%s)
  timeout -k 5 "$l" "$BORA_PYTHON" -u "$root/bench/gpu/gpu_bench.py" "$name" --mode $mode --build "$build" \
    --scratch "$scratch" --out "$outdir" --budget "$l"
  local rc=$?
  echo "$rc $(( $(date +%s) - s0 ))" >"$scratch/rc_$name"
  say "stage $name: exit $rc after $(( $(date +%s) - s0 )) s"
}
if [ $mode = gpu ]; then
  run_stage tests 150 200; run_stage throughput 120 110; run_stage mfu 90 60; run_stage capacity 120 0
else
  run_stage tests 120 40; run_stage throughput 60 25; run_stage mfu 40 15; run_stage capacity 40 0
fi

"$BORA_PYTHON" "$root/bench/gpu/gpu_bench.py" report --scratch "$scratch" --out "$outdir"
rc=0
if [ $mode = cpu ]; then
  "$BORA_PYTHON" "$root/bench/gpu/gpu_bench.py" check --scratch "$scratch" --out "$outdir" || rc=1
fi
say "done in $(( $(date +%s) - start )) s: $outdir/results.json, results.md, run.log"
[ -z "${BORA_SCRATCH:-}" ] && [ "${BORA_KEEP_SCRATCH:-0}" != 1 ] && rm -rf "$scratch"
exit $rc
