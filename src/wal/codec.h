// Encoding and decoding of the byte layout in wal_format.h: segment headers, record
// headers and segment file names. Pure functions, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "wal/wal_format.h"

namespace sqsrelay::wal {

inline void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

inline uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

inline uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + crc_mask_delta; }

inline uint32_t unmask_crc(uint32_t masked) {
  uint32_t rot = masked - crc_mask_delta;
  return (rot >> 17) | (rot << 15);
}

using segment_header = std::array<char, segment_header_size>;

segment_header encode_segment_header(uint32_t segment);

// ok: the header of `segment`. damaged: bytes that are not an intact header (wrong magic or
// checksum): the header was overwritten or rotted, the records after it may be intact.
// foreign: an intact header of another segment number or an older version (a renamed or
// copied file). newer_version: an intact header this build cannot read.
enum class header_check { ok, damaged, foreign, newer_version };
// Checks a full header read from the file that should hold `segment`.
header_check check_segment_header(std::span<const char, segment_header_size> bytes,
                                  uint32_t segment);
// True when `bytes` (shorter than a header) could be the start of segment's header: what a
// crash during segment creation leaves behind.
bool is_torn_segment_header(std::span<const char> bytes, uint32_t segment);

// Fills the record header at the front of `record`, which holds record_header_size bytes of
// space (the type already at record_type_offset) followed by the payload.
void seal_record(std::span<char> record);

// The masked checksum a record header must carry for `type_and_payload`.
uint32_t record_crc(std::span<const char> type_and_payload);

// Shifts a crc32c by `bytes`: multiplies it by x^(8·bytes) modulo the CRC polynomial. With
// it, crc32c(b) == crc32c(ab) ^ crc32c_shift(size of b)(crc32c(a)) (the inverse of zlib's
// crc32_combine), so recovery can checksum any range of a segment from a few prefix
// checksums, in time that does not grow with the range. Construction takes up to 8
// multiplications, each application one.
class crc32c_shift {
 public:
  explicit crc32c_shift(uint64_t bytes);
  uint32_t operator()(uint32_t crc) const;

 private:
  uint32_t factor_;  // x^(8·bytes) mod the polynomial
};

std::string segment_file_name(uint32_t segment);
// The segment number of a name made by segment_file_name(), or nothing for any other name.
std::optional<uint32_t> parse_segment_file_name(std::string_view name);

}  // namespace sqsrelay::wal
