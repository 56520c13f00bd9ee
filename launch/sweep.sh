#!/usr/bin/env bash
# A tau sweep on this machine: one bora-train run per tau (each on --ranks MPI
# ranks), then bora-report over them. Re-running it resumes: finished runs
# (results.json present) are skipped, unfinished ones continue from their newest
# checkpoint (--resume auto).
#
#   launch/sweep.sh --sweep configs/sweep-demo.ini [--out runs/demo] [--ranks 2]
#                   [--prune asha|none] [--until_converged [--max_epochs N]]
#                   [-- extra bora-train args]
#
# The sweep file (INI) holds:  taus = 0,1,10,inf (or auto)   config = configs/demo.ini
# (the bora-train options every run shares, the learning-rate rule among them:
# lr for every tau, or lr = tau * lr_per_tau for 0 < tau < inf when lr_per_tau > 0),
# and optionally prune = asha, prune_eta, prune_min_rungs (launch/sweep-lib.sh).
# --prune: overrides the file's prune. Pruned: runs that fall behind at a rung stop
# there (checkpoint, results.json with "pruned"); the intermediate taus run first.
# --until_converged: runs that ended at their budget while still improving continue
# from their last checkpoint with the budget doubled, until every run has converged
# or reached --max_epochs (default: 4 x the config's epochs); see launch/converge.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sweep="" out="" ranks=1 threads="" until_converged=0 max_epochs="" prune=""
while (($#)); do
  case "$1" in
    --sweep) sweep=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --until_converged) until_converged=1; shift ;;
    --prune) prune=$2; shift 2 ;;
    --max_epochs) max_epochs=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
source "$root/launch/sweep-lib.sh"
BORA_PRUNE=$prune bora_read_sweep "$sweep" "$root" || exit 2
config=$BORA_SWEEP_CONFIG
source "$root/launch/converge.sh"
if ((until_converged)); then
  bora_check_no_budget_args "$@" || exit 2
  if [ -z "$max_epochs" ]; then
    base=$(sed -n "s/^[[:space:]]*epochs[[:space:]]*=[[:space:]]*//p" "$config" | tail -1 | sed 's/[[:space:]]*#.*//')
    max_epochs=$((4 * ${base:-10}))
  fi
  [[ "$max_epochs" =~ ^[1-9][0-9]*$ ]] || { echo "sweep.sh: --max_epochs must be a positive integer, got '$max_epochs'" >&2; exit 2; }
fi
out=${out:-$root/runs/$(basename "$sweep" .ini)}
mkdir -p "$out"
bin=${BORA_BIN:-$root/build/bin}
targs=(--ranks "$ranks"); [ -n "$threads" ] && targs+=(--threads "$threads")
n=${#BORA_TAUS[@]} i=0 start=$(date +%s) runs=()
for tau in "${BORA_TAUS[@]}"; do
  i=$((i + 1))
  run="$out/tau_$tau"
  runs+=("$run")
  if [ -f "$run/results.json" ]; then
    echo "[sweep $i/$n] tau = $tau: done already ($run)" >&2; continue
  fi
  echo "[sweep $i/$n] tau = $tau on $ranks rank(s) -> $run  ($(( $(date +%s) - start )) s so far)" >&2
  "$root/launch/run.sh" "${targs[@]}" -- bora-train --config "$config" --tau "$tau" --run_dir "$run" --resume auto \
    "${BORA_PRUNE_ARGS[@]}" "$@"
done
# Continue what ended at its budget while still improving, until nothing does.
while ((until_converged)); do
  mapfile -t todo < <(bora_unconverged "$bin/bora-report" "$max_epochs" "${runs[@]}")
  ((${#todo[@]})) || break
  for line in "${todo[@]}"; do
    read -r run epochs <<<"$line"
    tau=${run##*/tau_}
    echo "[sweep] tau = $tau had not converged: continuing to $epochs epochs ($(( $(date +%s) - start )) s so far)" >&2
    "$root/launch/run.sh" "${targs[@]}" -- bora-train --config "$config" --tau "$tau" --run_dir "$run" --resume auto \
      --epochs "$epochs" --max_steps 0 "$@"
  done
done
echo "[sweep] all $n runs done in $(( $(date +%s) - start )) s; report:" >&2
"$bin/bora-report" --sweep "$out"
