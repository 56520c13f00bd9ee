#!/usr/bin/env bash
# A tau sweep whose runs end at their budget while still improving: the report
# must mark them and refuse a verdict; `launch/sweep.sh --until_converged` then
# continues them from their checkpoints until they converge (early stopping, or a
# plateau within converge_tol), and the report gives a verdict. The continued run equals a run trained with that budget from the
# start (compare_runs, 1e-5). Then a sweep of intermediate taus only (no tau = 0 or
# inf) is reported without error, its plots minus the gain plot.
#
#   sweep_convergence.sh <out dir>      (env: BORA_SOURCE, BORA_BIN, COMPARE_RUNS, FX)
set -uo pipefail
out=$1
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
cat >"$out/tiny.ini" <<INI
model = $FX/model
data = $FX/data
lr = 3e-3
batch_size = 16
micro_batch = 16
adapter_r = 4
adapter_alpha = 8
eval_base = false
# one epoch: still improving when the budget runs out
epochs = 1
patience = 2
log_every = 5
threads = 1
checkpoint_every = 1000
INI
printf 'taus = 0,10,inf\nconfig = %s\n' "$out/tiny.ini" >"$out/sweep.ini"
printf 'taus = 1,10\nconfig = %s\n' "$out/tiny.ini" >"$out/middle.ini"
export BORA_BIN OMP_NUM_THREADS=1

# 1. Unconverged: marked, no verdict.
"$BORA_SOURCE/launch/sweep.sh" --sweep "$out/sweep.ini" --out "$out/sweep" >"$out/1.log" 2>&1 || { cat "$out/1.log"; fail "the sweep failed"; }
grep -q "warn: not converged: the budget ran out while the validation NLL was still falling" "$out/1.log" ||
  { cat "$out/1.log"; fail "bora-train did not warn that its run had not converged"; }
grep -q "^no verdict: runs tau = 0, tau = 10, tau = inf had not converged" "$out/1.log" ||
  { cat "$out/1.log"; fail "the report gave a verdict over unconverged runs"; }
[ "$(cut -d, -f12 "$out/sweep/report/table1.csv" | sort -u | tr '\n' ' ')" = "converged no " ] ||
  fail "table1.csv does not mark every run unconverged: $(cat "$out/sweep/report/table1.csv")"
grep -q '| \*\*no\*\* |' "$out/sweep/report/table1.md" || fail "Table 1 does not mark the unconverged runs"

# 2. Continued to convergence: a verdict.
"$BORA_SOURCE/launch/sweep.sh" --sweep "$out/sweep.ini" --out "$out/sweep" --until_converged --max_epochs 256 \
  >"$out/2.log" 2>&1 || { cat "$out/2.log"; fail "the continued sweep failed"; }
grep -q "had not converged: continuing to 2 epochs" "$out/2.log" || { cat "$out/2.log"; fail "no run was continued"; }
grep -q "^verdict: tau = .* has the lowest validation perplexity" "$out/2.log" ||
  { tail -30 "$out/2.log"; fail "no verdict after the runs were continued to convergence"; }
[ "$(cut -d, -f12 "$out/sweep/report/table1.csv" | sort -u | tr '\n' ' ')" = "converged yes " ] ||
  fail "table1.csv does not mark every run converged: $(cat "$out/sweep/report/table1.csv")"
grep -q '"converged": true' "$out/sweep/tau_10/results.json" || fail "tau = 10's results.json does not say converged"

# 3. The continued run = one trained with its final budget from the start.
epochs=$(sed -n 's/^epochs = //p' "$out/sweep/tau_10/config.ini")
"$BORA_BIN/bora-train" --config "$out/tiny.ini" --tau 10 --epochs "$epochs" --run_dir "$out/straight" \
  >"$out/3.log" 2>&1 || { cat "$out/3.log"; fail "the straight run failed"; }
"$COMPARE_RUNS" --tol 1e-5 "$out/straight" "$out/sweep/tau_10" || fail "the continued run differs from a straight run of $epochs epochs"

# 4. Intermediate taus only.
"$BORA_SOURCE/launch/sweep.sh" --sweep "$out/middle.ini" --out "$out/middle" >"$out/4.log" 2>&1 ||
  { cat "$out/4.log"; fail "a sweep without tau = 0 or inf was not reported"; }
grep -q "neither tau = 0 nor tau = inf: gain_vs_size.png is not drawn" "$out/middle/report/report.md" ||
  fail "report.md does not say why the gain plot is missing"
for p in ppl_vs_tau ppl_vs_tau_tasks distance_vs_size; do
  [ -s "$out/middle/report/$p.png" ] || fail "no $p.png"
done
[ ! -e "$out/middle/report/gain_vs_size.png" ] || fail "a gain plot without tau = 0 or inf"
echo "OK: unconverged runs marked without a verdict, continued to convergence with one; intermediate-only sweep reported"
