// A structural scanner for JSON text: finds where values begin and end without parsing
// them. simdjson validates the document; this finds each array element's bytes (simdjson's
// DOM keeps no source positions) and, on the error path, which element is at fault.
// Works on any bytes without reading past `end`; on invalid JSON its answers are best
// effort (nullptr / false), never out of bounds. Iterative: no recursion on nesting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sqsrelay::json_scan {

inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

inline const char* skip_ws(const char* p, const char* end) {
  while (p < end && is_ws(*p)) ++p;
  return p;
}

// `p` points just after an opening quote; returns the byte after the closing quote.
const char* skip_string(const char* p, const char* end);

// Skips the value starting at `p` (no leading whitespace); returns its end, or nullptr.
// `max_depth` is raised to the deepest nesting seen (1 for `[]`, 0 for a scalar).
// `saw_space`, when given, tells whether whitespace outside strings occurs in the value.
const char* skip_value(const char* p, const char* end, size_t& max_depth,
                       bool* saw_space = nullptr);

// Splits `array` (starting with '[') into its elements' bytes. On failure, `fail` is the
// first byte that does not fit. `compact`, when given, gets one flag per element: 1 when
// the element has no whitespace outside strings (its bytes are already minified).
bool split_array(std::string_view array, std::vector<std::string_view>& out, const char*& fail,
                 std::vector<uint8_t>* compact = nullptr);

// The bytes of the value at JSON Pointer `pointer` in `doc` (which starts at a value), or
// empty. Object keys are compared as written (a key spelled with escapes does not match).
std::string_view locate(std::string_view doc, std::string_view pointer);

// True when `t` is a JSON number (RFC 8259 grammar) that simdjson's DOM cannot hold: an
// integer outside int64/uint64, or a number whose magnitude overflows (or underflows) a
// double. Such numbers are valid JSON, and message bodies keep their text byte for byte.
bool is_wide_number(std::string_view t);

// Replaces every wide number (above) outside strings in `text` by `0` and spaces, same
// length, so that the DOM parses and every other byte stays where it was; returns how
// many it replaced. The caller takes such numbers' text from the original bytes.
size_t mask_wide_numbers(std::string& text);

}  // namespace sqsrelay::json_scan
