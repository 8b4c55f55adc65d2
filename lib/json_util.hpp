// JSON helpers shared by every reader of JSON files (configs, Hub configs, safetensors headers): a bounded parse
// that refuses hostile nesting before building anything, short value excerpts for error messages, table-driven
// enum <-> string mappings, and the size-bounded read of the small files they come from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "errors.hpp"

namespace vit {

// A value for an error message: short, and never a deep recursive dump of hostile nesting.
std::string brief(const nlohmann::json& v);

struct JsonLimits {
    std::size_t max_depth = 16;                                      // nested objects/arrays
    std::size_t max_list = std::numeric_limits<std::size_t>::max();  // elements of any one array
};

// Parses [begin, end) after a first SAX pass that builds nothing and checks `limits` (nlohmann's callback
// parser could do it in one pass but is quadratic in the number of keys of an object). `duplicate_key`, when
// given, receives the first top-level key that appears twice (invisible once parsed into a map).
// Limit violations throw ModelError ("nested deeper than 16 levels", for the caller to prefix with the file);
// syntax errors throw nlohmann::json::exception.
nlohmann::json parse_bounded(const char* begin, const char* end, const JsonLimits& limits,
                             std::string* duplicate_key = nullptr);
inline nlohmann::json parse_bounded(const std::string& text, const JsonLimits& limits) {
    return parse_bounded(text.data(), text.data() + text.size(), limits);
}

// One row of an enum <-> string table.
template <typename E>
struct EnumName {
    E value;
    const char* name;
};

template <typename E>
const char* enum_to_string(std::initializer_list<EnumName<E>> table, E v) {
    for (const auto& row : table)
        if (row.value == v) return row.name;
    return "?";
}

// Throws ModelError: `key "x" is not one of "a", "b"`.
template <typename E>
E enum_from_string(std::initializer_list<EnumName<E>> table, const std::string& s, const std::string& key) {
    std::string names;
    for (const auto& row : table) {
        if (s == row.name) return row.value;
        names += std::string(names.empty() ? "" : ", ") + "\"" + row.name + "\"";
    }
    throw ModelError(key + " \"" + s + "\" is not one of " + names);
}

// The whole of a small text file (config, labels, weights index), refused past `limit` bytes; ModelError names
// the file.
std::string read_small_file(const std::filesystem::path& p, const char* what, std::uintmax_t limit);

}  // namespace vit
