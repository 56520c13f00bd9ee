// Small helpers of the dataset format: split and dtype names, shard file names and
// the task-name rule (format.h).
#include "data/format.h"

#include <cstdio>

#include "core/error.h"

namespace bora {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Validation: return "validation";
    case Split::Test: return "test";
  }
  BORA_THROW(InternalError, "bad split ", static_cast<int>(s));
}

Split parse_split(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "validation" || name == "val" || name == "valid") return Split::Validation;
  if (name == "test") return Split::Test;
  BORA_THROW(ConfigError, "unknown split '", name, "' (expected train, validation or test)");
}

TokenDtype token_dtype_for_vocab(int64_t vocab_size) {
  BORA_CHECK(vocab_size > 0 && vocab_size <= (int64_t(1) << 31), ConfigError,
             "vocabulary size ", vocab_size, " is out of range");
  return vocab_size <= 65536 ? TokenDtype::UInt16 : TokenDtype::Int32;
}

const char* token_dtype_name(TokenDtype t) { return t == TokenDtype::UInt16 ? "uint16" : "int32"; }

TokenDtype parse_token_dtype(const std::string& name, const std::string& origin) {
  if (name == "uint16") return TokenDtype::UInt16;
  if (name == "int32") return TokenDtype::Int32;
  BORA_THROW(FormatError, origin, ": unknown token dtype '", name, "' (expected uint16 or int32)");
}

std::string shard_file_name(int64_t shard_index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05lld.h5", static_cast<long long>(shard_index));
  return buf;
}

std::string task_name_problem(const std::string& name) {
  if (name.empty()) return "it is empty";
  if (name == "." || name == "..") return "'.' and '..' are not valid names";
  for (unsigned char c : name) {
    if (c == '/') return "it contains '/'";
    if (c < 0x20 || c == 0x7f) return "it contains a control character";
  }
  return "";
}

}  // namespace bora
