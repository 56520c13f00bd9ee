// The safetensors header, parsed and validated without LibTorch (so that the
// parser can be fuzzed on its own).
//
// File layout (https://github.com/huggingface/safetensors):
//   [0, 8)          N: little-endian uint64, the header length in bytes
//   [8, 8 + N)      UTF-8 JSON: {name: {"dtype": "F32", "shape": [..],
//                   "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
//   [8 + N, EOF)    tensor bytes; offsets are relative to 8 + N, little-endian
//
// Every check is always on: the length fits the file, the JSON is an object of
// well-formed entries, the dtype is known, begin <= end <= data size, end - begin
// equals numel * element size (without overflow), and no two tensors overlap.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bora {

enum class StDType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

// "F32" -> StDType::F32; throws FormatError naming `origin` and `tensor` otherwise.
StDType st_dtype_from_name(const std::string& name, const std::string& origin,
                           const std::string& tensor);
const char* st_dtype_name(StDType d);
int64_t st_dtype_size(StDType d);

struct StTensorInfo {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  int64_t numel() const;
};

struct StHeader {
  uint64_t header_len = 0;   // N
  uint64_t data_start = 0;   // 8 + N
  std::vector<StTensorInfo> tensors;  // in file order (by begin offset)
  std::map<std::string, std::string> metadata;
  const StTensorInfo* find(const std::string& name) const;
};

// Parses the first bytes of a file of `file_size` bytes. `bytes` must hold at least
// min(file_size, 8 + N) bytes. FormatError messages start with `origin`.
StHeader parse_st_header(const uint8_t* bytes, uint64_t file_size, const std::string& origin);

// Serialises a header for the given tensors (offsets must be filled in and
// contiguous), padded with spaces so that the data section starts at a multiple
// of 8 bytes, as HF's writer does (aligned, zero-copy loads).
std::string build_st_header(const std::vector<StTensorInfo>& tensors,
                            const std::map<std::string, std::string>& metadata);

}  // namespace bora
