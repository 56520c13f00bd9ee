// JSON through nlohmann::json, with file helpers whose errors name the file and
// the byte where parsing failed.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace bora {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

Json parse_json(const std::string& text, const std::string& origin);
Json read_json_file(const std::string& path);
void write_json_file_atomic(const std::string& path, const Json& j, int indent = 2);
void write_json_file_atomic(const std::string& path, const OrderedJson& j, int indent = 2);

// Typed access with errors that name the file and the key.
template <class T>
T json_get(const Json& j, const std::string& key, const std::string& origin);

}  // namespace bora

#include "core/json_inl.h"
