#include "spool/missing_ranges.h"

#include <gtest/gtest.h>

#include <vector>

namespace sqsrelay::spool {
namespace {

std::vector<missing_range> find(const std::vector<segment_summary>& live, uint64_t position,
                                bool known = true) {
  return find_missing_ranges(live, position, known);
}

TEST(missing_ranges, consecutive_segments_lose_nothing) {
  EXPECT_TRUE(find({{1, 1, 10}, {2, 11, 20}, {3, 21, 30}}, 0).empty());
}

TEST(missing_ranges, a_gap_in_the_numbers_loses_the_seqs_between_its_neighbours) {
  EXPECT_EQ(find({{1, 1, 10}, {3, 21, 30}, {4, 31, 40}}, 0),
            (std::vector<missing_range>{{2, 2, 11, 20}}));
  EXPECT_EQ(find({{1, 1, 10}, {4, 31, 40}}, 0), (std::vector<missing_range>{{2, 3, 11, 30}}));
}

TEST(missing_ranges, an_empty_segment_between_groups_loses_the_seqs_it_should_hold) {
  EXPECT_EQ(find({{1, 1, 10}, {2, 0, 0}, {3, 21, 30}}, 0),
            (std::vector<missing_range>{{2, 2, 11, 20}}));
}

TEST(missing_ranges, only_seqs_past_the_position_count) {
  EXPECT_EQ(find({{1, 1, 10}, {3, 21, 30}}, 15), (std::vector<missing_range>{{2, 2, 16, 20}}));
  EXPECT_TRUE(find({{1, 1, 10}, {3, 21, 30}}, 20).empty());
}

TEST(missing_ranges, seqs_skipped_without_a_hole_are_failed_appends) {
  EXPECT_TRUE(find({{1, 1, 10}, {2, 15, 20}}, 0).empty());
  // The newest segment, just made, holds nothing yet.
  EXPECT_TRUE(find({{1, 1, 10}, {2, 0, 0}}, 0).empty());
}

TEST(missing_ranges, a_damaged_segment_is_corrupt_not_missing) {
  EXPECT_TRUE(find({{1, 1, 10}, {2, 0, 0, true}, {3, 21, 30}}, 0).empty());
}

TEST(missing_ranges, below_the_oldest_segment_only_past_a_known_position) {
  // Delivered segments 1 and 2 were deleted: nothing missing.
  EXPECT_TRUE(find({{3, 21, 30}}, 20).empty());
  EXPECT_TRUE(find({{3, 21, 30}}, 25).empty());
  // Segment 2 was deleted before its seqs were delivered.
  EXPECT_EQ(find({{3, 21, 30}}, 10), (std::vector<missing_range>{{0, 2, 11, 20}}));
  // The position was lost: what was deleted may have been delivered.
  EXPECT_TRUE(find({{3, 21, 30}}, 0, false).empty());
  EXPECT_EQ(find({{3, 21, 30}, {5, 41, 50}}, 0, false),
            (std::vector<missing_range>{{4, 4, 31, 40}}));
  // Segment 1 may simply start after failed appends.
  EXPECT_TRUE(find({{1, 5, 30}}, 0).empty());
}

TEST(missing_ranges, description_names_the_segments_and_seqs) {
  EXPECT_EQ(describe({2, 2, 11, 20}),
            "wal-00000002.log missing or empty: seqs 11..20 (10) past the delivery position "
            "are in no segment");
  EXPECT_EQ(describe({0, 2, 11, 20}).substr(0, 34), "segment(s) before wal-00000003.log");
}

}  // namespace
}  // namespace sqsrelay::spool
