#!/usr/bin/env bash
# The shared fixture of the distributed tests (ctest FIXTURES_SETUP dist_data): a
# tiny random OPT (2 layers, hidden 64, GPT-2's first 2000 merges) and a dataset of
# four Debian fortune files (one task each, 15..34 training sequences), built once
# into the build tree. It also empties <out>/runs, where the run tests write.
#
#   make_fixture.sh <bora-make-model> <data_prep> <gpt-2 encoder folder> <out dir>
set -euo pipefail
make_model=$1 data_prep=$2 enc=$3 out=$4
rm -rf "$out"
mkdir -p "$out/corpus" "$out/runs"
for f in magic pets goedel medicine; do cp "/usr/share/games/fortunes/$f" "$out/corpus/"; done
"$make_model" --out "$out/model" --vocab "$enc/vocab.json" --merges "$enc/merges.txt" \
  --keep_merges 2000 --hidden_size 64 --num_layers 2 --num_heads 4 --ffn_dim 128 --max_positions 128 --seed 3
"$data_prep" --input "$out/corpus" --tokenizer "$out/model" --out "$out/data" \
  --min_docs 0 --max_docs 0 --max_len 64 --max_tasks 0 --threads 1 --progress false
test -f "$out/data/manifest.json"
echo "fixture ready in $out"
