// What `sqsrelay run` keeps in the spool per message: the destination (endpoint name and
// queue) and the message (body, attributes, FIFO ids). Little-endian, length-prefixed:
//   u8 version (1), u8 flags (bit 0: the source waits for delivery, ack = delivered)
//   u16 endpoint length, endpoint bytes; u16 queue length, queue bytes
//   u32 body length, body bytes
//   u8 attribute count; per attribute: u16 name length, name; u16 type length, type;
//                                      u32 value length, value (raw bytes for Binary)
//   u16 group id length, group id; u16 dedup id length, dedup id
// The spool's own framing (docs/spool_format.md) checksums each record.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sqs/message.h"

namespace sqsrelay::app {

inline constexpr uint8_t spool_flag_ack_delivered = 1;

struct spool_message_view {
  uint8_t flags = 0;
  std::string_view endpoint, queue, body, group_id, dedup_id;
  std::vector<sqs::attribute_view> attributes;  // `binary` set for Binary types
};

// Appends one record to `out`.
void encode_spool_record(std::string& out, const spool_message_view& m);
// Views into `rec`; nullopt when it is not a well-formed version-1 record.
std::optional<spool_message_view> decode_spool_record(std::string_view rec);

}  // namespace sqsrelay::app
