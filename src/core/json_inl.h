// Template definitions for core/json.h.
#pragma once

#include "core/error.h"

namespace bora {

template <class T>
T json_get(const Json& j, const std::string& key, const std::string& origin) {
  BORA_CHECK(j.is_object() && j.contains(key), FormatError, origin, ": missing key '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    BORA_THROW(FormatError, origin, ": key '", key, "' has the wrong type (", j.at(key).type_name(),
               ")");
  }
}

}  // namespace bora
