// On-disk constants of the spool. The byte layout is described in docs/spool_format.md;
// change both together. Segments are write-ahead-log segments (docs/wal_format.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sqsrelay::spool {

// <dir>/log/          the wal directory: LOCK and wal-%08u.log segments
// <dir>/position      the persisted delivery position (two slots)
// <dir>/quarantine.bin  damaged byte ranges copied out by recovery and the reader
inline constexpr std::string_view log_dir_name = "log";
inline constexpr std::string_view position_file_name = "position";
inline constexpr std::string_view quarantine_file_name = "quarantine.bin";

// The only wal record type the spool writes: a group of records appended by one or more
// append() calls that shared one write.
//   u64 first_seq | u32 count | count × (u32 length | length bytes)
// Records of a group have the consecutive seqs first_seq … first_seq + count − 1.
inline constexpr uint8_t group_record_type = 1;
inline constexpr size_t group_header_size = 12;
inline constexpr size_t record_length_size = 4;

// Position file: two slots of 32 bytes; the valid slot with the higher generation wins.
//   magic[8] = "SQRLPOS1" | u64 generation | u64 position | u32 reserved (0) |
//   u32 masked crc32c of bytes 0–27
// Generation g is written to slot g % 2, so a torn write leaves the other slot intact.
inline constexpr std::string_view position_magic = "SQRLPOS1";
inline constexpr size_t position_slot_size = 32;
inline constexpr size_t position_slots = 2;
inline constexpr size_t position_file_size = position_slot_size * position_slots;

// Quarantine file: magic[8] = "SQRLQRN1", then entries:
//   u32 masked crc32c of the rest of the entry | u32 segment | u64 offset |
//   u64 damaged_length | u32 copied_length | copied_length bytes
// copied_length < damaged_length once the copy budget is spent (only where is recorded).
inline constexpr std::string_view quarantine_magic = "SQRLQRN1";
inline constexpr size_t quarantine_entry_header_size = 28;

}  // namespace sqsrelay::spool
