# shellcheck shell=bash
# Continuing the unconverged runs of a tau sweep (sourced by launch/sweep.sh and the
# Slurm sweep scripts, not run).
#
#   bora_unconverged REPORT MAX_EPOCHS DIR...   prints "<dir> <next budget in epochs>"
#                                               for every run that should continue
#
# A run's budget (epochs or max_steps) is an upper bound and early stopping decides
# within it; a run that ended at its budget while its validation NLL was still
# falling is not converged (results.json "converged": false; train/convergence.h).
# It continues from its last checkpoint with the budget doubled, capped at
# MAX_EPOCHS: `bora-train ... --resume auto --epochs <next> --max_steps 0` (the
# budget is a resume-safe key under a constant learning rate). A run already at the
# cap is left as it is: the report marks it, and gives no verdict.
bora_unconverged() {
  local report=$1 max=$2 dir conv epochs next
  shift 2
  local list
  list=$(IFS=,; echo "$*")
  "$report" --runs "$list" --status | while read -r dir conv epochs; do
    [ "$conv" = no ] || continue
    next=$((epochs * 2))
    ((next > max)) && next=$max
    ((next > epochs)) && echo "$dir $next"
  done
  return 0
}

# The budget passed as extra bora-train options would fight the one set here.
bora_check_no_budget_args() {
  local a
  for a in "$@"; do
    case "$a" in
      --epochs|--epochs=*|--max_steps|--max_steps=*)
        echo "continuing unconverged runs sets the budget itself: give epochs in the sweep's config, not '$a'" >&2
        return 2 ;;
    esac
  done
}

# The budget a run folder last trained with (its config.ini), as bora-train options,
# the largest over the given folders; nothing when none has a config.ini yet. A
# requeued continuation must resume with the raised budget, not the sweep config's.
bora_budget_args() {
  local dir e m epochs=0 steps=0 found=0
  for dir in "$@"; do
    [ -f "$dir/config.ini" ] || continue
    found=1
    e=$(sed -n 's/^epochs = //p' "$dir/config.ini" | tail -1)
    m=$(sed -n 's/^max_steps = //p' "$dir/config.ini" | tail -1)
    ((${e:-0} > epochs)) && epochs=${e:-0}
    ((${m:-0} > steps)) && steps=${m:-0}
  done
  ((found)) && echo "--epochs $epochs --max_steps $steps"
  return 0
}
