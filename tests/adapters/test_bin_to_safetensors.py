"""PyTorch pickles (*.bin) -> safetensors with launch/bin_to_safetensors.py.

bora never unpickles: a model folder with only pytorch_model.bin and an adapter
folder with only adapter_model.bin (PEFT's older default) are refused with one line
that names the conversion command (exit 3). After the conversion bora gives the
NLL that transformers / PEFT give on the ORIGINAL .bin files (the reference loads
them before converting), 1e-5 relative. Covers a single pytorch_model.bin with tied
embeddings (lm_head.weight shares the embedding's storage), the sharded
pytorch_model-0000k-of-0000n.bin + index layout, and adapter_model.bin.
"""
import json
import os
import shutil
import subprocess
import sys

import torch

import peft_util as U
from bora_testing import SOURCE, check, main, run

SPLIT = "validation"
SCRIPT = os.path.join(SOURCE, "launch", "bin_to_safetensors.py")


def setup():
    U.in_scratch_with_base_and_data()


def convert(*paths, expect=0):
    p = subprocess.run([sys.executable, SCRIPT, *paths], capture_output=True, text=True)
    check(p.returncode == expect, f"bin_to_safetensors.py {' '.join(paths)} exited {p.returncode}:", p.stdout, p.stderr)
    return p


def refused_until_converted(model_dir, adapter=None):
    args = ["--model", model_dir, "--data", "data"] + (["--adapter", adapter] if adapter else [])
    p = run("bora-eval", *args, expect=3)
    folder = adapter or model_dir
    check(len(p.stderr.strip().splitlines()) == 1 and "launch/bin_to_safetensors.py " + folder in p.stderr,
          "the refusal does not name the conversion command:", p.stderr)
    convert(folder)


def bin_model(folder, state_dicts):
    """A model folder as transformers 4 wrote it with safe_serialization=False."""
    os.makedirs(folder)
    for f in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(os.path.join("base", f), folder)
    if len(state_dicts) == 1:
        torch.save(state_dicts[0], os.path.join(folder, "pytorch_model.bin"))
        return
    weight_map = {}
    for i, sd in enumerate(state_dicts):
        name = f"pytorch_model-{i + 1:05d}-of-{len(state_dicts):05d}.bin"
        torch.save(sd, os.path.join(folder, name))
        weight_map.update({k: name for k in sd})
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


def test_pytorch_model_bin():
    state = U.load_base("base").state_dict()
    check(state["lm_head.weight"].data_ptr() == state["model.decoder.embed_tokens.weight"].data_ptr(),
          "the test model's embeddings are not tied")
    bin_model("single", [state])
    keys = sorted(state)
    bin_model("sharded", [{k: state[k] for k in keys[: len(keys) // 2]}, {k: state[k] for k in keys[len(keys) // 2:]}])
    for folder in ("single", "sharded"):
        want = U.reference_nll(U.load_base(folder), "data", SPLIT)  # transformers reads the .bin itself
        refused_until_converted(folder)
        U.compare(f"bora-eval of converted {folder} vs transformers on the .bin", U.bora_nll(folder, "data", SPLIT),
                  want)
    check(os.path.exists("sharded/model.safetensors.index.json"), "the sharded model got no safetensors index")
    p = convert("single", expect=2)
    check("--force" in p.stderr, "converting twice does not refuse to overwrite:", p.stderr)


def test_adapter_model_bin():
    from peft import LoraConfig

    model = U.train_peft("base", "data", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained("adapter", safe_serialization=False)
    check(os.listdir("adapter").count("adapter_model.bin") == 1, "PEFT did not write adapter_model.bin")
    want = U.reference_nll(model, "data", SPLIT)
    refused_until_converted("base", adapter="adapter")
    U.compare("bora-eval of the converted adapter_model.bin vs PEFT", U.bora_nll("base", "data", SPLIT,
                                                                                 adapter="adapter"), want)


if __name__ == "__main__":
    setup()
    main(test_pytorch_model_bin, test_adapter_model_bin)
