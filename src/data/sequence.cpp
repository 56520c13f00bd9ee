// Document -> token sequence (sequence.h).
#include "data/sequence.h"

#include <algorithm>

#include "core/error.h"
#include "model/tokenizer.h"

namespace bora {

std::string fill_template(const std::string& tmpl, std::string_view key, std::string_view value) {
  std::string pat = "{" + std::string(key) + "}";
  std::string out;
  size_t at = 0;
  while (true) {
    size_t p = tmpl.find(pat, at);
    if (p == std::string::npos) break;
    out.append(tmpl, at, p - at);
    out.append(value);
    at = p + pat.size();
  }
  out.append(tmpl, at, std::string::npos);
  return out;
}

SequenceBuilder::SequenceBuilder(const Tokenizer& tokenizer, SequenceFormat format)
    : tok_(&tokenizer), format_(std::move(format)) {
  const std::string& t = format_.text_template;
  size_t p = t.find("{text}");
  BORA_CHECK(p != std::string::npos && t.find("{text}", p + 1) == std::string::npos, ConfigError,
             "text_template '", t, "' must contain {text} exactly once");
  text_before_ = t.substr(0, p);
  text_after_ = t.substr(p + 6);
  BORA_CHECK(format_.prompt_template.find("{text}") == std::string::npos, ConfigError,
             "prompt_template '", format_.prompt_template, "' must not contain {text}");
  int64_t v = tokenizer.vocab_size();
  BORA_CHECK(format_.bos_id >= 0 && format_.bos_id < v, ConfigError, "bos id ", format_.bos_id,
             " is not in the tokenizer's vocabulary of ", v);
  BORA_CHECK(format_.eos_id >= 0 && format_.eos_id < v, ConfigError, "eos id ", format_.eos_id,
             " is not in the tokenizer's vocabulary of ", v);
  BORA_CHECK(format_.max_len >= 2 && format_.max_len <= (int64_t(1) << 30), ConfigError,
             "max_len must be in 2..2^30, got ", format_.max_len);
}

std::vector<int32_t> SequenceBuilder::prefix(const std::string& task) const {
  std::vector<int32_t> p{format_.bos_id};
  if (!format_.prompt_template.empty())
    tok_->encode_into(fill_template(format_.prompt_template, "task", task), &p);
  BORA_CHECK(static_cast<int64_t>(p.size()) < format_.max_len, ConfigError, "the prompt of task '",
             task, "' takes ", p.size(), " tokens (bos included), leaving no target token within max_len ",
             format_.max_len);
  return p;
}

// Why the head of a long text can be encoded alone: GPT-2 encoding is BPE applied to
// each pre-token independently, and the pre-tokenizer's match at a position depends
// only on the characters up to the end of that match plus one character of look-ahead.
// Cutting the text can therefore change only the pre-tokens that reach the cut; the
// match just before them can change too when a contraction ('ll, 're) is cut apart.
// Dropping the last three pre-tokens of the cut text leaves pre-tokens that the full
// text has too, in the same places, so their ids are the full encoding's first ids.
std::vector<int32_t> SequenceBuilder::encode_head(std::string_view s, int64_t limit) const {
  // A GPT-2 token rarely spans more than a few bytes; 16 per token plus slack makes
  // the fallback (encode everything) rare.
  const size_t cut_bytes = static_cast<size_t>(limit) * 16 + 256;
  if (s.size() > cut_bytes) {
    size_t cut = cut_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    std::vector<std::string_view> pieces = pretokenize(s.substr(0, cut));
    if (pieces.size() > 3) {
      size_t safe = static_cast<size_t>(pieces[pieces.size() - 3].data() - s.data());
      std::vector<int32_t> ids = tok_->encode(s.substr(0, safe));
      if (static_cast<int64_t>(ids.size()) >= limit) {
        ids.resize(static_cast<size_t>(limit));
        return ids;
      }
    }
  }
  std::vector<int32_t> ids = tok_->encode(s);
  if (static_cast<int64_t>(ids.size()) > limit) ids.resize(static_cast<size_t>(limit));
  return ids;
}

bool SequenceBuilder::build(const std::vector<int32_t>& prefix, std::string_view text,
                            std::vector<int32_t>* out) const {
  const int64_t room = format_.max_len - static_cast<int64_t>(prefix.size());  // >= 1 (prefix())
  std::string part;
  part.reserve(text_before_.size() + text.size() + text_after_.size());
  part.append(text_before_).append(text).append(text_after_);
  // One more than fits tells whether the eos still fits after the text.
  std::vector<int32_t> ids = encode_head(part, room + 1);
  out->assign(prefix.begin(), prefix.end());
  bool truncated = static_cast<int64_t>(ids.size()) + 1 > room;
  size_t keep = std::min<size_t>(ids.size(), static_cast<size_t>(room));
  out->insert(out->end(), ids.begin(), ids.begin() + keep);
  if (!truncated) out->push_back(format_.eos_id);
  return truncated;
}

}  // namespace bora
