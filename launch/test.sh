#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite
# (the hf tests against transformers, PEFT, tiktoken and h5py included: a missing
# Python environment is a configure error here, not a skip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/launch/install-deps.sh"
"$root/launch/build.sh" -DBORA_HF_TESTS=ON
cd "${BORA_BUILD_DIR:-$root/build}"
ctest -j "${BORA_TEST_JOBS:-2}" --output-on-failure --timeout 900 "$@"
