"""PEFT interop, Hugging Face -> bora: adapters trained with PEFT in Python (a few
Adam steps, so that A and B are both non-trivial) and saved with save_pretrained
import into bora and give PEFT's NLL, through bora-eval --adapter and as the
initial adapter of bora-train (init_adapter).

Covered LoraConfig options: target_modules as a list, a regex string and
"all-linear"; exclude_modules; layers_to_transform + layers_pattern; rank_pattern
and alpha_pattern (bora pads each module to the bank's rank and folds its scale
into B); use_rslora with patterns. Tolerance 1e-5 relative on each task's mean NLL
(bora float32 vs a float64 log-softmax reference).
"""
import os

import peft_util as U
from bora_testing import check, main, run

SPLIT = "validation"


def setup():
    U.in_scratch_with_base_and_data()
    global BASE_NLL
    BASE_NLL = U.reference_nll(U.load_base("base"), "data", SPLIT)


def trained(name, **config):
    """A PEFT LoRA adapter trained a few steps and saved to `name`; its NLL per task."""
    from peft import LoraConfig

    model = U.train_peft("base", "data", LoraConfig(r=4, lora_alpha=8, **config))
    model.save_pretrained(name)
    return U.reference_nll(model, "data", SPLIT)


def agrees(name, peft_nll):
    U.differs(name, peft_nll, BASE_NLL)
    U.compare(f"bora-eval --adapter {name} vs PEFT", U.bora_nll("base", "data", SPLIT, adapter=name), peft_nll)


def test_plain_lora():
    agrees("lora", trained("lora", target_modules=["q_proj", "v_proj", "fc1"]))


def test_rank_and_alpha_patterns():
    # Ranks 2..6 and alphas per module; "layers.1.self_attn.q_proj" before "q_proj"
    # checks that the first key in file order wins, as in PEFT.
    patterns = dict(target_modules=["q_proj", "v_proj", "fc2"],
                    rank_pattern={"layers.1.self_attn.q_proj": 6, "q_proj": 3, "fc2": 2},
                    alpha_pattern={"v_proj": 32, "fc2": 3})
    agrees("patterns", trained("patterns", **patterns))
    agrees("patterns_rslora", trained("patterns_rslora", use_rslora=True, **patterns))


def test_regex_and_layer_selection():
    agrees("regex", trained("regex", target_modules=r".*\.layers\.1\.self_attn\.(k|out)_proj"))
    agrees("all_linear", trained("all_linear", target_modules="all-linear"))
    agrees("layers", trained("layers", target_modules=["q_proj", "fc1"], layers_to_transform=[1],
                             layers_pattern="layers"))
    agrees("exclude", trained("exclude", target_modules=["q_proj", "v_proj"],
                              exclude_modules=["model.decoder.layers.0.self_attn.v_proj"]))


def test_init_adapter_of_bora_train():
    # "patterns" has ranks up to 6 on q_proj, v_proj, fc2: a run with adapter_r 6 on
    # those targets starts from it exactly (one step at lr 1e-12 moves nothing
    # measurable) and exports it back as PEFT.
    from peft import PeftModel

    want = U.reference_nll(PeftModel.from_pretrained(U.load_base("base"), "patterns"), "data", SPLIT)
    common = ["--model", "base", "--data", "data", "--max_steps", 1, "--batch_size", 4, "--threads", 1,
              "--eval_base", "false", "--checkpoint_every", 0, "--init_noise", 0, "--lr", 1e-12,
              "--adapter_targets", "q_proj,v_proj,fc2", "--init_adapter", "patterns"]
    run("bora-train", *common, "--adapter_r", 6, "--run_dir", "from_peft")
    U.compare("bora-train init_adapter=patterns, then bora-eval --run, vs PEFT",
              U.bora_nll("base", "data", SPLIT, run="from_peft"), want)
    p = run("bora-train", *common, "--adapter_r", 4, "--run_dir", "too_small", expect=2)
    check("rank 6" in p.stderr and "adapter_r" in p.stderr, "a too small adapter_r: unclear error:", p.stderr)


if __name__ == "__main__":
    setup()
    main(test_plain_lora, test_rank_and_alpha_patterns, test_regex_and_layer_selection,
         test_init_adapter_of_bora_train)
