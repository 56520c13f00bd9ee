// safetensors files as LibTorch tensors: memory-mapped reads (zero-copy views that
// keep the map alive) and atomic writes. See safetensors_header.h for the layout.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "model/safetensors_header.h"

namespace bora {

torch::ScalarType to_torch_dtype(StDType d);
StDType to_st_dtype(torch::ScalarType t);  // FormatError for types safetensors lacks

class SafetensorsFile {
 public:
  // Maps and validates the file; no tensor byte is read until used.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  const StHeader& header() const { return header_; }
  const std::vector<StTensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  bool contains(const std::string& name) const { return header_.find(name) != nullptr; }
  // Raw bytes of a tensor inside the map.
  const uint8_t* bytes(const StTensorInfo& t) const { return map_->data() + header_.data_start + t.begin; }

  // The tensor in its stored dtype, on CPU, viewing the mapped bytes when they are
  // aligned for the dtype (a copy otherwise). The view keeps the map alive; the map
  // is private copy-on-write, so writes to the tensor never reach the file.
  torch::Tensor tensor(const std::string& name) const;
  torch::Tensor tensor(const StTensorInfo& info) const;

 private:
  std::shared_ptr<MappedFile> map_;
  StHeader header_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// XXH3-64 digests of a written file's parts: the header (its 8 length bytes and
// the JSON) and each tensor's bytes, in the order the tensors were given. A reader
// that wants a few tensors of a large file verifies just those (checkpoints).
struct StDigests {
  uint64_t header = 0;
  std::vector<uint64_t> tensors;
};

// Writes tensors (any device; copied to CPU, contiguous) with `metadata` into
// `path` atomically: a temporary sibling, fsync, rename. Names must be unique.
StDigests save_safetensors(const std::string& path, const NamedTensors& tensors,
                           const std::map<std::string, std::string>& metadata = {});

}  // namespace bora
