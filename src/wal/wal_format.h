// On-disk constants of the write-ahead log. The byte layout is described in
// docs/wal_format.md; change both together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sqsrelay::wal {

// A segment file starts with this header:
//   magic[8] = "SQRLWAL1" | u32 format_version | u32 segment_number | u32 masked_crc32c
// where the checksum covers the 16 bytes before it. All integers are little-endian.
inline constexpr std::string_view segment_magic = "SQRLWAL1";
inline constexpr uint32_t format_version = 1;
inline constexpr size_t segment_header_size = 20;

// Each record is:  u32 masked_crc32c(type, payload) | u32 payload_length | u8 type | payload
inline constexpr size_t record_header_size = 9;
inline constexpr size_t record_type_offset = 8;  // the checksum starts here

// Checksums are stored masked (as leveldb does): a crc of data that itself contains
// crcs is otherwise prone to trivial collisions.
inline constexpr uint32_t crc_mask_delta = 0xa282ead8u;

// Segment files are named wal-<number>.log with the number zero-padded to 8 digits.
inline constexpr std::string_view segment_file_prefix = "wal-";
inline constexpr std::string_view segment_file_suffix = ".log";
// A preallocated file being prepared for the next segment (options::preallocate); renamed
// to the segment's name when the log rolls into it. Not part of the log: deleted at open.
inline constexpr std::string_view prepared_file_name = "prepared.tmp";
// Taken with flock() so that two processes never open one log directory.
inline constexpr std::string_view lock_file_name = "LOCK";

// Segment numbers start at 1; 0 never names a segment (a default `location` is invalid).
inline constexpr uint32_t first_segment = 1;

}  // namespace sqsrelay::wal
