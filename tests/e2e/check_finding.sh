#!/usr/bin/env bash
# Asserts BoRA's finding on a finished demo sweep (launch/demo.sh --out <dir>):
#   1. the best intermediate tau (0 < tau < inf) has a lower overall (macro)
#      validation perplexity than both tau = 0 and tau = inf (Table 1);
#   2. every run converged (early stopping fired, or a plateau): Table 1 compares
#      values of tau, not runs at different stages of training, and the report
#      gives a verdict;
#   3. the report is complete: Table 1 has one row per run, Table 2 one row per task
#      with its best tau, the plots exist, and the Spearman line is there.
#
#   check_finding.sh <demo out dir> <expected runs> <expected tasks>
set -uo pipefail
dir=$1 runs=$2 tasks=$3
fail() { echo "FAIL: $*"; exit 1; }
csv="$dir/report/table1.csv"
[ -f "$csv" ] || fail "no $csv"
cat "$dir/report/table1.md"
# table1.csv: tau,lr,val_macro_ppl,...
read -r zero inf mid mid_tau < <(awk -F, 'NR > 1 {
    if ($1 == "0") z = $3; else if ($1 == "inf") i = $3; else if (m == "" || $3 < m) { m = $3; t = $1 } }
  END { print z, i, m, t }' "$csv")
echo "tau = 0: $zero, tau = inf: $inf, best intermediate (tau = $mid_tau): $mid"
[ -n "$zero" ] && [ -n "$inf" ] && [ -n "$mid" ] || fail "Table 1 lacks tau = 0, tau = inf or an intermediate tau"
awk -v m="$mid" -v z="$zero" -v i="$inf" 'BEGIN { exit !(m < z && m < i) }' ||
  fail "the best intermediate tau ($mid_tau: $mid) does not beat both tau = 0 ($zero) and tau = inf ($inf)"
unconverged=$(awk -F, 'NR > 1 && $12 != "yes" { printf "%s tau = %s", sep, $1; sep = "," }' "$csv")
[ -z "$unconverged" ] || fail "runs had not converged:$unconverged (see their results.md)"
grep -q "^verdict: tau = " "$dir/report/report.md" || fail "report.md has no verdict line"
[ "$(($(wc -l < "$csv") - 1))" -eq "$runs" ] || fail "Table 1 has $(($(wc -l < "$csv") - 1)) rows, expected $runs"
[ "$(($(wc -l < "$dir/report/table2.csv") - 1))" -eq "$tasks" ] || fail "Table 2 does not have $tasks task rows"
for p in ppl_vs_tau ppl_vs_tau_tasks distance_vs_size gain_vs_size; do
  [ -s "$dir/report/$p.png" ] || fail "no plot $p.png"
done
grep -q "Spearman rank correlation" "$dir/report/report.md" || fail "no Spearman line in report.md"
grep -E "tasks are best at an intermediate tau|Spearman" "$dir/report/report.md"
echo "OK: the best intermediate tau beats both extremes"
