// An HF checkpoint folder's weights: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json` ({"weight_map": {tensor: file}}). Every file is
// memory-mapped once; tensors are looked up by name across shards.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace bora {

class HfCheckpoint {
 public:
  static HfCheckpoint open(const std::string& dir);
  // Movable, not copyable: the name index points into the files' headers.
  HfCheckpoint(HfCheckpoint&&) = default;
  HfCheckpoint& operator=(HfCheckpoint&&) = default;
  HfCheckpoint(const HfCheckpoint&) = delete;
  HfCheckpoint& operator=(const HfCheckpoint&) = delete;

  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const StTensorInfo& info(const std::string& name) const;
  // The file that holds `name` (for error messages).
  const std::string& file_of(const std::string& name) const;
  // Zero-copy CPU view in the stored dtype (see SafetensorsFile::tensor).
  torch::Tensor tensor(const std::string& name) const;
  uint64_t total_bytes() const;

 private:
  HfCheckpoint() = default;
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<size_t, const StTensorInfo*>> where_;
};

// Called when `dir` lacks `wanted` (model.safetensors, adapter_model.safetensors):
// if it holds PyTorch's pickled form instead (pytorch_model.bin, its sharded index,
// adapter_model.bin), an IoError naming the command that converts it
// (launch/bin_to_safetensors.py); bora never unpickles. Otherwise returns.
void refuse_pickle_only(const std::string& dir, const std::string& wanted);

}  // namespace bora
