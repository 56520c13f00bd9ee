#!/usr/bin/env bash
# Asserts what a pruned sweep must reach on a finished `launch/demo.sh --prune` (the
# issue's target): its winner is the full sweep's tau, or within 0.5% of the full
# sweep's best validation perplexity (macro); and pruning did prune: at least one
# run stopped at a rung, and the winner was not one of them. Prints the compute
# line (pruned against full, rank-seconds), which timing noise keeps out of the
# assertions (bench-style figures are measured on idle cores: README).
#
#   check_pruned.sh <demo out dir>
set -uo pipefail
dir=$1
fail() { echo "FAIL: $*"; exit 1; }
full="$dir/report/table1.csv" pruned="$dir/report-pruned/table1.csv"
[ -f "$full" ] || fail "no $full (the full sweep's report)"
[ -f "$pruned" ] || fail "no $pruned (the pruned sweep's report)"
cat "$dir/report-pruned/table1.md"
# table1.csv: tau,lr,val_macro_ppl,...,converged (12),pruned_rung (13),rank_seconds (14)
best() { awk -F, 'NR > 1 && (b == "" || $3 < b) { b = $3; t = $1; r = $13 } END { print t, b, r }' "$1"; }
read -r ftau fppl _ < <(best "$full")
read -r ptau pppl prung < <(best "$pruned")
echo "full sweep: tau = $ftau ($fppl); pruned sweep: tau = $ptau ($pppl)"
[ -n "$ftau" ] && [ -n "$ptau" ] || fail "a table has no runs"
awk -v p="$pppl" -v f="$fppl" 'BEGIN { exit !(p <= f * 1.005) }' ||
  fail "the pruned sweep's winner (tau = $ptau, $pppl) is more than 0.5% above the full sweep's (tau = $ftau, $fppl)"
[ "${prung:-0}" -eq 0 ] || fail "the pruned sweep's winner tau = $ptau was itself pruned"
n=$(awk -F, 'NR > 1 && $13 > 0' "$pruned" | wc -l)
[ "$n" -ge 1 ] || fail "no run of the pruned sweep was pruned: nothing was tested"
grep -E "^(Compute|Against the full sweep)" "$dir/report-pruned/report.md"
echo "OK: the pruned sweep ($n run(s) pruned) picks tau = $ptau, $(awk -v p="$pppl" -v f="$fppl" 'BEGIN { printf "%.2f", 100 * (p / f - 1) }')% from the full sweep's best"
