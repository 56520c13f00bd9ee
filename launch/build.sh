#!/usr/bin/env bash
# Configures and builds bora into build/ (Release, ccache when installed), against the
# LibTorch of .deps/venv's torch wheel (launch/install-deps.sh) unless CMake is told
# otherwise. Extra arguments go to CMake, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch
# for a LibTorch zip. BORA_CUDA=ON|OFF|AUTO (default AUTO) decides whether a LibTorch
# or NCCL without CUDA is an error; the configure summary line is always printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BORA_BUILD_DIR:-$root/build}
jobs=${BORA_JOBS:-$(nproc)}
log=$(mktemp); trap 'rm -f "$log"' EXIT
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBORA_CUDA="${BORA_CUDA:-AUTO}" "$@" >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
grep -- '-- bora ' "$log" >&2 || true
cmake --build "$build" -j "$jobs"
