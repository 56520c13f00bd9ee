#!/usr/bin/env bash
# README's "Using bora" commands, run as README writes them, so that README cannot
# drift from the tools. The first ```sh block of that section is read from README.md
# itself; each command runs in a scratch folder where the paths it names are small
# stand-ins made here:
#   models/opt-350m      a 2-layer, hidden-64 random OPT (bora-make-model)
#   corpus/              four fortune categories of 200+ fortunes (data_prep's default minimum)
#   configs/sweep-demo.ini   a two-tau sweep over configs/demo-quick.ini cut to 2 epochs
#   --model ... --data ...   the stand-in model and data/mine
#   <task>               education;  some_peft_adapter: the PEFT adapter that run wrote
#   the last line's models/opt-350m: a copy holding only pytorch_model.bin
# Besides each command's exit status, the outputs are checked: perplexity tables,
# generated text, the merged and the converted checkpoints.
#   readme_using.sh README.md BUILD_DIR
set -euo pipefail
readme=$(realpath "$1"); build=$(realpath "$2")
root=$(dirname "$readme")
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$scratch"
ln -s "$build" build; ln -s "$root/launch" launch; ln -s "$root/.deps" .deps
mkdir configs; { cat "$root"/configs/demo-quick.ini; echo "epochs = 2"; } > configs/tiny.ini
printf 'taus = 0,inf\nconfig = configs/tiny.ini\n' > configs/sweep-demo.ini
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

# ---- the stand-ins -------------------------------------------------------------------
build/bin/bora-make-model --out models/opt-350m --keep_merges 3000 --num_layers 2 --hidden_size 64 \
  --ffn_dim 128 --max_positions 256 --seed 1 >/dev/null
mkdir corpus; for t in education law drugs art; do cp /usr/share/games/fortunes/$t corpus/; done
mkdir -p models/pickled
cp models/opt-350m/{config.json,vocab.json,merges.txt} models/pickled/
.deps/venv/bin/python - <<'EOF'
import torch
from safetensors.torch import load_file
torch.save(load_file("models/opt-350m/model.safetensors"), "models/pickled/pytorch_model.bin")
EOF

# ---- README's commands -----------------------------------------------------------------
# The block: from "## Using bora" to its first closing fence; continuation lines joined.
commands=$(awk '/^## Using bora/{s=1} s&&/^```sh/{b=1;next} b&&/^```/{exit} b' "$readme" |
           sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v '^[[:space:]]*#' | grep -v '^[[:space:]]*$')
[ "$(wc -l <<<"$commands")" -ge 8 ] || fail "README's 'Using bora' block not found or too short"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  cmd=${line%%#*}                                                 # a trailing comment
  cmd=${cmd//--model ... --data .../--model models/opt-350m --data data/mine}
  cmd=${cmd//<task>/education}
  cmd=${cmd//some_peft_adapter/runs/tau100/adapters/education}
  [[ "$cmd" == *bin_to_safetensors* ]] && cmd=${cmd//models\/opt-350m/models/pickled}
  echo "+ $cmd" >&2
  bash -c "$cmd" </dev/null >"out.$n" 2>"err.$n" || { rc=$?; cat "err.$n" >&2; fail "README command $n exited $rc: $line"; }
  if [[ "$cmd" == *bora-generate* ]]; then
    [ "$(wc -w <"out.$n")" -ge 5 ] || fail "bora-generate printed no text: $(cat "out.$n")"
  fi
done <<<"$commands"

# ---- what they made --------------------------------------------------------------------
[ -f data/mine/manifest.json ] || fail "data_prep wrote no dataset"
[ -f runs/tau100/results.json ] || fail "bora-train wrote no results"
grep -q '"tau": 100' runs/tau100/results.json || fail "the run is not tau = 100"
for t in 0 inf; do [ -f runs/sweep/tau_$t/results.json ] || fail "the sweep has no tau = $t run"; done
[ -f runs/sweep/report/table1.md ] || fail "bora-report wrote no Table 1"
grep -l '| \*\*overall (macro)\*\*' out.* >/dev/null || fail "no bora-eval perplexity table"
[ -f out/education/config.json ] && [ -f out/education/model.safetensors ] || fail "no merged checkpoint in out/education"
[ -f models/pickled/model.safetensors ] || fail "bin_to_safetensors wrote no model.safetensors"
cmp <(build/bin/bora-eval --model models/pickled --data data/mine --split test | tail -1) \
    <(build/bin/bora-eval --model models/opt-350m --data data/mine --split test | tail -1) ||
  fail "the converted checkpoint does not evaluate as the original"
echo "OK: $n README commands ran as written"
