#include "pipeline/message.h"

#include <gtest/gtest.h>

namespace sqsrelay::pipeline {
namespace {

TEST(MessageSize, CountsBodyAndEveryAttributePartInBytes) {
  outbound_message m;
  m.body = "h\xC3\xA9llo";  // "héllo": 6 UTF-8 bytes
  m.attributes.push_back({"type", "String", "order"});
  m.attributes.push_back({"n", "Number.int", "42"});
  m.attributes.push_back({"raw", "Binary", std::string("\x00\x01\x02", 3)});
  EXPECT_EQ(message_size(m), 6u + (4 + 6 + 5) + (1 + 10 + 2) + (3 + 6 + 3));
}

TEST(CheckMessage, AcceptsExactlyTheLimitAndRejectsOneByteMore) {
  outbound_message m;
  m.body = std::string(1000, 'a');
  m.attributes.push_back({"k", "String", std::string(17, 'v')});  // 1 + 6 + 17 = 24
  EXPECT_FALSE(check_message(m, 1024).has_value());
  m.body.push_back('a');
  auto r = check_message(m, 1024);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, reject_reason::oversize);
  EXPECT_EQ(r->code, "MessageTooLong");
}

TEST(CheckMessage, RejectsCharactersOutsideTheSqsSet) {
  outbound_message m;
  m.body = std::string("ok\x01", 3);  // U+0001 is not allowed
  auto r = check_message(m, 1 << 20);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, reject_reason::invalid_characters);
  m.body = "\xff\xfe";  // not UTF-8
  ASSERT_TRUE(check_message(m, 1 << 20).has_value());
  m.body = "tab\tnewline\n\xF0\x9F\x98\x80";  // allowed, incl. a 4-byte code point
  EXPECT_FALSE(check_message(m, 1 << 20).has_value());
}

TEST(CheckMessage, RejectsEmptyBodyAndBadAttributes) {
  outbound_message m;
  EXPECT_EQ(check_message(m, 1024)->reason, reject_reason::empty_body);
  m.body = "x";
  m.attributes.push_back({"AWS.reserved", "String", "v"});
  EXPECT_EQ(check_message(m, 1024)->reason, reject_reason::invalid_attributes);
  m.attributes = {{"n", "Number", "not-a-number"}};
  EXPECT_EQ(check_message(m, 1024)->reason, reject_reason::invalid_attributes);
  m.attributes = {{"s", "Strin", "v"}};
  EXPECT_EQ(check_message(m, 1024)->reason, reject_reason::invalid_attributes);
  m.attributes.clear();
  for (int i = 0; i < 11; ++i) m.attributes.push_back({"a" + std::to_string(i), "String", "v"});
  EXPECT_EQ(check_message(m, 1024)->reason, reject_reason::invalid_attributes);
  m.attributes.resize(10);
  EXPECT_FALSE(check_message(m, 1024).has_value());
}

}  // namespace
}  // namespace sqsrelay::pipeline
