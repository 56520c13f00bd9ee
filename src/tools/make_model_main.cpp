// bora-make-model: writes a randomly initialised OPT model folder that HF
// transformers would load (config.json + model.safetensors) together with a GPT-2
// byte-level tokenizer (vocab.json + merges.txt), optionally cut to its first K
// merges so that small models get a small vocabulary. Tests, benchmarks and the
// demo make their base models with it; no weights are downloaded.
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "model/opt.h"
#include "model/tokenizer.h"

namespace {

struct MakeModelConfig {
  std::string out;
  std::string vocab = ".deps/gpt2/vocab.json";
  std::string merges = ".deps/gpt2/merges.txt";
  int64_t keep_merges = 0;  // 0 = all
  int64_t hidden_size = 128, num_layers = 2, num_heads = 4, ffn_dim = 512;
  int64_t proj_dim = 0;     // 0 = hidden_size (opt-350m style when different)
  bool post_ln = false;     // opt-350m style post-layer-norm blocks
  int64_t max_positions = 512;
  int64_t seed = 0;
  double init_std = 0.02;
  torch::Dtype dtype = torch::kFloat32;

  void declare(bora::OptionTable& t) {
    t.group("output");
    t.add("out", &out, "model folder to write");
    t.add_choice("dtype", &dtype, bora::kModelDtypeNames, "dtype of the saved weights");
    t.group("tokenizer");
    t.add("vocab", &vocab, "GPT-2 vocab.json (launch/install-deps.sh puts it in .deps/gpt2)");
    t.add("merges", &merges, "GPT-2 merges.txt (launch/install-deps.sh puts it in .deps/gpt2)");
    t.add("keep_merges", &keep_merges, "keep the first K merges only (0 = all); ids become OPT-like with <s> <pad> </s> <unk> first");
    t.group("architecture (OPT)");
    t.add("hidden_size", &hidden_size, "hidden size");
    t.add("num_layers", &num_layers, "decoder layers");
    t.add("num_heads", &num_heads, "attention heads");
    t.add("ffn_dim", &ffn_dim, "feed-forward size");
    t.add("proj_dim", &proj_dim, "word_embed_proj_dim (0 = hidden_size; else project_in/out as opt-350m)");
    t.add("post_ln", &post_ln, "post-layer-norm blocks without a final layer norm (opt-350m)");
    t.add("max_positions", &max_positions, "max_position_embeddings");
    t.add("seed", &seed, "initialisation seed");
    t.add("init_std", &init_std, "std of the normal initialisation (HF: 0.02)");
  }
};

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("bora-make-model", [&] {
    MakeModelConfig c;
    bora::OptionTable table("bora-make-model", "Writes a random OPT model folder with a GPT-2 tokenizer.");
    c.declare(table);
    if (!table.parse(argc, argv)) return 0;
    BORA_CHECK(!c.out.empty(), ConfigError, "out is not set");
    bora::Tokenizer tok = bora::Tokenizer::from_files(c.vocab, c.merges);
    if (c.keep_merges > 0) tok = tok.truncated(static_cast<int>(c.keep_merges));
    bora::OptConfig oc;
    oc.vocab_size = tok.vocab_size();
    oc.hidden_size = c.hidden_size;
    oc.num_hidden_layers = c.num_layers;
    oc.num_attention_heads = c.num_heads;
    oc.ffn_dim = c.ffn_dim;
    oc.word_embed_proj_dim = c.proj_dim > 0 ? c.proj_dim : c.hidden_size;
    oc.do_layer_norm_before = !c.post_ln;
    oc.max_position_embeddings = c.max_positions;
    const int32_t eos = tok.eos_id(), pad = tok.pad_id(), bos = tok.bos_id();
    oc.eos_token_id = eos;
    oc.bos_token_id = bos >= 0 ? bos : eos;
    oc.pad_token_id = pad >= 0 ? pad : eos;
    oc.validate("bora-make-model");
    bora::OptForCausalLM model(oc, torch::kFloat32);
    model.init_random(static_cast<uint64_t>(c.seed), c.init_std);
    model.save_pretrained(c.out, c.dtype);
    tok.save(c.out);
    int64_t params = 0;
    for (const auto& p : model.parameters()) params += p.numel();
    BORA_INFO("wrote ", c.out, ": OPT with ", params, " parameters, vocabulary ", tok.vocab_size(),
              " (tokenizer ", tok.identity_hex(), ")");
    return 0;
  });
}
