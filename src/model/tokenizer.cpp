// GPT-2 byte-level BPE (see tokenizer.h): loading vocab.json + merges.txt or
// tokenizer.json, encode/decode, identity, save and truncation.
//
// Encoding a text: validate UTF-8, cut it into pre-tokens (pretokenize.cpp), and for
// each pre-token append its BPE ids, taken from a cache when the pre-token was seen
// before. Natural text repeats its words, so after a few MB nearly every pre-token is
// a cache hit and the cost is the scan plus one hash probe per word.
//
// BPE works on vocabulary ids, never on strings: each byte starts as the id of its
// bytes_to_unicode character, and merges are looked up in an open-addressing table
// keyed by the pair of ids. Each round merges every occurrence of the lowest-ranked
// adjacent pair, left to right, exactly like OpenAI's encoder.py bpe() and HF
// tokenizers; short words use a linear scan, long ones (> kShortWord bytes) a heap
// so that a megabyte of letters without a space costs O(n log n), not O(n^2).
// Duplicate merges: the last rank wins, as in HF tokenizers.
//
// tiktoken, the reference, runs BPE differently: it has no merge list, only each
// token's bytes and rank; it merges the adjacent pair whose concatenation is the
// lowest-ranked token, and looks a whole pre-token up as one token first. For GPT-2's
// ranks (where the rank of a token is the rank of the merge that makes it) both give
// the same ids: test_tokenizer_reference.py checks every vocabulary token in context,
// the fortunes of every language and a Unicode sweep against tiktoken.
#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"

namespace bora {

namespace detail {  // pretokenize.cpp
size_t pretoken_end(std::string_view text, size_t pos);
void check_utf8(std::string_view text);
}  // namespace detail

namespace {

constexpr int32_t kNoRank = INT32_MAX;
// Ids above this are surely a corrupt file (real vocabularies have < 300K tokens);
// the limit also bounds what a corrupt id can make us allocate.
constexpr int64_t kMaxVocab = int64_t(1) << 21;
// Words up to this many bytes use the linear-scan BPE on stack arrays.
constexpr size_t kShortWord = 64;
// Longer pre-tokens are rare and mostly unique (URLs, base64): not cached.
constexpr size_t kMaxCachedPiece = 256;

// Token strings in messages: quoted, control bytes escaped, long ones shortened.
std::string quote(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 60; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 60) out += "...";
  return out + "'";
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode: every byte is shown as a printable character, the
// printable Latin-1 bytes as themselves and the others as U+0100 + n, in this order.
struct ByteMap {
  std::array<uint8_t, 256> order{};     // bytes in bytes_to_unicode order
  std::array<uint32_t, 256> cp{};       // byte -> code point
  std::array<std::string, 256> text{};  // byte -> UTF-8 of that code point
  std::array<int16_t, 0x144> byte_of{};  // code point -> byte, -1 for none

  ByteMap() {
    int k = 0;
    std::array<bool, 256> printable{};
    for (int b = 0; b < 256; ++b) {
      printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      if (printable[b]) order[k++] = static_cast<uint8_t>(b);
    }
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      cp[b] = printable[b] ? b : 256 + n++;
      if (!printable[b]) order[k++] = static_cast<uint8_t>(b);
    }
    byte_of.fill(-1);
    for (int b = 0; b < 256; ++b) {
      append_utf8(&text[b], cp[b]);
      byte_of[cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;  // immutable after thread-safe first use
  return map;
}

// (left id, right id) -> (rank, merged id); open addressing, linear probing, load
// factor <= 1/2. Built once, read-only afterwards.
class PairTable {
 public:
  struct Slot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    int bits = 4;
    while (cap < 2 * n) {
      cap <<= 1;
      ++bits;
    }
    slots_.assign(cap, Slot{kEmpty, kNoRank, -1});
    shift_ = 64 - bits;
  }

  // Later calls for the same pair overwrite earlier ones (the last rank wins).
  void set(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t k = key(a, b);
    size_t i = index(k);
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = Slot{k, rank, merged};
  }

  const Slot* find(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    size_t i = index(k);
    for (;;) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s;
      if (s.key == kEmpty) return nullptr;
      i = (i + 1) & (slots_.size() - 1);
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are < kMaxVocab: never a key
  static uint64_t key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  size_t index(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> shift_; }

  std::vector<Slot> slots_;
  int shift_ = 60;
};

// Thread-safe cache pre-token -> ids. 64 shards, each a mutex-protected flat hash
// table whose keys and ids live in two arenas, so a hit costs one hash, one lock and
// a copy, and nothing is allocated per entry. A full shard is simply cleared: memory
// stays bounded (~100 MB at most) on any corpus, and the hot words come back at once.
class PieceCache {
 public:
  // Appends the ids of `piece` to `out` and returns true when cached.
  bool lookup(std::string_view piece, uint64_t h, std::vector<int32_t>* out) {
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.slots.empty()) return false;
    for (size_t i = h & kSlotMask;; i = (i + 1) & kSlotMask) {
      uint32_t e = s.slots[i];
      if (e == 0) return false;
      const Entry& en = s.entries[e - 1];
      if (en.hash == h && en.key_len == piece.size() &&
          std::memcmp(s.keys.data() + en.key_off, piece.data(), piece.size()) == 0) {
        const int32_t* ids = s.ids.data() + en.ids_off;
        out->insert(out->end(), ids, ids + en.ids_len);
        return true;
      }
    }
  }

  void insert(std::string_view piece, uint64_t h, const int32_t* ids, size_t n) {
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.slots.empty()) s.slots.assign(kSlots, 0);
    if (s.entries.size() >= kMaxEntries || s.keys.size() + piece.size() > kMaxKeyBytes ||
        s.ids.size() + n > kMaxIds) {
      std::fill(s.slots.begin(), s.slots.end(), 0);
      s.entries.clear();
      s.keys.clear();
      s.ids.clear();
    }
    size_t i = h & kSlotMask;
    for (; s.slots[i] != 0; i = (i + 1) & kSlotMask) {
      const Entry& en = s.entries[s.slots[i] - 1];
      if (en.hash == h && en.key_len == piece.size() &&
          std::memcmp(s.keys.data() + en.key_off, piece.data(), piece.size()) == 0) {
        return;  // another thread was first
      }
    }
    s.entries.push_back(Entry{h, uint32_t(s.keys.size()), uint32_t(piece.size()),
                              uint32_t(s.ids.size()), uint32_t(n)});
    s.keys.append(piece.data(), piece.size());
    s.ids.insert(s.ids.end(), ids, ids + n);
    s.slots[i] = static_cast<uint32_t>(s.entries.size());
  }

 private:
  static constexpr int kShardBits = 6;
  static constexpr size_t kMaxEntries = 16384;     // per shard; load factor <= 1/2
  static constexpr size_t kSlots = 2 * kMaxEntries;
  static constexpr size_t kSlotMask = kSlots - 1;
  static constexpr size_t kMaxKeyBytes = 512 * 1024;
  static constexpr size_t kMaxIds = 128 * 1024;

  struct Entry {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_len;
  };
  struct alignas(64) Shard {  // own cache line: no false sharing between threads
    std::mutex mu;
    std::vector<uint32_t> slots;  // 1 + index into entries; 0 = empty
    std::vector<Entry> entries;
    std::string keys;
    std::vector<int32_t> ids;
  };
  std::array<Shard, size_t(1) << kShardBits> shards_;
};

struct Merge {
  std::string left, right;
};

}  // namespace

struct Tokenizer::Impl {
  // ---- the definition (what identity() hashes) ----
  std::vector<std::string> tokens;  // id -> token string (byte-level form)
  std::vector<uint8_t> present;     // id -> 1 when the id has a token (ids may have gaps)
  std::vector<Merge> merges;        // in rank order
  // ---- derived ----
  std::unordered_map<std::string, int32_t> ids;  // token -> id
  std::vector<uint8_t> special;                   // id -> 1 for special/added tokens
  std::array<int32_t, 256> byte_ids{};            // byte -> id of its byte token
  PairTable pairs;
  std::string decoded;                 // every token's bytes, back to back
  std::vector<uint32_t> decoded_off;   // id -> offset in `decoded`; size = vocab + 1
  int32_t bos = -1, eos = -1, pad = -1;
  uint64_t identity = 0;
  mutable PieceCache cache;

  int32_t find(std::string_view token) const {
    auto it = ids.find(std::string(token));
    return it == ids.end() ? -1 : it->second;
  }

  // Registers token -> id; `where` names the file (and entry) for errors.
  void add_token(const std::string& token, int64_t id, const std::string& where) {
    BORA_CHECK(!token.empty(), FormatError, where, ": empty token (id ", id, ")");
    BORA_CHECK(id >= 0 && id < kMaxVocab, FormatError, where, ": token ", quote(token), " has id ",
               id, ", outside [0, ", kMaxVocab, ")");
    auto it = ids.find(token);
    if (it != ids.end()) {
      BORA_CHECK(it->second == id, FormatError, where, ": token ", quote(token), " has two ids, ",
                 it->second, " and ", id);
      return;
    }
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      present.resize(id + 1, 0);
    }
    BORA_CHECK(!present[id], FormatError, where, ": duplicate id ", id, " (tokens ",
               quote(tokens[id]), " and ", quote(token), ")");
    tokens[id] = token;
    present[id] = 1;
    ids.emplace(token, static_cast<int32_t>(id));
  }

  // The body of Tokenizer::from_tokenizer_json (defined below).
  static std::unique_ptr<Impl> from_tokenizer_json(const Json& j, const std::string& path);

  // Registers every entry of a JSON object token -> id.
  void add_vocab_object(const Json& vocab, const std::string& where) {
    BORA_CHECK(vocab.is_object(), FormatError, where,
               ": expected a JSON object token -> id, got ", vocab.type_name());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      BORA_CHECK(it.value().is_number_integer(), FormatError, where, ": token ", quote(it.key()),
                 " has a non-integer id (", it.value().dump(), ")");
      add_token(it.key(), it.value().get<int64_t>(), where);
    }
  }

  // Validates merges against the vocabulary and builds every derived table.
  // `vocab_where` names the vocabulary's file, `merge_where(i)` the i-th merge's line.
  template <class Where>
  void finish(const std::string& vocab_where, const Where& merge_where,
              const std::vector<std::string>& extra_special) {
    const ByteMap& bm = byte_map();
    for (int b = 0; b < 256; ++b) {
      byte_ids[b] = find(bm.text[b]);
      BORA_CHECK(byte_ids[b] >= 0, FormatError, vocab_where, ": no token for byte ", b, " (",
                 quote(bm.text[b]), "); not a GPT-2 byte-level BPE vocabulary");
    }

    pairs.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const Merge& m = merges[i];
      int32_t a = find(m.left), b = find(m.right), r = find(m.left + m.right);
      const char* missing = a < 0 ? "its left part" : b < 0 ? "its right part" : "its result";
      BORA_CHECK(a >= 0 && b >= 0 && r >= 0, FormatError, merge_where(i), ": merge ",
                 quote(m.left + " " + m.right), ": ", missing, " is not in the vocabulary ",
                 vocab_where, " (vocab and merges do not match)");
      pairs.set(a, b, static_cast<int32_t>(i), r);
    }

    special.assign(tokens.size(), 0);
    for (const char* name : {"<s>", "<pad>", "</s>", "<unk>", "<|endoftext|>"}) {
      int32_t id = find(name);
      if (id >= 0) special[id] = 1;
    }
    for (const std::string& name : extra_special) {
      int32_t id = find(name);
      if (id >= 0) special[id] = 1;
    }

    // Each token's bytes: byte-level characters map back to their byte; a token with
    // other characters (an added token such as "<mask> ") decodes as its own text.
    decoded.clear();
    decoded_off.assign(tokens.size() + 1, 0);
    for (size_t id = 0; id < tokens.size(); ++id) {
      decoded_off[id] = static_cast<uint32_t>(decoded.size());
      if (!present[id]) continue;
      const std::string& t = tokens[id];
      std::string bytes;
      bool byte_level = !special[id];
      for (size_t i = 0; i < t.size() && byte_level;) {
        auto c = static_cast<uint8_t>(t[i]);
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
          cp = c, len = 1;
        } else if (c < 0xE0) {
          cp = ((c & 0x1Fu) << 6) | (t[i + 1] & 0x3F), len = 2;
        } else {
          cp = 0x10000, len = 1;  // 3- and 4-byte characters are never byte-level
        }
        if (cp < bm.byte_of.size() && bm.byte_of[cp] >= 0) {
          bytes += static_cast<char>(bm.byte_of[cp]);
        } else {
          byte_level = false;
        }
        i += len;
      }
      decoded += byte_level ? bytes : t;
    }
    decoded_off[tokens.size()] = static_cast<uint32_t>(decoded.size());

    // OPT and GPT-2 both begin and end documents with the same token: </s> (OPT,
    // which prepends it) or <|endoftext|> (GPT-2); <s> only when neither exists.
    eos = find("</s>");
    if (eos < 0) eos = find("<|endoftext|>");
    bos = eos >= 0 ? eos : find("<s>");
    pad = find("<pad>");

    // Identity: length-prefixed (id, token) in id order, then the merges in rank order.
    Hasher h;
    auto put_u32 = [&h](uint32_t v) {
      uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
      h.update(b, 4);
    };
    h.update("bora.bpe.v1");
    for (size_t id = 0; id < tokens.size(); ++id) {
      if (!present[id]) continue;
      put_u32(static_cast<uint32_t>(id));
      put_u32(static_cast<uint32_t>(tokens[id].size()));
      h.update(tokens[id]);
    }
    put_u32(0xFFFFFFFFu);
    for (const Merge& m : merges) {
      put_u32(static_cast<uint32_t>(m.left.size()));
      h.update(m.left);
      put_u32(static_cast<uint32_t>(m.right.size()));
      h.update(m.right);
    }
    identity = h.digest();
  }

  int32_t rank_of(int32_t a, int32_t b, int32_t* merged) const {
    const PairTable::Slot* s = pairs.find(a, b);
    if (!s) return kNoRank;
    *merged = s->merged;
    return s->rank;
  }

  // BPE of one pre-token's bytes, appended to out.
  void bpe(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.size() > kShortWord) {
      bpe_long(piece, out);
      return;
    }
    // sym[i]: the symbols; rank[i]/merged[i]: the pair (sym[i], sym[i+1]).
    int32_t sym[kShortWord], rank[kShortWord], merged[kShortWord];
    uint8_t fresh[kShortWord];  // symbol made by the current round
    int n = static_cast<int>(piece.size());
    for (int i = 0; i < n; ++i) sym[i] = byte_ids[static_cast<uint8_t>(piece[i])];
    for (int i = 0; i + 1 < n; ++i) rank[i] = rank_of(sym[i], sym[i + 1], &merged[i]);
    rank[n - 1] = kNoRank, merged[n - 1] = -1;  // no pair; keeps the copies below defined
    while (n > 1) {
      // The lowest rank; ranks are unique per pair, so its leftmost occurrence is
      // where the left-to-right merging of this round starts.
      int best = 0;
      for (int i = 1; i + 1 < n; ++i) {
        if (rank[i] < rank[best]) best = i;
      }
      if (rank[best] == kNoRank) break;
      const int32_t a = sym[best], b = sym[best + 1], m = merged[best];
      int w = best;
      for (int i = best; i < n; ++w) {
        if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
          sym[w] = m;
          fresh[w] = 1;
          i += 2;
        } else {
          sym[w] = sym[i];
          rank[w] = rank[i];
          merged[w] = merged[i];
          fresh[w] = 0;
          i += 1;
        }
      }
      n = w;
      // Only the pairs that touch a new symbol changed.
      if (best > 0) rank[best - 1] = rank_of(sym[best - 1], sym[best], &merged[best - 1]);
      for (int i = best; i + 1 < n; ++i) {
        if (fresh[i] || fresh[i + 1]) rank[i] = rank_of(sym[i], sym[i + 1], &merged[i]);
      }
    }
    out->insert(out->end(), sym, sym + n);
  }

  // The same rounds with a heap of candidate pairs and a linked list of symbols.
  // A round pops every pair of the lowest rank (one bigram: ranks are unique) in
  // position order and merges those still intact, which is exactly encoder.py's
  // left-to-right sweep; pairs made by the round wait for later rounds.
  void bpe_long(std::string_view piece, std::vector<int32_t>* out) const {
    const int n = static_cast<int>(piece.size());
    std::vector<int32_t> sym(n), prev(n), next(n);
    for (int i = 0; i < n; ++i) {
      sym[i] = byte_ids[static_cast<uint8_t>(piece[i])];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
      int32_t rank, pos, left, right, merged;
      bool operator>(const Cand& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push = [&](int pos) {
      if (pos < 0 || next[pos] < 0) return;
      int32_t m = -1;
      int32_t r = rank_of(sym[pos], sym[next[pos]], &m);
      if (r != kNoRank) heap.push(Cand{r, pos, sym[pos], sym[next[pos]], m});
    };
    // Intact: the left symbol is alive and unchanged, and so is its right neighbour.
    // (A merged symbol is longer than both parts, so ids never repeat at a position.)
    std::vector<uint8_t> alive(n, 1);
    auto intact = [&](const Cand& c) {
      return alive[c.pos] && sym[c.pos] == c.left && next[c.pos] >= 0 &&
             sym[next[c.pos]] == c.right;
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    std::vector<Cand> round;
    while (!heap.empty()) {
      const int32_t r = heap.top().rank;
      round.clear();
      while (!heap.empty() && heap.top().rank == r) {
        if (intact(heap.top())) round.push_back(heap.top());
        heap.pop();
      }
      for (const Cand& c : round) {
        if (!intact(c)) continue;  // consumed by the previous merge of this round
        int q = next[c.pos];
        sym[c.pos] = c.merged;
        alive[q] = 0;
        next[c.pos] = next[q];
        if (next[q] >= 0) prev[next[q]] = c.pos;
        push(prev[c.pos]);
        push(c.pos);
      }
    }
    for (int i = 0; i >= 0; i = next[i]) out->push_back(sym[i]);
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.size() == 1) {
      out->push_back(byte_ids[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (piece.size() > kMaxCachedPiece) {
      bpe(piece, out);
      return;
    }
    uint64_t h = hash64(piece.data(), piece.size());
    if (cache.lookup(piece, h, out)) return;
    size_t before = out->size();
    bpe(piece, out);
    cache.insert(piece, h, out->data() + before, out->size() - before);
  }
};

namespace {

// Splits merges.txt into merges; errors name the file and line.
std::vector<Merge> parse_merges_txt(const std::string& text, const std::string& path,
                                    std::vector<size_t>* line_of) {
  std::vector<Merge> merges;
  size_t line_no = 0, pos = 0, blank_line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 8) == "#version") continue;
    if (line.empty()) {  // allowed only at the end of the file
      if (!blank_line) blank_line = line_no;
      continue;
    }
    BORA_CHECK(!blank_line, FormatError, path, " line ", blank_line, ": empty line");
    size_t sp = line.find(' ');
    BORA_CHECK(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                   line.find(' ', sp + 1) == std::string_view::npos,
               FormatError, path, " line ", line_no,
               ": expected two tokens separated by one space, got ", quote(line));
    merges.push_back(Merge{std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))});
    line_of->push_back(line_no);
  }
  return merges;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  auto impl = std::make_unique<Impl>();
  impl->add_vocab_object(read_json_file(vocab_json), vocab_json);
  std::vector<size_t> line_of;
  impl->merges = parse_merges_txt(read_file(merges_txt), merges_txt, &line_of);
  impl->finish(vocab_json,
               [&](size_t i) { return cat(merges_txt, " line ", line_of[i]); }, {});
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  const Json j = read_json_file(path);
  // Type mismatches deep inside the file surface as nlohmann exceptions: one line each.
  try {
    return Tokenizer(Impl::from_tokenizer_json(j, path));
  } catch (const nlohmann::json::exception& e) {
    BORA_THROW(FormatError, path, ": ", e.what());
  }
}

std::unique_ptr<Tokenizer::Impl> Tokenizer::Impl::from_tokenizer_json(const Json& j,
                                                                       const std::string& path) {
  BORA_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), FormatError, path,
             ": no \"model\" object");
  const Json& model = j["model"];
  if (model.contains("type")) {
    BORA_CHECK(model["type"] == "BPE", FormatError, path, ": model.type is ",
               model["type"].dump(), ", only \"BPE\" is supported");
  }
  // Options that would change the algorithm; GPT-2-style files leave them off.
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    BORA_CHECK(!model.contains(key) || model[key].is_null() || model[key] == "", FormatError,
               path, ": model.", key, " = ", model[key].dump(), " is not supported");
  }
  BORA_CHECK(!model.contains("ignore_merges") || model["ignore_merges"] != true, FormatError, path,
             ": model.ignore_merges = true is not supported");
  // Only the GPT-2 pre-tokenizer (ByteLevel with its regex, no prefix space) is built in.
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    const Json& pre = j["pre_tokenizer"];
    bool ok = pre.is_object() && pre.value("type", "") == "ByteLevel" &&
              pre.value("use_regex", true) && !pre.value("add_prefix_space", false);
    BORA_CHECK(ok, FormatError, path, ": pre_tokenizer ", pre.dump(),
               " is not supported (only GPT-2's ByteLevel, use_regex, no prefix space)");
  }

  auto impl = std::make_unique<Impl>();
  BORA_CHECK(model.contains("vocab"), FormatError, path, ": no model.vocab");
  impl->add_vocab_object(model["vocab"], path + " model.vocab");

  BORA_CHECK(model.contains("merges") && model["merges"].is_array(), FormatError, path,
             ": model.merges is missing or not an array");
  const Json& merges = model["merges"];
  impl->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    // Two layouts: "a b" (older files) or ["a", "b"] (newer; tokens may hold spaces).
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      BORA_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() &&
                     s.find(' ', sp + 1) == std::string::npos,
                 FormatError, path, ": model.merges[", i,
                 "]: expected two tokens separated by one space, got ", quote(s));
      impl->merges.push_back(Merge{s.substr(0, sp), s.substr(sp + 1)});
    } else {
      BORA_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                 FormatError, path, ": model.merges[", i,
                 "]: expected \"a b\" or [\"a\", \"b\"], got ", m.dump());
      impl->merges.push_back(Merge{m[0].get<std::string>(), m[1].get<std::string>()});
    }
  }

  std::vector<std::string> special;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const Json& added = j["added_tokens"];
    BORA_CHECK(added.is_array(), FormatError, path, ": added_tokens is not an array");
    for (size_t i = 0; i < added.size(); ++i) {
      const Json& t = added[i];
      std::string where = cat(path, " added_tokens[", i, "]");
      BORA_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() &&
                     t.contains("content") && t["content"].is_string(),
                 FormatError, where, ": expected {\"id\": int, \"content\": string, ...}");
      const std::string content = t["content"].get<std::string>();
      impl->add_token(content, t["id"].get<int64_t>(), where);
      if (t.contains("special") && t["special"] == true) special.push_back(content);
    }
  }
  impl->finish(path, [&](size_t i) { return cat(path, " model.merges[", i, "]"); }, special);
  return impl;
}

Tokenizer Tokenizer::from_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "tokenizer.json")) return from_tokenizer_json((d / "tokenizer.json").string());
  BORA_CHECK(fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"), IoError, "'", dir,
             "' has no tokenizer.json and no vocab.json + merges.txt");
  return from_files((d / "vocab.json").string(), (d / "merges.txt").string());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  encode_into(text, &ids);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, std::vector<int32_t>* out) const {
  detail::check_utf8(text);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = detail::pretoken_end(text, pos);
    impl_->encode_piece(text.substr(pos, end - pos), out);
    pos = end;
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string text;
  for (int32_t id : ids) {
    BORA_CHECK(id >= 0 && static_cast<size_t>(id) < im.tokens.size() && im.present[id],
               DataError, "decode: id ", id, " is not in the vocabulary (size ", im.tokens.size(),
               ")");
    if (skip_special && im.special[id]) continue;
    text.append(im.decoded, im.decoded_off[id], im.decoded_off[id + 1] - im.decoded_off[id]);
  }
  return text;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens.size()); }

int32_t Tokenizer::token_id(std::string_view token) const { return impl_->find(token); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }

uint64_t Tokenizer::identity() const { return impl_->identity; }
std::string Tokenizer::identity_hex() const { return hex64(impl_->identity); }

void Tokenizer::save(const std::string& dir) const {
  const Impl& im = *impl_;
  make_dirs(dir);
  OrderedJson vocab = OrderedJson::object();
  for (size_t id = 0; id < im.tokens.size(); ++id) {
    if (im.present[id]) vocab[im.tokens[id]] = id;
  }
  std::string merges = "#version: 0.2\n";
  for (size_t i = 0; i < im.merges.size(); ++i) {
    const Merge& m = im.merges[i];
    // merges.txt separates the two parts by a space and merges by a newline.
    BORA_CHECK(m.left.find_first_of(" \n\r") == std::string::npos &&
                   m.right.find_first_of(" \n\r") == std::string::npos,
               FormatError, "cannot save merge ", i, " (", quote(m.left), ", ", quote(m.right),
               ") to merges.txt: a part contains white space");
    merges += m.left;
    merges += ' ';
    merges += m.right;
    merges += '\n';
  }
  write_json_file_atomic(dir + "/vocab.json", vocab);
  write_file_atomic(dir + "/merges.txt", merges);
}

Tokenizer Tokenizer::truncated(int num_merges) const {
  const Impl& im = *impl_;
  BORA_CHECK(num_merges >= 0 && static_cast<size_t>(num_merges) <= im.merges.size(), ConfigError,
             "cannot keep ", num_merges, " merges: the tokenizer has ", im.merges.size());
  auto t = std::make_unique<Impl>();
  const std::string where = cat("truncated(", num_merges, ")");
  int64_t next = 0;
  for (const char* name : {"<s>", "<pad>", "</s>", "<unk>"}) t->add_token(name, next++, where);
  const ByteMap& bm = byte_map();
  for (uint8_t b : bm.order) t->add_token(bm.text[b], next++, where);
  for (int i = 0; i < num_merges; ++i) {
    const Merge& m = im.merges[i];
    // Trained merge lists only use tokens made by earlier merges; anything else
    // would leave a kept merge that can never fire.
    BORA_CHECK(t->find(m.left) >= 0 && t->find(m.right) >= 0, FormatError, where, ": merge ", i,
               " ", quote(m.left + " " + m.right),
               " uses a token that only a later merge makes; cannot truncate here");
    // Two merges with the same result (possible in hand-made lists) share one id.
    if (t->find(m.left + m.right) < 0) t->add_token(m.left + m.right, next++, where);
    t->merges.push_back(m);
  }
  t->finish(where, [&](size_t i) { return cat(where, " merge ", i); }, {});
  return Tokenizer(std::move(t));
}

}  // namespace bora
