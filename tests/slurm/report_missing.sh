#!/usr/bin/env bash
# bora-report over a sweep with one run folder missing: it must succeed, warn
# naming the missing folder, and tabulate the runs that are there.
#
#   report_missing.sh <bora-report> <run a> <run b> <missing run> <out dir>
set -euo pipefail
report=$1 a=$2 b=$3 missing=$4 out=$5
[ ! -e "$missing" ] || { echo "FAIL: $missing exists; the test needs it missing"; exit 1; }
rm -rf "$out"
log=$out.log
"$report" --runs "$a,$missing,$b" --out "$out" --plots false >"$log" 2>&1 || { cat "$log"; echo "FAIL: bora-report exited non-zero"; exit 1; }
cat "$log"
grep -q "warn.*$missing" "$log" || grep -qi "warning.*$missing" "$log" || { echo "FAIL: no warning naming $missing"; exit 1; }
grep -q "$missing" "$out/report.md" || { echo "FAIL: report.md does not list $missing as missing"; exit 1; }
rows=$(($(wc -l <"$out/table1.csv") - 1))
[ "$rows" -eq 2 ] || { echo "FAIL: table1.csv has $rows rows, expected the 2 runs that exist"; exit 1; }
echo "OK: $missing reported, $rows runs tabulated"
