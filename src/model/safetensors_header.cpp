#include "model/safetensors_header.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/json.h"

namespace bora {
namespace {

struct DTypeRow {
  StDType dtype;
  const char* name;
  int64_t size;
};
constexpr DTypeRow kDTypes[] = {
    {StDType::BOOL, "BOOL", 1}, {StDType::U8, "U8", 1},     {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},   {StDType::U16, "U16", 2},   {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2}, {StDType::I32, "I32", 4},   {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},   {StDType::I64, "I64", 8},   {StDType::U64, "U64", 8},
    {StDType::F64, "F64", 8},
};

// A header larger than this is not a real checkpoint (HF's own limit is 100 MB).
constexpr uint64_t kMaxHeaderLen = 100ull << 20;

}  // namespace

StDType st_dtype_from_name(const std::string& name, const std::string& origin,
                           const std::string& tensor) {
  for (const auto& row : kDTypes)
    if (name == row.name) return row.dtype;
  BORA_THROW(FormatError, origin, ": tensor '", tensor, "' has unknown dtype '", name, "'");
}

const char* st_dtype_name(StDType d) { return kDTypes[static_cast<int>(d)].name; }
int64_t st_dtype_size(StDType d) { return kDTypes[static_cast<int>(d)].size; }

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

const StTensorInfo* StHeader::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

StHeader parse_st_header(const uint8_t* bytes, uint64_t file_size, const std::string& origin) {
  BORA_CHECK(file_size >= 8, FormatError, origin, ": too short for a safetensors file (", file_size,
             " bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian, host-independent
  BORA_CHECK(n <= file_size - 8, FormatError, origin, ": header length ", n,
             " runs past end of file (", file_size, " bytes)");
  BORA_CHECK(n <= kMaxHeaderLen, FormatError, origin, ": header length ", n, " is implausibly large");
  StHeader h;
  h.header_len = n;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;

  Json j;
  try {
    j = Json::parse(bytes + 8, bytes + 8 + n);
  } catch (const nlohmann::json::parse_error& e) {
    BORA_THROW(FormatError, origin, ": invalid JSON in header at byte ", 8 + e.byte);
  } catch (const nlohmann::json::exception& e) {
    // e.g. out_of_range for a number that overflows a double ("1e999")
    BORA_THROW(FormatError, origin, ": invalid JSON in header (", e.what(), ")");
  }
  BORA_CHECK(j.is_object(), FormatError, origin, ": header is not a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      BORA_CHECK(v.is_object(), FormatError, origin, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        BORA_CHECK(m.value().is_string(), FormatError, origin, ": __metadata__ value of '", m.key(),
                   "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    BORA_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                   v.contains("data_offsets"),
               FormatError, origin, ": tensor '", name, "' needs dtype, shape and data_offsets");
    const Json& jd = v["dtype"];
    const Json& js = v["shape"];
    const Json& jo = v["data_offsets"];
    BORA_CHECK(jd.is_string(), FormatError, origin, ": tensor '", name, "': dtype is not a string");
    BORA_CHECK(js.is_array(), FormatError, origin, ": tensor '", name, "': shape is not an array");
    BORA_CHECK(jo.is_array() && jo.size() == 2 && jo[0].is_number_unsigned() &&
                   jo[1].is_number_unsigned(),
               FormatError, origin, ": tensor '", name, "': data_offsets must be [begin, end]");
    StTensorInfo t;
    t.name = name;
    t.dtype = st_dtype_from_name(jd.get<std::string>(), origin, name);
    // numel * element size must not overflow: bound every factor by the data size.
    uint64_t bytes_needed = static_cast<uint64_t>(st_dtype_size(t.dtype));
    for (const Json& d : js) {
      BORA_CHECK(d.is_number_unsigned(), FormatError, origin, ": tensor '", name,
                 "': shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      BORA_CHECK(dim <= data_size && (dim == 0 || bytes_needed <= data_size / dim + 1), FormatError,
                 origin, ": tensor '", name, "': shape is larger than the file");
      bytes_needed *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    t.begin = jo[0].get<uint64_t>();
    t.end = jo[1].get<uint64_t>();
    BORA_CHECK(t.begin <= t.end && t.end <= data_size, FormatError, origin, ": tensor '", name,
               "': data_offsets [", t.begin, ", ", t.end, "] outside the data section (", data_size,
               " bytes)");
    BORA_CHECK(t.end - t.begin == bytes_needed, FormatError, origin, ": tensor '", name, "': ",
               t.end - t.begin, " bytes for a ", st_dtype_name(t.dtype), " tensor of ", bytes_needed,
               " bytes");
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by begin, non-empty tensors must each start at or after the furthest end
  // so far (empty tensors occupy no bytes and are skipped, not compared: an empty
  // one between two overlapping tensors must not hide their overlap).
  const StTensorInfo* furthest = nullptr;
  for (const auto& t : h.tensors) {
    if (t.begin == t.end) continue;
    BORA_CHECK(!furthest || furthest->end <= t.begin, FormatError, origin, ": tensors '", furthest->name,
               "' and '", t.name, "' overlap");
    if (!furthest || t.end > furthest->end) furthest = &t;
  }
  return h;
}

std::string build_st_header(const std::vector<StTensorInfo>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  OrderedJson j = OrderedJson::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  for (const auto& t : tensors)
    j[t.name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape},
                 {"data_offsets", {t.begin, t.end}}};
  std::string json = j.dump();
  json.resize((json.size() + 8 + 7) / 8 * 8 - 8, ' ');
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

}  // namespace bora
