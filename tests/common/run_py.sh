#!/usr/bin/env bash
# Runs one hf test script with the project's Python (BORA_PYTHON, set by ctest), or
# skips it (exit 77) with a message naming what is missing. See bora_add_py_test.
set -uo pipefail
if [ ! -x "${BORA_PYTHON:-}" ]; then
  echo "SKIP: no Python environment at '${BORA_PYTHON:-}' (transformers, PEFT, tiktoken): run launch/install-deps.sh"
  exit 77
fi
rm -rf "$BORA_TEST_TMP" && mkdir -p "$BORA_TEST_TMP"
"$BORA_PYTHON" "$@"
rc=$?
# Keep the scratch folder of a failed test for inspection.
[ $rc -eq 0 ] && rm -rf "$BORA_TEST_TMP"
exit $rc
