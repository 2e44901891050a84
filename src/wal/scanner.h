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
};

// Scans `body` (the bytes of a segment after its header; body[0] is at file offset `base`)
// and calls `visit` for every intact record in order.
//
// A record is intact when its length fits and its checksum matches. After a damaged one the
// scan first tries the position its length field points to, then every later byte, for
// the next intact record (resync). Damage followed by no intact record is the tail: a torn
// write when this is the last segment. Checksumming is capped at ~32 passes over the body,
// so garbage cannot make recovery slow; past that budget the rest counts as tail. A resync
// can be fooled by a payload that itself contains a well-formed record; the skip along the
// damaged record's own length is tried first to make that unlikely.
scan_result scan_records(std::span<const char> body, uint64_t base,
                         const std::function<void(const scanned_record&)>& visit);

}  // namespace sqsrelay::wal
