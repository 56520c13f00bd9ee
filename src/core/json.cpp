#include "core/json.h"

#include "core/fs.h"

namespace bora {

Json parse_json(const std::string& text, const std::string& origin) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    BORA_THROW(FormatError, origin, ": invalid JSON at byte ", e.byte);
  } catch (const nlohmann::json::exception& e) {
    BORA_THROW(FormatError, origin, ": invalid JSON (", e.what(), ")");
  }
}

Json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

void write_json_file_atomic(const std::string& path, const Json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

void write_json_file_atomic(const std::string& path, const OrderedJson& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace bora
