// How a document becomes a token sequence (the BoRA reference's format):
//
//   tokens = [bos] + encode(prompt) + encode(text part) + [eos], cut to max_len
//   prompt     = prompt_template with {task} replaced by the task name
//                (default " [task] {task}"; an empty template means no prompt)
//   text part  = text_template with {text} replaced by the document
//                (default " [text] {text}")
//   prompt_len = 1 + |encode(prompt)|: the bos and the prompt are not loss targets;
//                every later token, " [text]" included, is.
//
// Truncation keeps the beginning: the first max_len tokens (the eos is then lost).
// The prompt and the text part are encoded separately so that prompt_len is exact;
// the default templates start with a space, so this gives the same ids as encoding
// their concatenation (GPT-2's pre-tokenizer splits before " [" either way).
//
// Long documents are not encoded in full: only a prefix of the text is encoded, cut
// at a pre-token boundary that the full text shares (see sequence.cpp), which gives
// exactly the first tokens of the full encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bora {

class Tokenizer;

struct SequenceFormat {
  std::string prompt_template = " [task] {task}";
  std::string text_template = " [text] {text}";
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int64_t max_len = 256;
};

// Replaces every "{key}" in `tmpl` by `value`.
std::string fill_template(const std::string& tmpl, std::string_view key, std::string_view value);

class SequenceBuilder {
 public:
  // ConfigError on a template without exactly one {text}, ids outside the
  // vocabulary, or max_len < 2. The tokenizer must outlive the builder.
  SequenceBuilder(const Tokenizer& tokenizer, SequenceFormat format);

  const SequenceFormat& format() const { return format_; }

  // [bos] + encode(prompt for `task`): the same for every document of a task, so
  // computed once per task. ConfigError when it leaves no room for a target token.
  std::vector<int32_t> prefix(const std::string& task) const;

  // out = prefix + text tokens + [eos], cut to max_len; prompt_len = prefix.size().
  // Returns true when the sequence was truncated.
  bool build(const std::vector<int32_t>& prefix, std::string_view text, std::vector<int32_t>* out) const;

  // The first `limit` tokens of encode(s) (all of them when there are fewer),
  // without encoding all of a long `s`.
  std::vector<int32_t> encode_head(std::string_view s, int64_t limit) const;

 private:
  const Tokenizer* tok_;
  SequenceFormat format_;
  std::string text_before_, text_after_;  // text_template around {text}
};

}  // namespace bora
