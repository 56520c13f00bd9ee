// GPT-2 byte-level BPE, as used by GPT-2 and OPT.
//
// Text -> pre-tokens (the GPT-2 regex, with Unicode letter/number classes) ->
// UTF-8 bytes mapped to printable unicode (bytes_to_unicode) -> BPE merges by rank
// -> ids from the vocabulary. Files: `vocab.json` + `merges.txt` (HF), or HF
// `tokenizer.json` (model.vocab + model.merges + added_tokens).
//
// encode() gives exactly the ids of tiktoken's "gpt2" encoding (OpenAI's encoder, the
// reference; also those of HF tokenizers, which agrees with it everywhere tested) for
// any valid UTF-8 text, and decode(encode(x)) == x. Special tokens are never
// produced from text; callers add them (OPT prepends </s>, see bos_id()).
//
// A Tokenizer is immutable after construction and safe to use from many threads;
// the BPE cache is internal and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bora {

class Tokenizer {
 public:
  // vocab.json + merges.txt. Errors name the file and line (FormatError).
  static Tokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);
  // HF tokenizer.json (BPE model; byte-level).
  static Tokenizer from_tokenizer_json(const std::string& path);
  // A model folder: tokenizer.json when present, else vocab.json + merges.txt.
  static Tokenizer from_folder(const std::string& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  // Appends to `out` (no allocation of a fresh vector per document).
  void encode_into(std::string_view text, std::vector<int32_t>* out) const;
  // Special tokens decode to their text form unless skip_special.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // Number of ids (max id + 1), including special/added tokens.
  int64_t vocab_size() const;
  // Id of a token string such as "</s>" or "<pad>"; -1 when absent.
  int32_t token_id(std::string_view token) const;
  bool is_special(int32_t id) const;
  // Conventional special ids, looked up from the vocabulary ("</s>", "<s>",
  // "<pad>", "<|endoftext|>"); -1 when absent. A model's config.json overrides them.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;

  // Identity: a hash of the vocabulary (token -> id) and the ordered merges, so that
  // datasets and models can check they were made with the same tokenizer.
  uint64_t identity() const;
  std::string identity_hex() const;

  // Writes vocab.json + merges.txt (HF layout) into `dir`.
  void save(const std::string& dir) const;
  // A tokenizer with only the first `num_merges` merges of this one, its vocabulary
  // cut to the 256 byte tokens, the kept merges' results and the special tokens.
  // This is still exact byte-level BPE (every merge result stays in the vocab) and
  // gives small models a small embedding table; ids are renumbered densely with the
  // special tokens first (OPT order: <s>, <pad>, </s>, <unk>).
  Tokenizer truncated(int num_merges) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The GPT-2 pre-tokenizer alone: splits `text` into the pieces that the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches (with tiktoken's Unicode classes: see unicode_tables.cpp), as views into `text`.
// Invalid UTF-8 is a FormatError naming the byte offset.
std::vector<std::string_view> pretokenize(std::string_view text);

// Validates UTF-8; returns the byte offset of the first invalid sequence or npos.
size_t find_invalid_utf8(std::string_view text);

}  // namespace bora
