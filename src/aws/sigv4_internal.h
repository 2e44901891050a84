// Helpers shared by sigv4.cc and sigv4_verifier.cc. Not part of the module's interface.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/sigv4.h"

namespace sqsrelay::aws::detail {

// Percent-encodes every byte except A-Za-z0-9 - _ . ~ (and '/' when keep_slash), uppercase hex.
void uri_encode_append(std::string_view in, bool keep_slash, std::string& out);
std::string uri_encode(std::string_view in);
// "%XX" (two hex digits) -> byte; a '%' not followed by two hex digits stays literal; '+' stays.
std::string percent_decode(std::string_view in);
// Splits on every `sep`, keeping empty parts ("a,,b" -> "a", "", "b"; "" -> "").
std::vector<std::string_view> split(std::string_view s, char sep);
// Raw query -> decoded (name, value) pairs in order; a piece without '=' has an empty value.
std::vector<std::pair<std::string, std::string>> decode_query(std::string_view raw_query);
// Request-target -> (path, query) split at the first '?'.
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

std::string ascii_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
size_t count_headers(const header_list& headers, std::string_view name);
std::optional<std::string_view> first_header(const header_list& headers, std::string_view name);

// Overwrites key material in a way the compiler may not optimize out.
void secure_wipe(void* p, size_t n);

}  // namespace sqsrelay::aws::detail
