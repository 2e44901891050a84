// Encoding and decoding of the spool's byte layout (spool_format.h): group payloads,
// position slots and quarantine entries. Pure functions, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "spool/spool_format.h"

namespace sqsrelay::spool {

void put_u64(char* p, uint64_t v);
uint64_t get_u64(const char* p);

// A group payload whose structure was checked: `count` records whose lengths exactly fill
// `records`.
struct group_view {
  uint64_t first_seq = 0;
  uint32_t count = 0;
  std::span<const char> records;  // count × (u32 length | bytes)
  uint64_t last_seq() const { return first_seq + count - 1; }
};

// Checks the structure of a group payload: a header, at least one record, seqs that do not
// overflow, and record lengths that add up to the payload exactly. Walks the lengths once.
std::optional<group_view> parse_group(std::span<const char> payload);

// Writes a group header for `first_seq`/`count` at `out` (group_header_size bytes).
void encode_group_header(char* out, uint64_t first_seq, uint32_t count);

using position_slot = std::array<char, position_slot_size>;
struct position_value {
  uint64_t generation = 0;
  uint64_t position = 0;
};
position_slot encode_position_slot(position_value v);
// Nothing when the magic, reserved field or checksum is wrong.
std::optional<position_value> decode_position_slot(std::span<const char> slot);

// The header of a quarantine entry; the copied bytes follow it.
std::array<char, quarantine_entry_header_size> encode_quarantine_entry(
    uint32_t segment, uint64_t offset, uint64_t damaged_length, std::span<const char> copied);
struct quarantine_entry {
  uint32_t segment = 0;
  uint64_t offset = 0;
  uint64_t damaged_length = 0;
  std::span<const char> copied;
};
// Decodes the entry at the front of `bytes`; nothing when it is cut short or its checksum
// is wrong. `*size` gets the entry's total size.
std::optional<quarantine_entry> decode_quarantine_entry(std::span<const char> bytes, size_t* size);

}  // namespace sqsrelay::spool
