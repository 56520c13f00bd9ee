#!/usr/bin/env bash
# Runs a command that must FAIL: a non-zero exit within <seconds>, with output
# (stdout + stderr) matching the extended regular expression <regex>. Used for the
# failure tests of a distributed job (a rank that throws, more ranks than tasks):
# the whole job must end promptly, never hang in a collective.
#
#   expect_failure.sh <seconds> <regex> <command> [args...]
set -uo pipefail
limit=$1 regex=$2
shift 2
log=$(mktemp)
start=$(date +%s.%N)
# A hard stop well past the limit, so that a hang fails the test instead of ctest's timeout.
timeout --signal=KILL $((limit + 30)) "$@" >"$log" 2>&1
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
cat "$log"
echo "---- exit code $rc after ${elapsed} s (limit ${limit} s)"
fail=0
if [ "$rc" -eq 0 ]; then echo "FAIL: the job exited 0"; fail=1; fi
if [ "$(echo "$elapsed > $limit" | bc)" -eq 1 ]; then echo "FAIL: took longer than ${limit} s"; fail=1; fi
if ! grep -Eq "$regex" "$log"; then echo "FAIL: no output line matches /$regex/"; fail=1; fi
rm -f "$log"
[ "$fail" -eq 0 ] && echo "OK: failed as expected"
exit "$fail"
