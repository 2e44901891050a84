// Byte layout of the message store's WAL records (docs/store_format.md). All integers are
// little-endian. The WAL adds framing and a CRC per record; these are the payloads.
#pragma once

#include <cstdint>

namespace sqsrelay::server::store_format {

enum record_type : uint8_t {
  // u64 queue_id, u16 count, then count × (u32 blob_len, blob). One record per
  // SendMessage(Batch) call; each blob is one message (layout below) and is read back
  // by location on receive.
  send_batch = 1,
  // u64 queue_id, u16 count, count × u64 seq.
  delete_batch = 2,
  // u64 from_queue_id, u64 seq, u64 to_queue_id, u64 new_seq: moved to a dead-letter queue.
  move = 3,
  // u64 queue_id: every message of the queue sent before this record is gone.
  purge = 4,
  // u64 queue_id, i64 now_ms, u16 count, count × u64 seq: these messages were received
  // (receive counts survive restarts). Appended without waiting for durability.
  receive = 5,
};

// Message blob: u64 seq | u8[16] message id | i64 sent_ms | u32 delay_s | u8 flags |
// u8[16] md5 body | u8[16] md5 attributes | u8[16] md5 system attributes |
// u16 len + sender id | u16 len + AWSTraceHeader | u32 len + body |
// u8 attribute count, each: u16 len + name, u16 len + data type, u8 binary, u32 len + value |
// with flag_has_group_id: u16 len + MessageGroupId (blobs written before it lack the flag).
inline constexpr uint8_t flag_has_attributes = 1;
inline constexpr uint8_t flag_has_system_attributes = 2;
inline constexpr uint8_t flag_has_group_id = 4;
inline constexpr uint32_t blob_fixed_bytes = 8 + 16 + 8 + 4 + 1 + 16 * 3;

}  // namespace sqsrelay::server::store_format
