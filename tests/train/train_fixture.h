// A tiny base model and small real-text datasets for trainer tests, built once per
// test process: an OPT with 2 layers of width 32 and GPT-2's first 400 merges as
// its tokenizer, and datasets of Debian fortune files (one file per task).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data_prep/prepare.h"
#include "dist/communicator.h"
#include "model/opt.h"
#include "model/tokenizer.h"
#include "train/trainer.h"

namespace bora::train_test {

namespace fs = std::filesystem;

inline std::string scratch(const std::string& name) {
  fs::path p = fs::path(::testing::TempDir()) / ("bora_train_" + std::to_string(::getpid())) / name;
  fs::create_directories(p);
  return p.string();
}

inline std::string gpt2_file(const std::string& f) {
  return std::string(BORA_SOURCE_DIR) + "/.deps/gpt2/" + f;
}

// The model folder (config.json, model.safetensors, vocab.json, merges.txt); one
// per merge count, made on first use.
inline std::string tiny_model_dir(int keep_merges = 400) {
  static std::map<int, std::string> made;
  if (made.count(keep_merges)) return made[keep_merges];
  std::string dir = [&] {
    std::string d = scratch("model_" + std::to_string(keep_merges));
    Tokenizer tok = Tokenizer::from_files(gpt2_file("vocab.json"), gpt2_file("merges.txt")).truncated(keep_merges);
    OptConfig c;
    c.vocab_size = tok.vocab_size();
    c.hidden_size = 32;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.ffn_dim = 64;
    c.max_position_embeddings = 128;
    c.pad_token_id = tok.pad_id();
    c.bos_token_id = c.eos_token_id = tok.eos_id();
    OptForCausalLM m(c, torch::kFloat32);
    m.init_random(7, 0.1);
    m.save_pretrained(d, torch::kFloat32);
    tok.save(d);
    return d;
  }();
  return made[keep_merges] = dir;
}

// A dataset of fortune files (one task each) tokenized for the tiny model.
inline std::string make_dataset(const std::string& name, const std::vector<std::string>& files,
                                const std::string& prompt = "\" [task] {task}\"", const std::string& model = "") {
  std::string corpus = scratch(name + "_corpus");
  for (const auto& f : files) fs::copy_file("/usr/share/games/fortunes/" + f, corpus + "/" + f,
                                            fs::copy_options::overwrite_existing);
  PrepConfig c;
  c.input = corpus;
  c.tokenizer = model.empty() ? tiny_model_dir() : model;
  c.out = scratch(name) + "/data";
  c.overwrite = true;
  c.min_docs = 0;
  c.max_docs = 0;
  c.max_tasks = 0;
  c.max_len = 48;
  c.prompt_template = prompt;
  c.threads = 1;
  c.progress = false;
  run_data_prep(c, c.load_tokenizer());
  return c.out;
}

// Four small tasks of different sizes (tens to ~140 documents).
inline const std::string& fortunes_dataset() {
  static std::string d = make_dataset("fortunes", {"food", "kids", "magic", "pets"});
  return d;
}

inline TrainConfig base_config(const std::string& data, const std::string& run) {
  TrainConfig c;
  c.model = tiny_model_dir();
  c.data = data;
  c.run_dir = scratch(run);
  c.batch_size = 16;
  c.micro_batch = 8;
  c.epochs = 1;
  c.optim.lr = 1e-3;
  c.eval_base = false;
  c.adapter.r = 4;
  c.adapter.alpha = 4;
  c.log_every = 1;
  return c;
}

// A trainer on a world of one.
struct SoloRank {
  explicit SoloRank(const TrainConfig& c) : trainer(c, "", comm, torch::kCPU) {}
  LocalCommunicator comm;
  Trainer trainer;
};

}  // namespace bora::train_test
