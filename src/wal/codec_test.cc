#include "wal/codec.h"

#include <gtest/gtest.h>

#include "base/hash.h"

namespace sqsrelay::wal {
namespace {

TEST(codec, segment_header_round_trips) {
  segment_header h = encode_segment_header(7);
  EXPECT_EQ(std::string_view(h.data(), 8), "SQRLWAL1");
  EXPECT_EQ(check_segment_header(h, 7), header_check::ok);
  EXPECT_EQ(check_segment_header(h, 8), header_check::foreign);  // renamed file
}

TEST(codec, segment_header_rejects_damage_and_knows_newer_versions) {
  segment_header h = encode_segment_header(3);
  h[0] = 'X';
  EXPECT_EQ(check_segment_header(h, 3), header_check::damaged);
  h = encode_segment_header(3);
  h[13] ^= 1;  // segment number without fixing the checksum
  EXPECT_EQ(check_segment_header(h, 3), header_check::damaged);
  h = encode_segment_header(3);
  put_u32(h.data() + 8, format_version + 1);
  put_u32(h.data() + 16, mask_crc(crc32c(h.data(), 16)));
  EXPECT_EQ(check_segment_header(h, 3), header_check::newer_version);
}

TEST(codec, torn_header_is_a_prefix_of_the_expected_one) {
  segment_header h = encode_segment_header(5);
  EXPECT_TRUE(is_torn_segment_header({h.data(), 0}, 5));
  EXPECT_TRUE(is_torn_segment_header({h.data(), 11}, 5));
  EXPECT_TRUE(is_torn_segment_header({h.data(), 11}, 6));  // number not reached yet
  EXPECT_FALSE(is_torn_segment_header({h.data(), 13}, 6));
  EXPECT_FALSE(is_torn_segment_header({h.data(), h.size()}, 5));  // complete, not torn
}

TEST(codec, sealed_record_carries_length_and_masked_crc_of_type_and_payload) {
  std::string rec(record_header_size, '\0');
  rec += "hello";
  rec[record_type_offset] = 42;
  seal_record(rec);
  EXPECT_EQ(get_u32(rec.data() + 4), 5u);
  const uint32_t crc = crc32c(rec.data() + record_type_offset, 6);
  EXPECT_EQ(unmask_crc(get_u32(rec.data())), crc);
  EXPECT_NE(get_u32(rec.data()), crc);  // stored masked
}

TEST(codec, little_endian_integers) {
  char b[4];
  put_u32(b, 0x01020304);
  EXPECT_EQ(b[0], 4);
  EXPECT_EQ(b[3], 1);
  EXPECT_EQ(get_u32(b), 0x01020304u);
}

TEST(codec, segment_file_names_parse_only_in_canonical_form) {
  EXPECT_EQ(segment_file_name(12), "wal-00000012.log");
  EXPECT_EQ(parse_segment_file_name("wal-00000012.log"), 12u);
  EXPECT_EQ(parse_segment_file_name("wal-4294967295.log"), UINT32_MAX);
  EXPECT_EQ(parse_segment_file_name("wal-4294967296.log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("wal-000000012.log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("wal-0000001.log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("wal-0000001a.log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("wal-00000012.log.tmp"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("LOCK"), std::nullopt);
}

TEST(codec, crc32c_shift_gives_the_crc_of_any_suffix_from_two_prefix_crcs) {
  std::string data(70000, '\0');
  uint64_t x = 1;
  for (char& c : data) c = static_cast<char>((x = x * 6364136223846793005ull + 1) >> 56);
  const uint32_t all = crc32c(data.data(), data.size());
  for (size_t split : {0, 1, 9, 255, 256, 4096, 65535, 69999, 70000}) {
    const size_t rest = data.size() - split;
    EXPECT_EQ(all ^ crc32c_shift(rest)(crc32c(data.data(), split)),
              crc32c(data.data() + split, rest))
        << split;
  }
  EXPECT_EQ(crc32c("123456789", 9) ^ crc32c_shift(5)(crc32c("1234", 4)), crc32c("56789", 5));
  // Shifting by a+b bytes is shifting by a, then by b (lengths past 32 bits included).
  const uint32_t c = 0x12345678;
  const uint64_t big = (uint64_t{1} << 40) + 12345;
  EXPECT_EQ(crc32c_shift(big + 77)(c), crc32c_shift(77)(crc32c_shift(big)(c)));
  EXPECT_EQ(crc32c_shift(0)(c), c);
}

}  // namespace
}  // namespace sqsrelay::wal
