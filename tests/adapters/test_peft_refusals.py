"""PEFT interop: the LoraConfig options that change what an adapter computes and that
bora cannot reproduce are refused as configuration errors (exit 2, ConfigError),
in one line that names the option -- never imported with a silently different
function, and never reported as a corrupt file (exit 4). Options without effect on
the function (fan_in_fan_out on nn.Linear, init_lora_weights="gaussian",
lora_dropout) are accepted and change nothing.

DoRA, bias, lora_bias and modules_to_save adapters are real PEFT artifacts
(save_pretrained); the other options are set in a real adapter's
adapter_config.json, as a newer PEFT or a hand edit would write them.
"""
import json
import os
import shutil

import peft_util as U
from bora_testing import check, main, run

SPLIT = "validation"


def setup():
    U.in_scratch_with_base_and_data()


def saved(name, steps=1, **config):
    from peft import LoraConfig

    model = U.train_peft("base", "data", LoraConfig(r=4, lora_alpha=8, **config), steps=steps)
    model.save_pretrained(name)
    return model


def edited(name, **fields):
    """A copy of the plain adapter "lora" with adapter_config.json fields replaced."""
    shutil.copytree("lora", name)
    path = os.path.join(name, "adapter_config.json")
    with open(path) as f:
        c = json.load(f)
    c.update(fields)
    with open(path, "w") as f:
        json.dump(c, f)
    return name


def refused(folder, option, tool="bora-eval"):
    if tool == "bora-eval":
        p = run("bora-eval", "--model", "base", "--data", "data", "--adapter", folder, expect=2)
    else:
        p = run("bora-generate", "--model", "base", "--adapter", folder, "--prompt", "x", expect=2)
    lines = p.stderr.strip().splitlines()
    check(len(lines) == 1 and option in lines[0], f"{folder}: the refusal is not one line naming {option}:", p.stderr)
    print(f"     {folder}: {lines[0].split(': error: ')[-1][:150]}")


def test_real_peft_options_are_refused():
    saved("lora", target_modules=["q_proj", "v_proj"])
    saved("dora", target_modules=["q_proj", "v_proj"], use_dora=True)
    refused("dora", "use_dora")
    saved("bias_all", target_modules=["q_proj", "v_proj"], bias="all")
    refused("bias_all", "bias")
    saved("lora_bias", target_modules=["q_proj", "v_proj"], lora_bias=True)
    refused("lora_bias", "lora_bias")
    saved("to_save", target_modules=["q_proj", "v_proj"], modules_to_save=["final_layer_norm"])
    refused("to_save", "modules_to_save", tool="bora-generate")


def test_edited_options_are_refused():
    cases = {
        "layer_replication": [[0, 2], [1, 2]],
        "target_parameters": ["self_attn.q_proj.weight"],
        "trainable_token_indices": [1, 2],
        "init_lora_weights": "pissa",
        "alora_invocation_tokens": [5, 6],
        "use_qalora": True,
        "use_bdlora": {"lora_a_is_blockdiagonal": True},
        "arrow_config": {"top_k": 2},
        "kasa_config": {},  # unset: accepted (checked below through the last case)
        "some_future_option": 3,
        "task_type": "SEQ_CLS",
        "peft_type": "LOHA",
    }
    for option, value in cases.items():
        if option == "kasa_config":
            continue
        refused(edited(f"edit_{option}", **{option: value}), option)
    refused(edited("edit_lm_head", target_modules=["q_proj", "v_proj", "lm_head"]), "lm_head")
    refused(edited("edit_python_regex", target_modules=r".*(?P<m>q|v)_proj"), "target_modules")
    refused(edited("edit_nothing", target_modules=["gate_proj"]), "target_modules")


def test_options_without_effect_are_accepted():
    want = U.bora_nll("base", "data", SPLIT, adapter="lora")
    folder = edited("no_effect", fan_in_fan_out=True, init_lora_weights="gaussian", lora_dropout=0.1,
                    velora_config=None, kasa_config=None, megatron_core="megatron.core")
    U.compare("no-effect options vs the plain adapter", U.bora_nll("base", "data", SPLIT, adapter=folder), want,
              tol=0.0)


if __name__ == "__main__":
    setup()
    main(test_real_peft_options_are_refused, test_edited_options_are_refused, test_options_without_effect_are_accepted)
