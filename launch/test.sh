#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/launch/install-deps.sh"
"$root/launch/build.sh"
cd "${BORA_BUILD_DIR:-$root/build}"
ctest -j "${BORA_TEST_JOBS:-2}" --output-on-failure --timeout 900 "$@"
