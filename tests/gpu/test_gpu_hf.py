"""bora's OPT on the GPU against transformers' OPTForCausalLM on the same GPU
(ctest gpu_hf_parity, label gpu; BORA_TEST_DEVICE=cpu runs it on the CPU).

The checkpoints and the comparison are test_hf_opt's (tests/model): random O(1)
weights (its randomize) written by save_pretrained in the two OPT kinds (pre_ln:
opt-125m/1.3b style, lm_head tied; post_ln: opt-350m style, project_in/out,
untied), padded batches of four sequences, left and right padding, against HF on
each sequence alone. bora's side is opt_logprobs --device.
  float32   max |log p diff| over all 50272 ids and over the targets <= FP32_TOL =
            1e-4 (GPU kernels sum in other orders than the CPU's; measured on the
            CPU: 1e-6)
  bfloat16  a bfloat16 file computed in bfloat16 on both sides: |bora - HF| <=
            test_hf_opt.HALF_TOL (0.2: a few bf16 ulps of log-probs up to ~15), and
            bora's error against the float32 truth (HF float32 on the device) at
            most HALF_RATIO (2) x HF's own error; the same rule as test_hf_opt's
            test_half, on the device.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import OPTConfig, OPTForCausalLM  # noqa: E402

import gpu_util as G  # noqa: E402
import test_hf_opt as H  # noqa: E402  (its checkpoints, batches and tolerances)
from bora_testing import TMP, check, main, run, test_tool  # noqa: E402

DEVICE = G.device()
FP32_TOL = 1e-4
torch.backends.cuda.matmul.allow_tf32 = False  # HF's float32 must be float32 (bora never uses TF32)
torch.backends.cudnn.allow_tf32 = False
_made = {}
_calls = [0]


def model_dir(shape, dtype):
    key = (shape, dtype)
    if key not in _made:
        cfg = OPTConfig(vocab_size=50272, max_position_embeddings=64, pad_token_id=1, bos_token_id=2, eos_token_id=2,
                        **H.SHAPES[shape])
        torch.manual_seed(0)
        m = OPTForCausalLM(cfg).eval()
        H.randomize(m, seed=1 if shape == "pre_ln" else 2)
        d = os.path.join(TMP, f"{shape}-{dtype}")
        m.to(H.DTYPES[dtype]).save_pretrained(d)
        _made[key] = d
    return _made[key]


def hf_model(d, dtype):
    return OPTForCausalLM.from_pretrained(d, dtype=H.DTYPES[dtype]).to(DEVICE).eval()


@torch.no_grad()
def hf_logprobs(model, seqs):
    """HF's log-softmax of each sequence ALONE, on the device: [L, V] float32 on the CPU."""
    return [torch.log_softmax(model(torch.tensor([s], device=DEVICE)).logits[0].float(), -1).cpu() for s in seqs]


def bora_logprobs(d, seqs, side, dtype):
    ids, mask, target, offsets = H.batch(seqs, side)
    _calls[0] += 1
    inp, out = os.path.join(TMP, f"in{_calls[0]}.safetensors"), os.path.join(TMP, f"out{_calls[0]}.safetensors")
    save_file({"ids": ids, "attention_mask": mask, "target_mask": target}, inp)
    run(test_tool("opt_logprobs"), "--model", d, "--input", inp, "--output", out, "--dtype", dtype, "--device", DEVICE)
    o = load_file(out)
    lp = [o["logprobs"][b, off:off + len(s)] for b, (s, off) in enumerate(zip(seqs, offsets))]
    nll = [o["nll"][b, off:off + len(s)] for b, (s, off) in enumerate(zip(seqs, offsets))]
    return lp, nll


def test_fp32_on_device():
    for shape in H.SHAPES:
        d = model_dir(shape, "float32")
        model = hf_model(d, "float32")
        seqs = H.sequences(model.config.vocab_size, seed=3)
        ref = hf_logprobs(model, seqs)
        for side in ("right", "left"):
            full, tgt = H.diffs(seqs, ref, *bora_logprobs(d, seqs, side, "float32"))
            print(f"  {shape} float32 on {DEVICE}, {side}-padded: max |log p diff| {full:.2e} (all ids), {tgt:.2e} (targets)")
            check(full <= FP32_TOL and tgt <= FP32_TOL, f"{shape} {side}: bora differs from HF by {full:.3g} / {tgt:.3g} "
                  f"> {FP32_TOL}")


def test_bf16_on_device():
    for shape in H.SHAPES:
        d = model_dir(shape, "bfloat16")
        truth = hf_logprobs(hf_model(d, "float32"), H.sequences(50272, seed=4))
        seqs = H.sequences(50272, seed=4)
        hf_half = hf_logprobs(hf_model(d, "bfloat16"), seqs)
        lp, nll = bora_logprobs(d, seqs, "right", "bfloat16")
        err_hf = max((a - b).abs().max().item() for a, b in zip(hf_half, truth))
        err_bora = max((a - b).abs().max().item() for a, b in zip(lp, truth))
        full, tgt = H.diffs(seqs, hf_half, lp, nll)
        print(f"  {shape} bfloat16 on {DEVICE}: |bora - HF| {full:.2e} ({tgt:.2e} targets); vs float32: bora "
              f"{err_bora:.2e}, HF {err_hf:.2e}")
        check(full <= H.HALF_TOL["bfloat16"], f"{shape}: bora and HF differ by {full:.3g} > {H.HALF_TOL['bfloat16']}")
        check(err_bora <= H.HALF_RATIO * err_hf, f"{shape}: bora's error vs float32 {err_bora:.3g} exceeds "
              f"{H.HALF_RATIO} x HF's {err_hf:.3g}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    main(test_fp32_on_device, test_bf16_on_device)
