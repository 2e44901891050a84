// Encodes messages into store records and decodes them back (see store_format.h).
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "sqs/message.h"

namespace sqsrelay::server {

using message_id = std::array<uint8_t, 16>;

// A message ready to be stored: validated, digests computed.
struct prepared_message {
  std::string_view body;
  std::span<const sqs::attribute_view> attributes;
  std::string_view trace_header;  // AWSTraceHeader system attribute, may be empty
  std::string_view group_id;      // MessageGroupId (fair queues), may be empty
  int delay_seconds = 0;          // effective delay (message or queue default)
  message_id id{};
  md5_digest md5_body{};
  std::optional<md5_digest> md5_attributes;
  std::optional<md5_digest> md5_system;
};

// A decoded blob; views point into the buffer it was decoded from.
struct message_view {
  uint64_t seq = 0;
  message_id id{};
  int64_t sent_ms = 0;
  uint32_t delay_seconds = 0;
  md5_digest md5_body{};
  std::optional<md5_digest> md5_attributes;
  std::optional<md5_digest> md5_system;
  std::string_view sender_id;
  std::string_view trace_header;
  std::string_view body;
  std::vector<sqs::attribute_view> attributes;
  std::string_view group_id;
};

// Appends one message blob to `out`; returns the blob's size.
size_t encode_message(std::string& out, const prepared_message& m, uint64_t seq,
                      int64_t sent_ms, std::string_view sender_id);
// Decodes a blob; nullopt when it is truncated or malformed.
std::optional<message_view> decode_message(std::string_view blob);

// Little-endian helpers for record payloads.
void put_u16(std::string& out, uint16_t v);
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);

// A bounds-checked reader over a record payload.
class byte_reader {
 public:
  explicit byte_reader(std::string_view data) : data_(data) {}
  bool u8(uint8_t& v);
  bool u16(uint16_t& v);
  bool u32(uint32_t& v);
  bool u64(uint64_t& v);
  bool bytes(size_t n, std::string_view& v);
  size_t position() const { return pos_; }
  bool done() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace sqsrelay::server
