// Finds the intact records in a segment's bytes during recovery. Never fails: damage is
// skipped and counted. Pure function over memory, so every corruption case is unit-tested
// without files.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

namespace sqsrelay::wal {

struct scanned_record {
  uint8_t type;
  std::span<const char> payload;  // points into the scanned bytes
  uint64_t offset;                // file offset of the payload's first byte
};

struct scan_result {
  uint64_t valid_end = 0;  // file offset just past the last record that was kept
  uint64_t records = 0;
  uint64_t corrupt_records = 0;  // damaged stretches followed by an intact record
  uint64_t skipped_bytes = 0;    // bytes of those stretches
  uint64_t tail_bytes = 0;       // bytes after valid_end holding no intact record
  uint64_t zero_bytes = 0;       // or: bytes after valid_end that are all zero (tail_bytes 0)
};

// Scans `body` (the bytes of a segment after its header; body[0] is at file offset `base`)
// and calls `visit` for every intact record in order.
//
// A record is intact when its length fits and its checksum matches. After a damaged one the
// scan tries every later byte, from the one after the damaged record's start, for the next
// intact record (resync); it never jumps by the damaged record's length field, which may be
// the damaged field. Damage followed by no intact record is the tail: a torn write when this
// is the last segment. Checking a candidate takes bounded work however long a record it
// announces (its checksum comes from prefix checksums, see range_crc in scanner.cc), so the
// scan is O(body size) for any garbage and needs no budget after which intact records
// would be given up. A well-formed record inside the payload of a damaged record fools the
// resync: it is replayed.
//
// Zeros to the end of the body are the clean end of the data, not damage: segments may be
// written with zeros before use (options::preallocate), and no record is all zeros (its
// masked checksum never is), so nothing intact can start there. They are reported as
// zero_bytes and never resynced through byte by byte.
scan_result scan_records(std::span<const char> body, uint64_t base,
                         const std::function<void(const scanned_record&)>& visit);

}  // namespace sqsrelay::wal
