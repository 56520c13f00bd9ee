// The names and constants of bora's on-disk dataset format, shared by the writer
// (data_prep) and the reader (every training rank). docs/data-format.md describes
// the layout in full; in short:
//
//   <dataset>/manifest.json            every task's counts, its shard, the tokenizer
//   <dataset>/shard-00000.h5 ...       HDF5 files; a task lives in exactly one file
//
//   shard file:  /                      attrs: magic, format_version, shard_index, ...
//                /tasks/<task>          attrs: name, source_name, task_index, documents
//                /tasks/<task>/<split>  attrs: num_sequences, num_tokens,
//                                              num_target_tokens, num_truncated
//                    tokens      [T]    uint16 (vocab_size <= 65536) or int32
//                    offsets     [N+1]  uint64: sequence i is tokens[offsets[i], offsets[i+1])
//                    prompt_len  [N]    int32: leading tokens that are not loss targets
//                    doc_index   [N]    int64: the document's position among its
//                                              task's kept documents, in input order
//
// A sequence is [bos] + prompt + text + [eos], cut to max_len tokens. Token j of a
// sequence is a loss target exactly when j >= prompt_len (token 0, the bos, never is),
// so the sequence has tokens.size() - prompt_len target tokens.
#pragma once

#include <cstdint>
#include <string>

namespace bora {

// Bump kDatasetFormatVersion on any change a reader of the old layout would misread.
inline constexpr const char* kDatasetMagic = "BORA-DATASET";
inline constexpr int64_t kDatasetFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";

// Group and dataset names inside a shard file.
inline constexpr const char* kTasksGroup = "tasks";
inline constexpr const char* kTokensDataset = "tokens";
inline constexpr const char* kOffsetsDataset = "offsets";
inline constexpr const char* kPromptLenDataset = "prompt_len";
inline constexpr const char* kDocIndexDataset = "doc_index";

// The three splits, in this order everywhere (arrays indexed by split, manifest keys).
enum class Split : int { Train = 0, Validation = 1, Test = 2 };
inline constexpr int kNumSplits = 3;
inline constexpr Split kAllSplits[kNumSplits] = {Split::Train, Split::Validation, Split::Test};

// "train", "validation", "test": the group names in shards and keys in the manifest.
const char* split_name(Split s);
// Accepts "train", "validation"/"val"/"valid", "test"; ConfigError otherwise.
Split parse_split(const std::string& name);

// The element type of the tokens datasets. Ids fit uint16 when vocab_size <= 65536,
// halving the files; readers always hand out int32.
enum class TokenDtype : int { UInt16 = 0, Int32 = 1 };
TokenDtype token_dtype_for_vocab(int64_t vocab_size);
const char* token_dtype_name(TokenDtype t);  // "uint16" | "int32"
TokenDtype parse_token_dtype(const std::string& name, const std::string& origin);
inline int64_t token_dtype_bytes(TokenDtype t) { return t == TokenDtype::UInt16 ? 2 : 4; }

// "shard-00007.h5"
std::string shard_file_name(int64_t shard_index);

// Task names become HDF5 group names and manifest keys: non-empty UTF-8 with no '/',
// no control characters, and not "." or "..". Returns an empty string when `name`
// is valid, else the reason it is not.
std::string task_name_problem(const std::string& name);

}  // namespace bora
