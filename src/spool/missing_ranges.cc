#include "spool/missing_ranges.h"

#include <algorithm>
#include <optional>

#include "wal/codec.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {

// Walks the segments keeping the last seq accounted for (delivered or held by a group). A
// hole, i.e. a number skipped or a segment holding nothing, followed by a group that starts
// past the next seq expected, is a missing range. Seqs skipped without a hole are appends
// that failed (the wal reuses the number of a segment it failed to create): not reported.
std::vector<missing_range> find_missing_ranges(std::span<const segment_summary> live,
                                               uint64_t position, bool position_known) {
  std::vector<missing_range> out;
  uint64_t seen = position;
  uint32_t previous = 0;         // the previous live segment, 0 before the first
  std::optional<uint32_t> hole;  // first segment of a hole since the last group
  for (const segment_summary& s : live) {
    // The wal deletes the oldest segments once they are delivered, so a hole below the
    // oldest live one (number 0: where it starts is unknown) only counts past a known
    // position.
    if (previous == 0 && s.number > wal::first_segment && position_known) hole = 0;
    if (previous != 0 && s.number > previous + 1 && !hole) hole = previous + 1;
    previous = s.number;
    if (s.first_seq == 0) {
      if (!s.damaged && !hole) hole = s.number;
      continue;
    }
    if (hole && s.first_seq > seen + 1) {
      out.push_back({*hole, s.number - 1, seen + 1, s.first_seq - 1});
    }
    hole.reset();
    seen = std::max(seen, s.last_seq);
  }
  return out;
}

namespace {

std::string segment_name(uint32_t n) { return wal::segment_file_name(n); }

}  // namespace

std::string describe(const missing_range& m) {
  std::string where;
  if (m.first_segment == 0) {
    where = "segment(s) before " + segment_name(m.last_segment + 1);
  } else if (m.first_segment == m.last_segment) {
    where = segment_name(m.first_segment);
  } else {
    where = segment_name(m.first_segment) + ".." + segment_name(m.last_segment);
  }
  return where + " missing or empty: seqs " + std::to_string(m.first_seq) + ".." +
         std::to_string(m.last_seq) + " (" + std::to_string(m.last_seq - m.first_seq + 1) +
         ") past the delivery position are in no segment";
}

}  // namespace sqsrelay::spool
