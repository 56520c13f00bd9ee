// fuzz_safetensors: libFuzzer target for the safetensors header parser
// (model/safetensors_header.h; built with -DBORA_FUZZ=ON and clang).
//
//   mkdir corpus && BORA_FUZZ_SEEDS=corpus build-fuzz/bin/fuzz_safetensors  # seeds + corpus.dict
//   build-fuzz/bin/fuzz_safetensors -dict=corpus.dict -max_len=4096 -max_total_time=180 corpus
//
// Every input is a whole file. parse_st_header must either throw bora::FormatError
// (any other exception, or a crash, is a failure) or return a header such that:
//   - data_start = 8 + header_len <= file size, header_len = the first 8 bytes (LE);
//   - every tensor lies inside the data section: begin <= end <= data size;
//   - end - begin = numel x dtype size (computed here in 128-bit, no overflow);
//   - no two non-empty tensors overlap (checked over ALL pairs, by a sweep);
//   - tensors are in file order and names are unique, find() finds each;
//   - build_st_header of what was parsed parses back to the same tensors and
//     metadata (writer and parser agree), with a data section starting at a
//     multiple of 8.
// A failed check prints the case and aborts (libFuzzer then saves the input).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "model/safetensors_header.h"

namespace {

using bora::StDType;
using bora::StHeader;
using bora::StTensorInfo;

[[noreturn]] void fail(const std::string& what, const uint8_t* data, size_t size) {
  std::fprintf(stderr, "fuzz_safetensors: CHECK FAILED: %s\ninput (%zu bytes): ", what.c_str(), size);
  for (size_t i = 0; i < size && i < 400; ++i) {
    unsigned char c = data[i];
    if (i >= 8 && c >= 32 && c < 127) std::fputc(c, stderr);
    else std::fprintf(stderr, "\\x%02x", c);
  }
  std::fprintf(stderr, "\n");
  std::abort();
}

#define CHECK(cond, what)                    \
  do {                                       \
    if (!(cond)) fail(what, data, size);     \
  } while (0)

// Parses, turning every exception but FormatError into a failure. Returns false on
// FormatError.
bool parse(const uint8_t* bytes, uint64_t file_size, StHeader* out, const uint8_t* data, size_t size) {
  try {
    *out = bora::parse_st_header(bytes, file_size, "fuzz");
    return true;
  } catch (const bora::FormatError&) {
    return false;
  } catch (const std::exception& e) {
    // BORA_FUZZ_TOLERATE_406=1 counts nlohmann's "number overflow" out_of_range
    // (a known escape from FormatError, reported) as a rejection, so that a long
    // campaign can look past it for other failures.
    static const bool tolerate_406 = std::getenv("BORA_FUZZ_TOLERATE_406") != nullptr;
    if (tolerate_406 && std::strstr(e.what(), "out_of_range.406")) return false;
    fail(std::string("exception other than FormatError: ") + typeid(e).name() + ": " + e.what(), data,
         size);
  } catch (...) {
    fail("non-std exception", data, size);
  }
}

void check_header(const StHeader& h, uint64_t file_size, const uint8_t* bytes, const uint8_t* data,
                  size_t size) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  CHECK(h.header_len == n, "header_len differs from the first 8 bytes");
  CHECK(h.data_start == 8 + n, "data_start != 8 + header_len");
  CHECK(h.data_start <= file_size, "header runs past the file");
  const uint64_t data_size = file_size - h.data_start;
  std::set<std::string> names;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const StTensorInfo& t = h.tensors[i];
    CHECK(names.insert(t.name).second, "duplicate tensor name");
    CHECK(t.name != "__metadata__", "__metadata__ parsed as a tensor");
    CHECK(h.find(t.name) == &t, "find() does not find the tensor");
    CHECK(t.begin <= t.end, "begin > end");
    CHECK(t.end <= data_size, "tensor ends past the file");
    unsigned __int128 bytes_needed = static_cast<unsigned __int128>(bora::st_dtype_size(t.dtype));
    for (int64_t d : t.shape) {
      CHECK(d >= 0, "negative dimension");
      bytes_needed *= static_cast<uint64_t>(d);
      if (bytes_needed > (static_cast<unsigned __int128>(1) << 64)) bytes_needed = static_cast<unsigned __int128>(1) << 64;
    }
    CHECK(bytes_needed == t.end - t.begin, "tensor size != numel x dtype size");
    CHECK(static_cast<unsigned __int128>(t.numel()) * static_cast<uint64_t>(bora::st_dtype_size(t.dtype)) ==
              t.end - t.begin,
          "numel() disagrees with the byte size");
    if (i > 0) {
      const StTensorInfo& p = h.tensors[i - 1];
      CHECK(p.begin < t.begin || (p.begin == t.begin && p.end <= t.end), "tensors not in file order");
    }
  }
  // Non-empty tensors pairwise disjoint: sorted by begin, each must start at or
  // after the largest end seen so far.
  uint64_t max_end = 0;
  std::string max_name;
  for (const StTensorInfo& t : h.tensors) {
    if (t.begin == t.end) continue;
    CHECK(t.begin >= max_end, "tensors '" + max_name + "' and '" + t.name + "' overlap");
    max_end = t.end;
    max_name = t.name;
  }

  // Round trip through the writer: same tensors and metadata.
  std::string header = bora::build_st_header(h.tensors, h.metadata);
  CHECK(header.size() % 8 == 0, "built header does not align the data section to 8 bytes");
  std::string file = header + std::string(data_size, '\0');
  StHeader back;
  CHECK(parse(reinterpret_cast<const uint8_t*>(file.data()), file.size(), &back, data, size),
        "the built header does not parse back");
  CHECK(back.tensors.size() == h.tensors.size(), "round trip: tensor count differs");
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const StTensorInfo& a = h.tensors[i];
    const StTensorInfo& b = back.tensors[i];
    CHECK(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin &&
              a.end == b.end,
          "round trip: tensor '" + a.name + "' differs");
  }
  CHECK(back.metadata == h.metadata, "round trip: metadata differs");
}

// Valid files for the seed corpus (the fuzzer mutates from these).
std::string make_file(const std::vector<StTensorInfo>& specs, const std::map<std::string, std::string>& meta,
                      bool with_data = true) {
  std::vector<StTensorInfo> ts = specs;
  uint64_t off = 0;
  for (auto& t : ts) {
    t.begin = off;
    t.end = off + static_cast<uint64_t>(t.numel() * bora::st_dtype_size(t.dtype));
    off = t.end;
  }
  std::string out = bora::build_st_header(ts, meta);
  if (with_data) out += std::string(off, '\x01');
  return out;
}

StTensorInfo T(const char* name, StDType d, std::vector<int64_t> shape) {
  StTensorInfo t;
  t.name = name;
  t.dtype = d;
  t.shape = std::move(shape);
  return t;
}

void write_seeds(const std::string& dir) {
  std::vector<std::string> seeds = {
      make_file({}, {}),
      make_file({T("w", StDType::F32, {2, 3})}, {}),
      make_file({T("model.decoder.embed_tokens.weight", StDType::F16, {4, 2}),
                 T("model.decoder.layers.0.fc1.bias", StDType::BF16, {3}),
                 T("scalar", StDType::F64, {})},
                {{"format", "pt"}}),
      make_file({T("empty", StDType::I64, {0, 5}), T("b", StDType::BOOL, {3}), T("u", StDType::U8, {1, 1, 1}),
                 T("i8", StDType::I8, {2}), T("i16", StDType::I16, {1}), T("u16", StDType::U16, {1}),
                 T("i32", StDType::I32, {1}), T("u32", StDType::U32, {1}), T("u64", StDType::U64, {1})},
                {{"format", "pt"}, {"note", "seed"}}),
      make_file({T("a", StDType::F32, {1}), T("b", StDType::F32, {1})}, {}, false),  // truncated data
      make_file({T("a", StDType::F32, {4}), T("e", StDType::F32, {0}), T("c", StDType::F32, {2})}, {}),
  };
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream f(dir + "/seed" + std::to_string(i) + ".safetensors", std::ios::binary);
    f << seeds[i];
  }
  std::ofstream d(dir + ".dict");  // beside the corpus, not in it
  for (const char* w : {"dtype", "shape", "data_offsets", "__metadata__", "F32", "F16", "BF16", "F64",
                        "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL", "format", "pt",
                        "[", "]", "{", "}", ":", ",", "0", "1", "-1", "1e999", "1.5", "18446744073709551615",
                        "18446744073709551616", "9223372036854775807", "null", "true", "\\u0000", "\\ud800"})
  {
    std::string e;  // a libFuzzer dictionary entry: "..." with " and \\ escaped
    for (const char* c = w; *c; ++c) {
      if (*c == '"' || *c == '\\') e += '\\';
      e += *c;
    }
    d << '"' << e << "\"\n";
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("BORA_FUZZ_SEEDS")) {
    write_seeds(dir);
    std::fprintf(stderr, "fuzz_safetensors: wrote seeds to %s/ and a dictionary to %s.dict\n", dir, dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StHeader h;
  if (parse(data, size, &h, data, size)) check_header(h, size, data, data, size);
  return 0;
}
