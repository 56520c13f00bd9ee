#!/usr/bin/env bash
# The group sweep as a queue under pruning: 2 groups of 1 rank and 4 taus. A first
# run (tau = 1000) starts the board, and three stand-in runs that are far better at
# rungs 1 and 2 are added to it, so that every run of the group job is pruned at
# rung 1 (step 12), whatever the order the groups get there: with 5 to 8 runs at the
# rung, eta 3 keeps 2 or 3, all of them stand-ins.
# Expected: each group trains two taus (a pruned group takes the next tau instead of
# idling), all four runs end pruned at rung 1 with a checkpoint, results.json and
# the board saying so, and bora-report marks them, names tau = 1000 (the one real run
# that was never judged against the stand-ins) and gives the compute line.
#   group_queue.sh <out>     (env: MPIEXEC, BORA_BIN, FX)
set -uo pipefail
out=$1
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
tiny=(--model "$FX/model" --data "$FX/data" --lr 1e-4 --max_steps 24 --batch_size 16 --micro_batch 1 --adapter_r 4
      --adapter_alpha 8 --init_noise 0.01 --eval_base false --patience 0 --eval_every 12 --log_every 100 --threads 1
      --prune asha --prune_min_rungs 1)
"$BORA_BIN/bora-train" "${tiny[@]}" --tau 1000 --run_dir "$out/sweep/tau_1000" > "$out/first.log" 2>&1 ||
  { cat "$out/first.log"; fail "the first run failed"; }
python3 - "$out/sweep/leaderboard.json" <<'PY' || fail "cannot add the stand-in runs to the board"
import json, sys
p = sys.argv[1]; b = json.load(open(p))
for k in range(3):
    b["runs"]["tau_standin%d" % k] = {"tau": 5 + k, "ranks": 1, "pruned": None,
                                      "rungs": {"1": {"step": 12, "ppl": 1.0}, "2": {"step": 24, "ppl": 1.0}}}
json.dump(b, open(p, "w"))
PY
$MPIEXEC --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np 2 "$BORA_BIN/bora-train" "${tiny[@]}" \
  --group_taus 10,100,0,inf --groups 2 --run_dir "$out/sweep" > "$out/groups.log" 2>&1 ||
  { cat "$out/groups.log"; fail "the group job failed"; }
grep -E "group [01]: ranks|pruned at rung|no tau left" "$out/groups.log"
for g in 0 1; do
  n=$(grep -c "group $g: ranks .* train tau" "$out/groups.log")
  [ "$n" -eq 2 ] || fail "group $g trained $n taus, expected 2 (a pruned group takes the next tau)"
done
for tau in 10 100 0 inf; do
  r="$out/sweep/tau_$tau"
  [ -f "$r/results.json" ] || fail "tau = $tau has no results.json"
  python3 -c "import json,sys; j=json.load(open('$r/results.json')); sys.exit(0 if j['pruned'] and j['pruned']['rung']==1 and j['steps']==12 else 1)" ||
    fail "tau = $tau: results.json does not say pruned at rung 1 after 12 steps"
  [ -f "$r/checkpoints/step_00000012/COMPLETE" ] || fail "tau = $tau: no complete checkpoint where it was pruned"
done
python3 -c "import json; b=json.load(open('$out/sweep/leaderboard.json')); assert sorted(k for k,v in b['runs'].items() if v['pruned'])==['tau_0','tau_10','tau_100','tau_inf'], b" ||
  fail "the board does not record the four pruned runs"
"$BORA_BIN/bora-report" --sweep "$out/sweep" --out "$out/report" --plots false > "$out/report.log" 2>&1 ||
  { cat "$out/report.log"; fail "bora-report failed"; }
cat "$out/report.log"
grep -q "pruned (rung 1)" "$out/report/table1.md" || fail "Table 1 does not mark the pruned runs"
grep -Eq "^(no )?verdict: .*tau = 1000" "$out/report/report.md" || fail "the verdict does not name tau = 1000, the one run not pruned"
grep -q "^Compute: .* rank-seconds spent; a full sweep would have spent at most" "$out/report/report.md" || fail "no compute line"
echo "OK: 2 groups worked through 4 taus, all pruned at rung 1 and reported"
