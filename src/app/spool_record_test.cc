// The spool record codec of `sqsrelay run`: round trips, and every truncation or extension of
// a valid record is refused rather than misread.
#include "app/spool_record.h"

#include <gtest/gtest.h>

namespace sqsrelay::app {
namespace {

spool_message_view sample() {
  spool_message_view m;
  m.flags = spool_flag_ack_delivered;
  m.endpoint = "aws";
  m.queue = "telemetry";
  m.body = R"({"ident":"dev-1","speed":42})";
  m.attributes = {{"device", "String", "dev-1", false},
                  {"raw", "Binary", std::string_view("\0\x01\xff", 3), true},
                  {"n", "Number.int", "42", false}};
  m.group_id = "g1";
  m.dedup_id = "";
  return m;
}

TEST(spool_record, round_trip) {
  std::string buf;
  encode_spool_record(buf, sample());
  auto m = decode_spool_record(buf);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->flags, spool_flag_ack_delivered);
  EXPECT_EQ(m->endpoint, "aws");
  EXPECT_EQ(m->queue, "telemetry");
  EXPECT_EQ(m->body, sample().body);
  ASSERT_EQ(m->attributes.size(), 3u);
  EXPECT_EQ(m->attributes[1].value, std::string_view("\0\x01\xff", 3));
  EXPECT_TRUE(m->attributes[1].binary);
  EXPECT_FALSE(m->attributes[2].binary);
  EXPECT_EQ(m->attributes[2].data_type, "Number.int");
  EXPECT_EQ(m->group_id, "g1");
  EXPECT_EQ(m->dedup_id, "");
}

TEST(spool_record, empty_fields_and_large_body) {
  spool_message_view v;
  std::string big(300000, 'b');
  v.body = big;
  std::string buf;
  encode_spool_record(buf, v);
  auto m = decode_spool_record(buf);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body.size(), big.size());
  EXPECT_TRUE(m->attributes.empty());
  EXPECT_EQ(m->flags, 0);
}

TEST(spool_record, truncated_or_extended_records_are_refused) {
  std::string buf;
  encode_spool_record(buf, sample());
  for (size_t n = 0; n < buf.size(); ++n)
    EXPECT_FALSE(decode_spool_record(std::string_view(buf).substr(0, n))) << "length " << n;
  EXPECT_FALSE(decode_spool_record(buf + "x"));
  std::string wrong_version = buf;
  wrong_version[0] = 2;
  EXPECT_FALSE(decode_spool_record(wrong_version));
}

TEST(spool_record, records_concatenate_independently) {
  std::string a, b;
  encode_spool_record(a, sample());
  spool_message_view other;
  other.queue = "q2";
  other.body = "x";
  size_t first = a.size();
  encode_spool_record(a, other);
  encode_spool_record(b, other);
  EXPECT_EQ(a.substr(first), b);
  auto m = decode_spool_record(std::string_view(a).substr(first));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->queue, "q2");
}

}  // namespace
}  // namespace sqsrelay::app
