// SQS message rules shared by the server and the client: the character set, message
// attribute validation, size accounting and the MD5 digests SQS returns (and SDKs verify).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/hash.h"
#include "sqs/errors.h"

namespace sqsrelay::sqs {

inline constexpr size_t max_batch_entries = 10;
inline constexpr size_t max_batch_bytes = 1048576;
inline constexpr size_t max_message_attributes = 10;
inline constexpr size_t max_batch_entry_id = 80;

// One message attribute as received. Binary values are already base64-decoded bytes.
struct attribute_view {
  std::string_view name;
  std::string_view data_type;  // "String", "Number", "Binary", optionally ".label"
  std::string_view value;      // StringValue, or the decoded BinaryValue
  bool binary = false;
};

// True when `s` is valid UTF-8 and every code point is in SQS's allowed set:
// #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
bool valid_message_text(std::string_view s);
// At most `max_bytes` of `s`, cut before a UTF-8 sequence rather than inside one (for
// echoing client text in error messages).
std::string_view utf8_prefix(std::string_view s, size_t max_bytes);

// A batch entry id: 1..80 characters of [A-Za-z0-9_-].
bool valid_batch_entry_id(std::string_view id);

// Validates names, types and values of message attributes the way SQS does; the first
// problem found is returned as the error SQS would answer with.
std::optional<api_error> validate_attributes(std::span<const attribute_view> attrs);

// The bytes a message counts against MaximumMessageSize: the UTF-8 body plus every
// attribute's name, data type and value.
size_t message_size(std::string_view body, std::span<const attribute_view> attrs);

// MD5OfMessageAttributes as SQS computes it: attributes sorted by name; for each, the
// big-endian u32 length and bytes of name, of data type, one transport byte (1 string,
// 2 binary), then the length and bytes of the value. `attrs` need not be sorted.
md5_digest md5_of_attributes(std::span<const attribute_view> attrs);

// MessageAttributeNames filter: "All", ".*", an exact name, or a "prefix.*" pattern.
bool attribute_name_selected(std::string_view name, std::span<const std::string_view> filter);

}  // namespace sqsrelay::sqs
