#include "model/hf_checkpoint.h"

#include <filesystem>

#include "core/error.h"
#include "core/json.h"

namespace bora {

HfCheckpoint HfCheckpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  HfCheckpoint c;
  c.dir_ = dir;
  BORA_CHECK(fs::is_directory(dir), IoError, "model folder '", dir, "' does not exist");
  std::string single = dir + "/model.safetensors";
  std::string index = dir + "/model.safetensors.index.json";
  std::vector<std::string> paths;
  std::map<std::string, std::string> expected;  // tensor -> shard file, from the index
  if (fs::exists(index)) {
    Json j = read_json_file(index);
    BORA_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), FormatError, index,
               ": missing object 'weight_map'");
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      BORA_CHECK(it.value().is_string(), FormatError, index, ": weight_map entry '", it.key(),
                 "' is not a file name");
      std::string file = it.value().get<std::string>();
      BORA_CHECK(file.find('/') == std::string::npos, FormatError, index, ": shard name '", file,
                 "' must be a file in the same folder");
      expected[it.key()] = file;
      if (std::find(paths.begin(), paths.end(), file) == paths.end()) paths.push_back(file);
    }
  } else {
    if (!fs::exists(single)) refuse_pickle_only(dir, "model.safetensors");
    BORA_CHECK(fs::exists(single), IoError, "model folder '", dir,
               "' has neither model.safetensors nor model.safetensors.index.json");
    paths.push_back("model.safetensors");
  }
  c.files_.reserve(paths.size());
  for (const auto& p : paths) c.files_.push_back(SafetensorsFile::open(dir + "/" + p));
  for (size_t f = 0; f < c.files_.size(); ++f) {
    for (const auto& t : c.files_[f].tensors()) {
      BORA_CHECK(!c.where_.count(t.name), FormatError, c.files_[f].path(), ": tensor '", t.name,
                 "' also appears in ", c.files_[c.where_[t.name].first].path());
      if (!expected.empty()) {
        auto e = expected.find(t.name);
        BORA_CHECK(e != expected.end() && e->second == paths[f], FormatError, c.files_[f].path(),
                   ": tensor '", t.name, "' is not listed for this file in ", index);
      }
      c.where_[t.name] = {f, &t};
    }
  }
  for (const auto& [name, file] : expected)
    BORA_CHECK(c.where_.count(name), FormatError, dir + "/" + file, ": tensor '", name,
               "' listed in the index is missing");
  return c;
}

void refuse_pickle_only(const std::string& dir, const std::string& wanted) {
  for (const char* bin : {"pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin"})
    BORA_CHECK(!std::filesystem::exists(dir + "/" + bin), IoError, "'", dir, "' has no ", wanted, " but ", bin,
               " (a PyTorch pickle, which bora does not read): convert it with `python3 launch/bin_to_safetensors.py ",
               dir, "` (in bora's checkout; needs torch and safetensors)");
}

std::vector<std::string> HfCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

const StTensorInfo& HfCheckpoint::info(const std::string& name) const {
  auto it = where_.find(name);
  BORA_CHECK(it != where_.end(), FormatError, dir_, ": checkpoint has no tensor '", name, "'");
  return *it->second.second;
}

const std::string& HfCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  BORA_CHECK(it != where_.end(), FormatError, dir_, ": checkpoint has no tensor '", name, "'");
  return files_[it->second.first].path();
}

torch::Tensor HfCheckpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  BORA_CHECK(it != where_.end(), FormatError, dir_, ": checkpoint has no tensor '", name, "'");
  return files_[it->second.first].tensor(*it->second.second);
}

uint64_t HfCheckpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f.header().data_start;
  for (const auto& kv : where_) n += kv.second.second->end - kv.second.second->begin;
  return n;
}

}  // namespace bora
