# shellcheck shell=bash
# Reading a sweep file (sourced by launch/sweep.sh and slurm/lib.sh, not run).
#
#   bora_read_sweep FILE [ROOT]   sets BORA_TAUS (in the order the runs start),
#                                 BORA_SWEEP_CONFIG (absolute; a relative path is
#                                 ROOT's, default $BORA_ROOT or .), BORA_PRUNE_KIND
#                                 and BORA_PRUNE_ARGS (bora-train options); returns 2
#                                 with one line on stderr when the file cannot work
#
# A sweep file (configs/sweep-*.ini):
#   taus = 0,1,10,100,inf      or  taus = auto
#   config = configs/demo.ini  the bora-train options every run shares
#   prune = asha               optional (default none; $BORA_PRUNE overrides it):
#   prune_eta = 3              successive halving across the runs (train/prune.h,
#   prune_min_rungs = 2        docs/bora.md "Pruned sweeps")
#
# taus = auto is the grid 0, 0.1, 1, 10, 100, 1000, 10000, inf: the two baselines
# and every power of ten between, the range in which the paper's sweeps and ours
# found their best tau. Under pruning a wide grid is cheap: most runs stop early.
#
# The order: as written, except under pruning, where the runs start with the
# intermediate taus, ascending, and end with tau = 0 and tau = inf. Asynchronous
# successive halving never prunes the first run to reach a rung and prunes late
# arrivals hardest; the baselines are the runs BoRA exists to beat, so they come
# last, when there is the most to compare them with.
BORA_AUTO_TAUS="0,0.1,1,10,100,1000,10000,inf"

_bora_sweep_error() {
  if declare -F bora_log >/dev/null; then bora_log "error: $*"; else echo "sweep: $*" >&2; fi
}

bora_read_sweep() {
  local file=$1 root=${2:-${BORA_ROOT:-$PWD}} raw tau
  [ -f "$file" ] || { _bora_sweep_error "sweep file '$file' not found"; return 2; }
  _key() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$file" | tail -1 | sed 's/[[:space:]]*#.*//;s/[[:space:]]*$//'; }
  raw=$(_key taus)
  [ "$raw" = auto ] && raw=$BORA_AUTO_TAUS
  BORA_SWEEP_CONFIG=$(_key config)
  BORA_TAUS=()
  IFS=',' read -ra _items <<<"$raw"
  for tau in "${_items[@]}"; do
    tau=$(echo "$tau" | tr -d '[:space:]')
    [ -n "$tau" ] || continue
    [[ "$tau" =~ ^(inf|[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?)$ ]] ||
      { _bora_sweep_error "'$tau' in $file (taus = $raw) is not a tau >= 0 (or inf)"; return 2; }
    BORA_TAUS+=("$tau")
  done
  ((${#BORA_TAUS[@]})) || { _bora_sweep_error "$file has an empty tau list (taus = '$raw'); write e.g. taus = 0,1,10,inf or taus = auto"; return 2; }
  [ -n "$BORA_SWEEP_CONFIG" ] || { _bora_sweep_error "$file has no 'config = ...' line"; return 2; }
  case "$BORA_SWEEP_CONFIG" in /*) ;; *) BORA_SWEEP_CONFIG="$root/$BORA_SWEEP_CONFIG" ;; esac
  [ -f "$BORA_SWEEP_CONFIG" ] || { _bora_sweep_error "config '$BORA_SWEEP_CONFIG' named in $file not found"; return 2; }
  BORA_PRUNE_KIND=${BORA_PRUNE:-$(_key prune)}
  BORA_PRUNE_KIND=${BORA_PRUNE_KIND:-none}
  BORA_PRUNE_ARGS=()
  case "$BORA_PRUNE_KIND" in
    none) ;;
    asha)
      BORA_PRUNE_ARGS=(--prune asha)
      local eta min
      eta=$(_key prune_eta) min=$(_key prune_min_rungs)
      [ -n "$eta" ] && BORA_PRUNE_ARGS+=(--prune_eta "$eta")
      [ -n "$min" ] && BORA_PRUNE_ARGS+=(--prune_min_rungs "$min")
      local mid=() t
      for t in "${BORA_TAUS[@]}"; do [[ "$t" =~ ^(inf|0+([.]0*)?)$ ]] || mid+=("$t"); done
      mapfile -t BORA_TAUS < <({
        ((${#mid[@]})) && printf '%s\n' "${mid[@]}" | sort -g
        for t in "${BORA_TAUS[@]}"; do [[ "$t" =~ ^0+([.]0*)?$ ]] && echo "$t"; done
        for t in "${BORA_TAUS[@]}"; do [ "$t" = inf ] && echo "$t"; done
      } | awk '!seen[$0]++')
      ;;
    *) _bora_sweep_error "prune = '$BORA_PRUNE_KIND' in $file (or \$BORA_PRUNE): choose none or asha"; return 2 ;;
  esac
  return 0
}
