#include "spool/codec.h"

#include <cstring>

#include "base/hash.h"
#include "wal/codec.h"

namespace sqsrelay::spool {

using wal::get_u32;
using wal::put_u32;

void put_u64(char* p, uint64_t v) {
  put_u32(p, static_cast<uint32_t>(v));
  put_u32(p + 4, static_cast<uint32_t>(v >> 32));
}

uint64_t get_u64(const char* p) { return get_u32(p) | uint64_t{get_u32(p + 4)} << 32; }

std::optional<group_view> parse_group(std::span<const char> payload) {
  if (payload.size() < group_header_size) return std::nullopt;
  group_view g;
  g.first_seq = get_u64(payload.data());
  g.count = get_u32(payload.data() + 8);
  if (g.first_seq == 0 || g.count == 0 || g.first_seq > UINT64_MAX - g.count) return std::nullopt;
  g.records = payload.subspan(group_header_size);
  uint64_t at = 0;
  for (uint32_t i = 0; i < g.count; ++i) {
    if (g.records.size() - at < record_length_size) return std::nullopt;
    const uint64_t len = get_u32(g.records.data() + at);
    at += record_length_size;
    if (g.records.size() - at < len) return std::nullopt;
    at += len;
  }
  if (at != g.records.size()) return std::nullopt;
  return g;
}

void encode_group_header(char* out, uint64_t first_seq, uint32_t count) {
  put_u64(out, first_seq);
  put_u32(out + 8, count);
}

position_slot encode_position_slot(position_value v) {
  position_slot s{};
  std::memcpy(s.data(), position_magic.data(), position_magic.size());
  put_u64(s.data() + 8, v.generation);
  put_u64(s.data() + 16, v.position);
  put_u32(s.data() + 24, 0);
  put_u32(s.data() + 28, wal::mask_crc(crc32c(s.data(), 28)));
  return s;
}

std::optional<position_value> decode_position_slot(std::span<const char> slot) {
  if (slot.size() < position_slot_size) return std::nullopt;
  if (std::memcmp(slot.data(), position_magic.data(), position_magic.size()) != 0) {
    return std::nullopt;
  }
  if (wal::unmask_crc(get_u32(slot.data() + 28)) != crc32c(slot.data(), 28)) return std::nullopt;
  if (get_u32(slot.data() + 24) != 0) return std::nullopt;
  return position_value{get_u64(slot.data() + 8), get_u64(slot.data() + 16)};
}

std::array<char, quarantine_entry_header_size> encode_quarantine_entry(
    uint32_t segment, uint64_t offset, uint64_t damaged_length, std::span<const char> copied) {
  std::array<char, quarantine_entry_header_size> h{};
  put_u32(h.data() + 4, segment);
  put_u64(h.data() + 8, offset);
  put_u64(h.data() + 16, damaged_length);
  put_u32(h.data() + 24, static_cast<uint32_t>(copied.size()));
  uint32_t crc = crc32c(h.data() + 4, h.size() - 4);
  crc = crc32c(copied.data(), copied.size(), crc);
  put_u32(h.data(), wal::mask_crc(crc));
  return h;
}

std::optional<quarantine_entry> decode_quarantine_entry(std::span<const char> bytes, size_t* size) {
  if (bytes.size() < quarantine_entry_header_size) return std::nullopt;
  const uint32_t copied = get_u32(bytes.data() + 24);
  if (bytes.size() - quarantine_entry_header_size < copied) return std::nullopt;
  uint32_t crc = crc32c(bytes.data() + 4, quarantine_entry_header_size - 4);
  crc = crc32c(bytes.data() + quarantine_entry_header_size, copied, crc);
  if (wal::unmask_crc(get_u32(bytes.data())) != crc) return std::nullopt;
  *size = quarantine_entry_header_size + copied;
  return quarantine_entry{get_u32(bytes.data() + 4), get_u64(bytes.data() + 8),
                          get_u64(bytes.data() + 16),
                          bytes.subspan(quarantine_entry_header_size, copied)};
}

}  // namespace sqsrelay::spool
