#include "sqs/json_text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sqsrelay::sqs {
namespace {

TEST(json_text, escapes_what_json_requires_and_round_trips) {
  std::string in = std::string("a\"b\\c\nd\re\tf\x01g\x1f", 15) + "h\xc3\xa9\xf0\x9f\x98\x80";
  std::string out;
  append_json_string(out, in);
  EXPECT_EQ(out.substr(0, 14), R"("a\"b\\c\nd\re)");
  auto v = boost::json::parse(out);
  EXPECT_EQ(v.as_string(), in);
}

TEST(json_text, member_is_key_colon_value) {
  std::string out;
  append_json_member(out, "Id", "x");
  EXPECT_EQ(out, R"("Id":"x")");
}

}  // namespace
}  // namespace sqsrelay::sqs

namespace sqsrelay::sqs {
namespace {

// The 16-byte fast path must hand over to the byte loop at any position.
TEST(json_text, long_strings_escape_at_every_position) {
  for (size_t pos = 0; pos < 40; ++pos) {
    for (char special : {'"', '\\', '\n', '\x01'}) {
      std::string in(40, 'x');
      in[pos] = special;
      std::string out;
      append_json_string(out, in);
      EXPECT_EQ(boost::json::parse(out).as_string(), in) << pos;
    }
  }
}

}  // namespace
}  // namespace sqsrelay::sqs
