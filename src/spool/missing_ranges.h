// Finds seqs that a segment lost from the middle of the log should have held: a segment file
// deleted or truncated to nothing, which the wal cannot see as damage (to it a gap in segment
// numbers is just a segment it does not have). Pure, shared by the spool's recovery and
// `sqsrelay-spool verify`. Rules: docs/spool_format.md, "Missing segments".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sqsrelay::spool {

// One segment that recovery found with a valid (or damaged but kept) wal header.
struct segment_summary {
  uint32_t number = 0;
  uint64_t first_seq = 0;  // of its first intact group; 0 if it holds none
  uint64_t last_seq = 0;   // of its last intact group
  bool damaged = false;    // it holds quarantined damage (counted as corrupt, not missing)
};

// Seqs past the delivery position that no segment holds, where a segment is missing (a gap
// in the numbers) or holds nothing (no group, no damage) between the groups around them.
struct missing_range {
  uint32_t first_segment = 0;  // segments missing or empty; 0: unknown, below last_segment + 1
  uint32_t last_segment = 0;
  uint64_t first_seq = 0;  // seqs no segment holds: an upper bound of the records lost,
  uint64_t last_seq = 0;   // since appends that failed also leave seqs unused
  bool operator==(const missing_range&) const = default;
};

// `live` in number order. `position_known`: the position file was read; if not (missing or
// reset), segments deleted before the oldest live one may all have been delivered, so only
// gaps between live segments count.
std::vector<missing_range> find_missing_ranges(std::span<const segment_summary> live,
                                               uint64_t position, bool position_known);

// "wal-00000002.log missing or empty: seqs 501..1000 (500) not in the spool" and the like.
std::string describe(const missing_range& m);

}  // namespace sqsrelay::spool
