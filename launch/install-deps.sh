#!/usr/bin/env bash
# Installs what bora needs on a fresh Debian/Ubuntu machine, and nothing when it is
# all there already (dpkg queries and two stamp files: a re-run costs ~0.1 s).
#   - Debian packages: compiler, CMake, Open MPI, HDF5, Boost, GoogleTest,
#     nlohmann-json, xxHash, ccache; gnuplot for the report plots; the fortunes
#     packages (the demo corpus and the tokenizer's multilingual test text); a
#     single-node Slurm + munge for the Slurm tests; python3-venv where python3 is
#     Debian's.
#   - .deps/venv: a Python environment pinned by launch/requirements.txt. Its torch
#     wheel (2.11.0, CUDA 13.0) is the LibTorch bora compiles against (CMake finds it
#     through torch.utils.cmake_prefix_path), and transformers, PEFT, tiktoken,
#     tokenizers and h5py are the references of the `hf` tests and the peer benchmark.
#   - .deps/gpt2: GPT-2's vocab.json and merges.txt, derived from the ranks in the
#     pinned PyPI package openai-whisper (whisper/assets/gpt2.tiktoken) by
#     launch/gpt2_bpe.py, which checks them byte for byte against the SHA-256 of
#     OpenAI's published files; plus tiktoken's offline cache of them.
# Run as root, or with sudo available. BORA_PYTHON picks the interpreter for the venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${BORA_PYTHON:-python3}
venv="$root/.deps/venv"
gpt2="$root/.deps/gpt2"
# openai-whisper's source archive: only its gpt2.tiktoken is used, never its code.
whisper_version=20250625
gpt2_tiktoken_sha256=306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930

packages=(
  build-essential cmake pkg-config ccache git
  libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
  libboost-program-options-dev libgtest-dev libgmock-dev nlohmann-json3-dev libxxhash-dev
  gnuplot-nox
  fortunes fortunes-min fortunes-de fortunes-ru fortunes-zh fortunes-bg fortunes-cs
  fortunes-es fortunes-it fortunes-pl fortunes-br fortunes-ga fortunes-eo
  munge slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins
)
# Debian's python3 keeps venv (ensurepip) in a package of its own.
command -v "$python" >/dev/null && "$python" -c 'import ensurepip' 2>/dev/null || packages+=(python3 python3-venv)

# One dpkg query for all of them; a package it does not list is missing. dpkg-query
# exits 1 when any package is unknown to it, which pipefail and set -e would turn
# into a silent exit of this script: its status is not the answer, its output is.
installed=" $( { dpkg-query -W -f='${Package}=${Status}\n' "${packages[@]}" 2>/dev/null || true; } |
              sed -n 's/=install ok installed$//p' | tr '\n' ' ') "
missing=()
for p in "${packages[@]}"; do [[ "$installed" == *" $p "* ]] || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- the Python environment: reinstalled whenever requirements.txt changes ---------
req="$root/launch/requirements.txt"
stamp="$venv/.bora-requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: Python environment $venv from launch/requirements.txt (torch 2.11.0 with CUDA 13.0: ~3 GB, about a minute)" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
  echo "$want" > "$stamp"
fi

# ---- GPT-2's tokenizer files ------------------------------------------------------
if [ ! -f "$gpt2/.complete" ]; then
  echo "install-deps: GPT-2 vocab.json + merges.txt from openai-whisper==$whisper_version (PyPI)" >&2
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    "openai-whisper==$whisper_version" -d "$tmp"
  tar -xzf "$tmp/openai_whisper-$whisper_version.tar.gz" -C "$tmp" \
    "openai_whisper-$whisper_version/whisper/assets/gpt2.tiktoken"
  ranks="$tmp/openai_whisper-$whisper_version/whisper/assets/gpt2.tiktoken"
  got=$(sha256sum "$ranks" | cut -d' ' -f1)
  [ "$got" = "$gpt2_tiktoken_sha256" ] || {
    echo "install-deps: gpt2.tiktoken has SHA-256 $got, expected $gpt2_tiktoken_sha256" >&2; exit 1; }
  mkdir -p "$gpt2"
  cp "$ranks" "$gpt2/gpt2.tiktoken"
  "$venv/bin/python" "$root/launch/gpt2_bpe.py" "$gpt2/gpt2.tiktoken" "$gpt2"
  touch "$gpt2/.complete"
fi
echo "install-deps: all dependencies present" >&2
