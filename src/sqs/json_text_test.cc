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

namespace sqsrelay::sqs {
namespace {

// Many escapes at random places in long strings (JSON bodies have quotes every few bytes):
// the fast path resumes after each one, and the result equals Boost.JSON's reading of it.
TEST(json_text, random_strings_round_trip) {
  uint64_t x = 12345;
  const auto next = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull; };
  for (int round = 0; round < 500; ++round) {
    std::string in(next() % 300, 'a');
    static constexpr char specials[] = "\"\\\n\t\x01\x1f/";
    for (char& c : in) {
      const uint64_t r = next() >> 33;
      c = r % 7 == 0 ? specials[(r >> 8) % 7] : static_cast<char>(' ' + (r >> 8) % 90);
    }
    std::string out = "prefix";
    append_json_string(out, in);
    ASSERT_EQ(out.substr(0, 6), "prefix");
    ASSERT_EQ(boost::json::parse(out.substr(6)).as_string(), in) << round;
  }
}

}  // namespace
}  // namespace sqsrelay::sqs
