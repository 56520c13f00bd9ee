"""PEFT interop, bora -> Hugging Face: adapters that bora-train and bora-export write
load in PEFT / transformers and give bora-eval's per-task NLL.

A tiny OPT written by transformers, two fortune files as tasks, a few bora-train
steps (so that B != 0), then for every task:
  - PeftModel.from_pretrained(base, run/adapters/<task>) (LoRA on q_proj, v_proj);
  - AutoPeftModelForCausalLM.from_pretrained(<adapter>) from another working
    directory (base_model_name_or_path must not be the relative --model);
  - bora-export --merged: a plain OPTForCausalLM, and bora-eval of it alone;
  - bora-export --peft: the same adapter again;
  - a vera run with one target module (and s = 2), exported as PEFT VeRA.
Tolerance 1e-5 relative on the mean NLL: bora runs in float32 (per-token
differences ~1e-7), the reference in float64 log-softmax.
"""
import json
import os

import peft_util as U
from bora_testing import TMP, check, main, run

SPLIT = "validation"


def setup():
    U.in_scratch_with_base_and_data()
    common = ["--model", "base", "--data", "data", "--max_steps", 6, "--batch_size", 8, "--micro_batch", 8,
              "--eval_base", "false", "--threads", 1, "--checkpoint_every", 0, "--adapter_r", 4]
    run("bora-train", *common, "--run_dir", "run", "--lr", 3e-2, "--adapter_alpha", 8,
        "--adapter_targets", "q_proj,v_proj")
    # adapter_scale 2 (the tied family's s is 1 by default): the export must fold s into lambda_b.
    run("bora-train", *common, "--run_dir", "vera", "--lr", 1e-1, "--adapter", "vera", "--adapter_targets", "fc1",
        "--adapter_scale", 2)
    global TASKS, BASE_NLL
    TASKS = U.task_names("data")
    BASE_NLL = U.reference_nll(U.load_base("base"), "data", SPLIT)


def per_task(load):
    """{task: NLL} of the model load(task) returns, on that task."""
    out = {}
    for task in TASKS:
        model = load(task)
        total, count = U.nll(model, U.sequences(os.path.join(TMP, "data"), task, SPLIT), model.config.pad_token_id)
        out[task] = total / count
    return out


def test_run_adapters_load_in_peft():
    from peft import PeftModel

    bora = U.bora_nll("base", "data", SPLIT, run="run")
    peft = per_task(lambda t: PeftModel.from_pretrained(U.load_base("base"), f"run/adapters/{t}"))
    U.differs("bora-train's adapters", peft, BASE_NLL)
    U.compare("PeftModel.from_pretrained vs bora-eval --run", peft, bora)


def test_auto_peft_loads_from_another_directory():
    from peft import AutoPeftModelForCausalLM

    bora = U.bora_nll("base", "data", SPLIT, run="run")
    elsewhere = os.path.join(TMP, "elsewhere")
    os.makedirs(elsewhere)
    os.chdir(elsewhere)
    try:
        for task in TASKS:
            with open(os.path.join(TMP, "run/adapters", task, "adapter_config.json")) as f:
                name = json.load(f)["base_model_name_or_path"]
            check(name == os.path.join(TMP, "base"), "base_model_name_or_path is", repr(name),
                  "not the absolute model folder", os.path.join(TMP, "base"))
        peft = per_task(lambda t: AutoPeftModelForCausalLM.from_pretrained(os.path.join(TMP, "run/adapters", t)))
    finally:
        os.chdir(TMP)
    U.compare("AutoPeftModelForCausalLM (another cwd) vs bora-eval --run", peft, bora)


def test_bora_export_merged_and_peft():
    from peft import PeftModel

    bora = U.bora_nll("base", "data", SPLIT, run="run")
    merged, again = {}, {}
    for task in TASKS:
        run("bora-export", "--run", "run", "--task", task, "--merged", f"merged_{task}", "--peft", f"peft_{task}")
        for f in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
            check(os.path.exists(f"merged_{task}/{f}"), f"merged_{task} has no {f}")
        merged[task] = U.load_base(f"merged_{task}")
        again[task] = PeftModel.from_pretrained(U.load_base("base"), f"peft_{task}")
        # The merged folder is a complete model for bora too: its base NLL is the adapted one.
        alone = U.bora_nll(f"merged_{task}", "data", SPLIT, tasks=task)
        U.compare(f"bora-eval of merged_{task} alone vs bora-eval --run", alone, {task: bora[task]})
    U.compare("OPTForCausalLM of bora-export --merged vs bora-eval --run", per_task(merged.get), bora)
    U.compare("PeftModel of bora-export --peft vs bora-eval --run", per_task(again.get), bora)


def test_vera_exports_to_peft_vera():
    from peft import PeftModel

    bora = U.bora_nll("base", "data", SPLIT, run="vera")
    models = {}
    for task in TASKS:
        run("bora-export", "--run", "vera", "--task", task, "--peft", f"vera_{task}")
        with open(f"vera_{task}/adapter_config.json") as f:
            check(json.load(f)["peft_type"] == "VERA", f"vera_{task} is not a PEFT VeRA adapter")
        models[task] = PeftModel.from_pretrained(U.load_base("base"), f"vera_{task}")
    peft = per_task(models.get)
    U.differs("vera adapters", peft, BASE_NLL)
    U.compare("PEFT VeRA of bora-export --peft vs bora-eval --run", peft, bora)


def test_vera_with_two_targets_is_refused():
    run("bora-train", "--model", "base", "--data", "data", "--max_steps", 1, "--batch_size", 4, "--threads", 1,
        "--eval_base", "false", "--checkpoint_every", 0, "--adapter", "vera", "--adapter_r", 4, "--run_dir", "vera2")
    p = run("bora-export", "--run", "vera2", "--task", TASKS[0], "--peft", "vera2_out", expect=2)
    check("ONE vera_A/vera_B" in p.stderr, "the refusal does not say why:", p.stderr)
    check(not os.path.exists("vera2_out"), "a refused export left vera2_out behind")


def test_bora_export_errors():
    p = run("bora-export", "--help")
    for option in ("--run", "--task", "--merged", "--peft", "--adapter", "--dtype"):
        check(option in p.stdout, "bora-export --help does not list", option)
    p = run("bora-export", "--run", "no_such_run", "--task", TASKS[0], "--merged", "x", expect=2)
    check("no_such_run" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          "missing run folder: not one line naming it:", p.stderr)
    p = run("bora-export", "--run", "run", "--task", "no_such_task", "--merged", "x", expect=2)
    check("no_such_task" in p.stderr and TASKS[0] in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          "unknown task: not one line naming it and the run's tasks:", p.stderr)
    p = run("bora-export", "--run", "run", "--task", TASKS[0], expect=2)
    check("nothing to write" in p.stderr, "no output option: unclear error:", p.stderr)


if __name__ == "__main__":
    setup()
    main(test_run_adapters_load_in_peft, test_auto_peft_loads_from_another_directory,
         test_bora_export_merged_and_peft, test_vera_exports_to_peft_vera, test_vera_with_two_targets_is_refused,
         test_bora_export_errors)
