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
