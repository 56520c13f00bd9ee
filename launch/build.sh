#!/usr/bin/env bash
# Configures and builds bora into build/ (Release, ccache when installed).
# Extra arguments go to CMake, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch for CUDA.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BORA_BUILD_DIR:-$root/build}
jobs=${BORA_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$jobs"
