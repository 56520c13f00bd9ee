#!/usr/bin/env python3
"""Converts PyTorch-pickled weights (*.bin) to safetensors, which is what bora reads.

    python3 launch/bin_to_safetensors.py models/opt-350m        # pytorch_model.bin -> model.safetensors
    python3 launch/bin_to_safetensors.py runs/x/adapters/art    # adapter_model.bin -> adapter_model.safetensors
    python3 launch/bin_to_safetensors.py some/weights.bin       # -> some/weights.safetensors

A folder converts every pickle it holds: pytorch_model.bin (-> model.safetensors),
the shards of pytorch_model.bin.index.json (-> model-*.safetensors and
model.safetensors.index.json, as transformers names them) and adapter_model.bin
(-> adapter_model.safetensors, PEFT's name). The .bin files are kept; existing
.safetensors files are not overwritten without --force.

Pickles are loaded with torch.load(weights_only=True), which refuses anything but
tensors and plain containers, so a malicious file cannot run code. Tensors that
share storage (tied input and output embeddings) are written once, as transformers
does: the copy named lm_head.* is dropped when it is the same view as another
tensor (the model's config ties them); other shared views are written as copies.
Needs torch and safetensors (bora's venv has both: .deps/venv/bin/python).
"""
import argparse
import json
import os
import sys


def fail(message):
    print(f"bin_to_safetensors: {message}", file=sys.stderr)
    sys.exit(2)


def load_state_dict(path):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unpickling refusal or a corrupt file: one line naming it
        fail(f"{path}: cannot be read as a weights-only PyTorch pickle ({type(e).__name__}: {str(e).splitlines()[0]})")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        fail(f"{path}: not a state dict of tensors")
    return state


def deduplicate(state):
    """Drops tied duplicates (same storage, offset, shape and strides), keeping the
    non-lm_head name; clones other tensors that share storage (safetensors forbids sharing)."""
    groups = {}
    for name, t in state.items():
        if t.numel() == 0:
            continue
        groups.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    out = dict(state)
    for names in groups.values():
        if len(names) < 2:
            continue
        names.sort(key=lambda n: (n.startswith("lm_head."), n))
        kept = []
        for n in names:
            t = state[n]
            same = [k for k in kept if state[k].shape == t.shape and state[k].stride() == t.stride()
                    and state[k].storage_offset() == t.storage_offset()]
            if same:
                print(f"  {n}: the same tensor as {same[0]} (tied), not written again")
                del out[n]
            else:
                kept.append(n)
                out[n] = t.clone()
    return {k: v.contiguous() for k, v in out.items()}


def convert_file(src, dst, force):
    from safetensors.torch import save_file

    if os.path.exists(dst) and not force:
        fail(f"{dst} exists (use --force to overwrite)")
    state = deduplicate(load_state_dict(src))
    tmp = dst + ".tmp"
    save_file(state, tmp, metadata={"format": "pt"})
    os.replace(tmp, dst)
    print(f"{src} -> {dst} ({len(state)} tensors)")
    return state


def convert_folder(folder, force):
    done = 0
    index = os.path.join(folder, "pytorch_model.bin.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        renamed = {}
        for shard in sorted(set(weight_map.values())):
            target = shard.replace("pytorch_model", "model").replace(".bin", ".safetensors")
            state = convert_file(os.path.join(folder, shard), os.path.join(folder, target), force)
            renamed.update({name: target for name in state})
        out = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(out) and not force:
            fail(f"{out} exists (use --force to overwrite)")
        with open(out, "w") as f:
            json.dump({"metadata": {}, "weight_map": dict(sorted(renamed.items()))}, f, indent=2)
        done += 1
    for src, dst in (("pytorch_model.bin", "model.safetensors"), ("adapter_model.bin", "adapter_model.safetensors")):
        if os.path.exists(os.path.join(folder, src)):
            convert_file(os.path.join(folder, src), os.path.join(folder, dst), force)
            done += 1
    if not done:
        fail(f"{folder} holds no pytorch_model.bin, pytorch_model.bin.index.json or adapter_model.bin")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="model or adapter folders, or .bin files")
    p.add_argument("--force", action="store_true", help="overwrite existing .safetensors files")
    a = p.parse_args()
    for path in a.paths:
        if os.path.isdir(path):
            convert_folder(path, a.force)
        elif path.endswith(".bin") and os.path.isfile(path):
            convert_file(path, path[: -len(".bin")] + ".safetensors", a.force)
        else:
            fail(f"{path} is neither a folder nor a .bin file")


if __name__ == "__main__":
    main()
