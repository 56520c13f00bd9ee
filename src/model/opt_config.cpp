#include "model/opt_config.h"

#include "core/error.h"

namespace bora {
namespace {

template <class T>
void read_opt(const Json& j, const char* key, T* out, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    *out = j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    BORA_THROW(ConfigError, origin, ": '", key, "' has the wrong type (", j[key].type_name(), ")");
  }
}

}  // namespace

void OptConfig::validate(const std::string& origin) const {
  auto positive = [&](int64_t v, const char* name) {
    BORA_CHECK(v > 0, ConfigError, origin, ": ", name, " must be > 0, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(ffn_dim, "ffn_dim");
  positive(max_position_embeddings, "max_position_embeddings");
  positive(proj_dim(), "word_embed_proj_dim");
  BORA_CHECK(hidden_size % num_attention_heads == 0, ConfigError, origin, ": hidden_size ",
             hidden_size, " is not divisible by num_attention_heads ", num_attention_heads);
  BORA_CHECK(activation_function == "relu" || activation_function == "gelu", ConfigError, origin,
             ": activation_function '", activation_function, "' is not supported (relu, gelu)");
  for (int64_t id : {pad_token_id, bos_token_id, eos_token_id})
    BORA_CHECK(id >= 0 && id < vocab_size, ConfigError, origin, ": special token id ", id,
               " is outside the vocabulary (", vocab_size, ")");
}

OptConfig OptConfig::from_json(const Json& j, const std::string& origin) {
  BORA_CHECK(j.is_object(), ConfigError, origin, ": not a JSON object");
  std::string type = j.value("model_type", std::string("opt"));
  BORA_CHECK(type == "opt", ConfigError, origin, ": model_type '", type, "' is not 'opt'");
  OptConfig c;
  read_opt(j, "vocab_size", &c.vocab_size, origin);
  read_opt(j, "hidden_size", &c.hidden_size, origin);
  read_opt(j, "num_hidden_layers", &c.num_hidden_layers, origin);
  read_opt(j, "num_attention_heads", &c.num_attention_heads, origin);
  read_opt(j, "ffn_dim", &c.ffn_dim, origin);
  read_opt(j, "word_embed_proj_dim", &c.word_embed_proj_dim, origin);
  read_opt(j, "max_position_embeddings", &c.max_position_embeddings, origin);
  read_opt(j, "do_layer_norm_before", &c.do_layer_norm_before, origin);
  read_opt(j, "_remove_final_layer_norm", &c.remove_final_layer_norm, origin);
  read_opt(j, "enable_bias", &c.enable_bias, origin);
  read_opt(j, "layer_norm_elementwise_affine", &c.layer_norm_elementwise_affine, origin);
  read_opt(j, "tie_word_embeddings", &c.tie_word_embeddings, origin);
  read_opt(j, "activation_function", &c.activation_function, origin);
  read_opt(j, "pad_token_id", &c.pad_token_id, origin);
  read_opt(j, "bos_token_id", &c.bos_token_id, origin);
  read_opt(j, "eos_token_id", &c.eos_token_id, origin);
  read_opt(j, "torch_dtype", &c.torch_dtype, origin);
  c.validate(origin);
  return c;
}

Json OptConfig::to_json() const {
  return Json{
      {"architectures", {"OPTForCausalLM"}},
      {"model_type", "opt"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"ffn_dim", ffn_dim},
      {"word_embed_proj_dim", proj_dim()},
      {"max_position_embeddings", max_position_embeddings},
      {"do_layer_norm_before", do_layer_norm_before},
      {"_remove_final_layer_norm", remove_final_layer_norm},
      {"enable_bias", enable_bias},
      {"layer_norm_elementwise_affine", layer_norm_elementwise_affine},
      {"tie_word_embeddings", tie_word_embeddings},
      {"activation_function", activation_function},
      {"pad_token_id", pad_token_id},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
      {"torch_dtype", torch_dtype},
      {"dropout", 0.0},
      {"attention_dropout", 0.0},
      {"activation_dropout", 0.0},
      {"layerdrop", 0.0},
      {"init_std", 0.02},
      {"use_cache", true},
  };
}

}  // namespace bora
