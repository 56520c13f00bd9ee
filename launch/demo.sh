#!/usr/bin/env bash
# README command 1: BoRA's finding, end to end, on text that Debian ships.
#
#   launch/demo.sh [--quick] [--corpus en|ru] [--out demo] [--ranks 2] [--prune]
#
# Stages (a progress line names each): install what is missing; build; make the
# corpora from the categories of the `fortunes` packages: the TASKS (categories from
# tens to hundreds of documents each, like the paper's speakers) and a separate
# PRETRAINING corpus (other English categories: the base never sees a task's
# document, of any split); make a tokenizer (GPT-2's byte-level BPE cut to its first
# merges) and a small OPT; prepare both into HDF5 shards (tasks: 50/25/25 split per
# task); pretrain the base; sweep tau over configs/sweep-<variant>.ini on 2 ranks
# with one lr for every tau, Theta in the non-centred coordinates and early stopping;
# print Table 1 and Table 2 and write the plots beside them. Everything lands in --out
# (default demo/); re-running resumes where it stopped.
#   --quick      8 tasks, a smaller pretraining corpus, taus 0, 10, 100, inf: about 4 minutes on 2 idle cores
#                (the full demo: about 15 minutes after the build)
#   --corpus ru  the second corpus: Russian fortune categories as the tasks, over the
#                same English-pretrained base with the same recipe (configs unchanged;
#                never used for tuning; default out: demo-ru)
#   --variant V  configs/V*.ini and V's task list (demo, demo-quick)
#   --prune      then the same sweep pruned by ASHA (eta 3, from rung 2) into <out>/runs-pruned, and its
#                report against the full one in <out>/report-pruned: compute spent and winner, side by side
#   --no-setup   skip the install and build stages (the tests use it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="" variant=demo ranks=2 setup=1 corpus=en prune=0
while (($#)); do
  case "$1" in
    --quick) variant=demo-quick; shift ;;
    --variant) variant=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --no-setup) setup=0; shift ;;
    --prune) prune=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# Pretraining corpus: English categories that are not tasks.
pretrain_corpus="songs-poems men-women knghtbrd miscellaneous humorists tao platitudes fortunes debian disclaimer paradoxum"
case "$variant" in
  # 16 categories, 15 to 289 training documents (1,623 sequences): sized so that all six
  # runs of the sweep reach early stopping within the 30-minute target on 2 cores.
  demo) tasks="magic goedel pets news medicine linuxcookie riddles kids food law startrek perl linux zippy art science" ;;
  demo-quick) tasks="magic pets goedel medicine kids food linux art"
              pretrain_corpus="men-women knghtbrd miscellaneous humorists tao platitudes" ;;
  *) echo "demo.sh: unknown variant '$variant' (demo, demo-quick)" >&2; exit 2 ;;
esac
# The second corpus: Russian categories from 37 to 834 fortunes (18 to 417 training
# documents), chosen by size and topic before any run, never tuned on.
tasks_dir=/usr/share/games/fortunes
case "$corpus" in
  en) ;;
  ru) tasks_dir=/usr/share/games/fortunes/ru
      tasks="human_being haiku if genious citates programming sympathy happy war success art work wealth treason
             murphy life friendship computer knowledge love"
      [ "$variant" = demo-quick ] && tasks="human_being if genious programming war work murphy love" ;;
  *) echo "demo.sh: unknown corpus '$corpus' (en, ru)" >&2; exit 2 ;;
esac
if [ -z "$out" ]; then
  out="$root/demo"
  if [ "$variant" = demo-quick ]; then out+=-quick; fi
  if [ "$corpus" = ru ]; then out+=-ru; fi
fi
for f in "$variant.ini" "$variant-model.ini" "$variant-prep.ini" "$variant-pretrain.ini" "sweep-$variant.ini"; do
  [ -f "$root/configs/$f" ] || { echo "demo.sh: missing configs/$f" >&2; exit 2; }
done
[[ "$out" = /* ]] || out="$(pwd)/$out"
bin="${BORA_BIN:-$root/build/bin}"
t0=$(date +%s)
declare -A stage_s
stage() { echo; echo "=== [demo $1/$((7 + prune))] $2  ($(( $(date +%s) - t0 )) s elapsed)" >&2; }
timed() { local name=$1; shift; local s=$(date +%s); "$@"; stage_s[$name]=$(( $(date +%s) - s )); }

stage_s[install]=0 stage_s[build]=0 stage_s[pruned]=0
if [ $setup -eq 1 ]; then
  stage 1 "installing what is missing"; timed install "$root/launch/install-deps.sh"
  stage 2 "building bora"; timed build "$root/launch/build.sh"
fi

stage 3 "making the corpora: $(echo $tasks | wc -w) fortune categories as tasks, $(echo $pretrain_corpus | wc -w) others for pretraining"
mkdir -p "$out/corpus" "$out/pretrain_corpus"
for t in $tasks; do
  [ -f "$tasks_dir/$t" ] || { echo "demo.sh: no fortune file $tasks_dir/$t (launch/install-deps.sh installs the fortunes packages)" >&2; exit 2; }
  cp "$tasks_dir/$t" "$out/corpus/$t"
done
for t in $pretrain_corpus; do cp "/usr/share/games/fortunes/$t" "$out/pretrain_corpus/$t"; done

stage 4 "tokenizer + initial model, and the tasks into HDF5 shards"
cfg() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$root/configs/$variant-model.ini" | tail -1; }
prep() {
  [ -f "$out/init/config.json" ] || "$bin/bora-make-model" --config "$root/configs/$variant-model.ini" --out "$out/init" \
    --vocab "$root/.deps/gpt2/vocab.json" --merges "$root/.deps/gpt2/merges.txt"
  [ -f "$out/data/manifest.json" ] || "$bin/data_prep" --config "$root/configs/$variant-prep.ini" --input "$out/corpus" \
    --tokenizer "$out/init" --out "$out/data" --progress false
  # The pretraining corpus: 90% to train on, the rest to watch its perplexity.
  [ -f "$out/pretrain_data/manifest.json" ] || "$bin/data_prep" --config "$root/configs/$variant-prep.ini" \
    --input "$out/pretrain_corpus" --tokenizer "$out/init" --out "$out/pretrain_data" --split_fractions 0.9,0.05,0.05 \
    --progress false
}
timed prep prep

stage 5 "pretraining the base on the pretraining corpus"
pretrain() {
  [ -f "$out/base/config.json" ] || OMP_NUM_THREADS=$(nproc) "$bin/bora-pretrain" --config "$root/configs/$variant-pretrain.ini" \
    --model "$out/init" --data "$out/pretrain_data" --out "$out/base"
}
timed pretrain pretrain

stage 6 "tau sweep on $ranks ranks ($(sed -n 's/^taus *= *//p' "$root/configs/sweep-$variant.ini"))"
timed sweep "$root/launch/sweep.sh" --sweep "$root/configs/sweep-$variant.ini" --out "$out/runs" --ranks "$ranks" \
  -- --model "$out/base" --data "$out/data" > "$out/sweep.log"

stage 7 "report"
timed report "$bin/bora-report" --sweep "$out/runs" --out "$out/report"
if ((prune)); then
  stage 8 "the same sweep pruned by ASHA -> $out/runs-pruned, reported against the full one"
  pruned_sweep() {
    "$root/launch/sweep.sh" --sweep "$root/configs/sweep-$variant.ini" --out "$out/runs-pruned" --ranks "$ranks" \
      --prune asha -- --model "$out/base" --data "$out/data" > "$out/sweep-pruned.log"
    "$bin/bora-report" --sweep "$out/runs-pruned" --full "$out/runs" --out "$out/report-pruned"
  }
  timed pruned pruned_sweep
fi
total=$(( $(date +%s) - t0 ))
{
  echo
  echo "Stage times: install ${stage_s[install]} s, build ${stage_s[build]} s, prep ${stage_s[prep]} s," \
       "pretrain ${stage_s[pretrain]} s, sweep ${stage_s[sweep]} s, report ${stage_s[report]} s," \
       "pruned sweep ${stage_s[pruned]} s; total $total s."
  echo "Tables and plots: $out/report/ (report.md, table1.md, table2.md, *.png)"
} | tee -a "$out/report/report.md"
