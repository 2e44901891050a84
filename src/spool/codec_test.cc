#include "spool/codec.h"

#include <gtest/gtest.h>

#include <string>

#include "wal/codec.h"

namespace sqsrelay::spool {
namespace {

std::string group_of(uint64_t first_seq, const std::vector<std::string>& records) {
  std::string g(group_header_size, '\0');
  encode_group_header(g.data(), first_seq, static_cast<uint32_t>(records.size()));
  for (const std::string& r : records) {
    char len[4];
    wal::put_u32(len, static_cast<uint32_t>(r.size()));
    g.append(len, 4);
    g += r;
  }
  return g;
}

TEST(spool_codec, group_round_trips) {
  const std::string g = group_of(41, {"a", "", "hello"});
  auto v = parse_group(g);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->first_seq, 41u);
  EXPECT_EQ(v->count, 3u);
  EXPECT_EQ(v->last_seq(), 43u);
  EXPECT_EQ(v->records.size(), g.size() - group_header_size);
}

TEST(spool_codec, malformed_groups_are_rejected) {
  const std::string g = group_of(1, {"abc", "de"});
  EXPECT_FALSE(parse_group(std::string_view(g).substr(0, 11)));            // short header
  EXPECT_FALSE(parse_group(std::string_view(g).substr(0, g.size() - 1)));  // cut record
  EXPECT_FALSE(parse_group(g + "x"));                                      // trailing byte
  EXPECT_FALSE(parse_group(group_of(0, {"a"})));                           // seq 0
  EXPECT_FALSE(parse_group(group_of(5, {})));                              // no records
  EXPECT_FALSE(parse_group(group_of(UINT64_MAX, {"a", "b"})));             // seq overflow
  std::string huge = g;
  wal::put_u32(huge.data() + group_header_size, 0xffffffffu);  // length past the end
  EXPECT_FALSE(parse_group(huge));
}

TEST(spool_codec, position_slot_round_trips_and_detects_damage) {
  const position_slot s = encode_position_slot({7, 123456789012345});
  auto v = decode_position_slot(s);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->generation, 7u);
  EXPECT_EQ(v->position, 123456789012345u);
  for (size_t i = 0; i < s.size(); ++i) {
    position_slot bad = s;
    bad[i] ^= 0x10;
    EXPECT_FALSE(decode_position_slot(bad)) << "byte " << i;
  }
  EXPECT_FALSE(decode_position_slot(std::span<const char>(s).first(31)));
}

TEST(spool_codec, quarantine_entry_round_trips) {
  const std::string bytes = "damaged";
  const auto h = encode_quarantine_entry(3, 4096, 100, bytes);
  std::string entry(h.begin(), h.end());
  entry += bytes;
  size_t size = 0;
  const std::string followed = entry + "next";
  auto e = decode_quarantine_entry(followed, &size);
  ASSERT_TRUE(e);
  EXPECT_EQ(size, entry.size());
  EXPECT_EQ(e->segment, 3u);
  EXPECT_EQ(e->offset, 4096u);
  EXPECT_EQ(e->damaged_length, 100u);
  EXPECT_EQ(std::string(e->copied.begin(), e->copied.end()), bytes);
  EXPECT_FALSE(decode_quarantine_entry(std::string_view(entry).substr(0, entry.size() - 1), &size));
  entry.back() ^= 1;
  EXPECT_FALSE(decode_quarantine_entry(entry, &size));
}

}  // namespace
}  // namespace sqsrelay::spool
