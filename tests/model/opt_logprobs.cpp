// opt_logprobs (test tool): bora's view of a model folder for the hf tests, which
// compare it with transformers' OPTForCausalLM (tests/model/test_hf_opt.py).
//
//   opt_logprobs --model DIR --input in.safetensors --output out.safetensors
//                [--dtype float32|float16|bfloat16] [--device cpu|cuda]
//                [--max_new_tokens N --stop_id ID]
//
// in.safetensors (I64 tensors, written by the test):
//   ids, attention_mask, target_mask   [B, S]   a padded batch (left or right)
//   prompt.<k>                          [L]      optional prompts for greedy decoding
// out.safetensors (what bora computes, through the paths the tools use):
//   nll        [B, S] F32   target_nll(): the loss of training and bora-eval
//   logprobs   [B, S, V] F32  log_softmax of logits(ids, attention_mask), all positions
//   generated.<k>  [n] I64  generate() with greedy = true: bora-generate's decoder
// The model is loaded with load_causal_lm in --dtype (what LoadOptions does for
// bora-train's dtype = bfloat16); float32 is what bora-eval and bora-generate use.
#include <torch/torch.h>

#include "core/error.h"
#include "core/main.h"
#include "core/options.h"
#include "model/causal_lm.h"
#include "model/generate.h"
#include "model/safetensors.h"

int main(int argc, char** argv) {
  return bora::guarded_main("opt_logprobs", [&] {
    std::string model_dir, input, output, dtype = "float32", device = "cpu";
    int64_t max_new_tokens = 8, stop_id = -1;
    bora::OptionTable t("opt_logprobs", "bora's log-probs and greedy continuations of a model folder (test tool).");
    t.add("model", &model_dir, "HF model folder");
    t.add("input", &input, "safetensors with ids, attention_mask, target_mask [B, S] and prompt.<k>");
    t.add("output", &output, "safetensors to write: nll, logprobs, generated.<k>");
    t.add_choice("dtype", &dtype, {"float32", "float16", "bfloat16"}, "compute dtype of the loaded model");
    t.add_choice("device", &device, {"cpu", "cuda"}, "where the model runs (the GPU tests, tests/gpu)");
    t.add("max_new_tokens", &max_new_tokens, "greedy tokens per prompt");
    t.add("stop_id", &stop_id, "stop a continuation after this id (-1 = never)");
    if (!t.parse(argc, argv)) return 0;
    BORA_CHECK(!model_dir.empty() && !input.empty() && !output.empty(), ConfigError,
               "model, input and output must be set");
    torch::set_num_threads(1);
    torch::NoGradGuard no_grad;
    bora::LoadOptions lo;
    lo.dtype = bora::parse_name(bora::kModelDtypeNames, "dtype", dtype);
    lo.device = torch::Device(device);
    auto model = bora::load_causal_lm(model_dir, lo);

    bora::SafetensorsFile in = bora::SafetensorsFile::open(input);
    bora::NamedTensors out;
    if (in.contains("ids")) {
      torch::Tensor ids = in.tensor("ids").to(lo.device), mask = in.tensor("attention_mask").to(lo.device);
      torch::Tensor targets = in.tensor("target_mask").to(torch::kBool).to(lo.device);
      out.emplace_back("nll", bora::target_nll(*model, ids, mask, targets).cpu());
      out.emplace_back("logprobs", torch::log_softmax(model->logits(ids, mask).to(torch::kFloat32), -1).cpu());
    }
    bora::SamplingOptions greedy;
    greedy.greedy = true;
    greedy.max_new_tokens = max_new_tokens;
    greedy.stop_id = stop_id;
    for (const auto& info : in.tensors()) {
      if (info.name.rfind("prompt.", 0) != 0) continue;
      torch::Tensor p = in.tensor(info).contiguous();
      std::vector<int64_t> prompt(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
      std::vector<int64_t> ids = bora::generate(*model, prompt, nullptr, greedy);
      out.emplace_back("generated." + info.name.substr(7), torch::tensor(ids, torch::kLong));
    }
    bora::save_safetensors(output, out);
    return 0;
  });
}
