#include "sqs/message.h"

#include <gtest/gtest.h>

namespace sqsrelay::sqs {
namespace {

TEST(message, valid_text_accepts_the_sqs_character_set) {
  EXPECT_TRUE(valid_message_text("plain ascii text, long enough for the fast path"));
  EXPECT_TRUE(valid_message_text("tab\tnewline\ncr\r"));
  EXPECT_TRUE(valid_message_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(valid_message_text("\xee\x80\x80"));                          // U+E000
}

TEST(message, valid_text_rejects_outside_characters_at_any_position) {
  for (size_t pos = 0; pos < 40; ++pos) {
    for (std::string bad : {std::string(1, '\0'), std::string("\x1f"), std::string("\xef\xbf\xbf"),
                            std::string("\xed\xa0\x80"), std::string("\xc0\xaf"),
                            std::string("\xff")}) {
      std::string s(40, 'a');
      s.replace(pos, 1, bad);
      EXPECT_FALSE(valid_message_text(s)) << pos;
    }
  }
}

TEST(message, prefix_filters_select_names_by_prefix) {
  std::vector<std::string_view> f = {"Hel.*"};
  EXPECT_TRUE(attribute_name_selected("Hello", f));
  EXPECT_TRUE(attribute_name_selected("Help.Me", f));
  EXPECT_FALSE(attribute_name_selected("General", f));
  std::vector<std::string_view> all = {"All"};
  EXPECT_TRUE(attribute_name_selected("x", all));
  std::vector<std::string_view> star = {"*"};  // AWS answers every attribute for "*" too
  EXPECT_TRUE(attribute_name_selected("x", star));
  std::vector<std::string_view> other = {"y"};
  EXPECT_FALSE(attribute_name_selected("x", other));
}

TEST(message, utf8_prefix_never_cuts_a_character) {
  EXPECT_EQ(utf8_prefix("abc", 10), "abc");
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("a\xc3\xa9" "b", 2), "a");  // é is two bytes
  EXPECT_EQ(utf8_prefix("a\xc3\xa9" "b", 3), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix("\xf0\x9f\x98\x80x", 3), "");  // a four-byte emoji
}

TEST(message, attribute_names_take_letters_and_digits_of_any_script) {
  for (std::string_view name : {"attr.1\xc3\xb8\xc3\x9f\xc3\xa4", "\xe4\xb8\xad\xe6\x96\x87", "a-b_c.d"}) {
    std::vector<attribute_view> a = {{name, "String", "v", false}};
    EXPECT_FALSE(validate_attributes(a)) << name;
  }
  // A section sign, a superscript two, an emoji, a line separator, broken UTF-8.
  for (std::string_view name : {"a\xc2\xa7", "a\xc2\xb2", "a\xf0\x9f\x98\x80", "a\xe2\x80\xa8",
                                "a\xc3", "a!b"}) {
    std::vector<attribute_view> a = {{name, "String", "v", false}};
    EXPECT_TRUE(validate_attributes(a)) << name;
  }
}

TEST(message, attribute_validation_follows_sqs_rules) {
  std::vector<attribute_view> ok = {{"n", "Number.float", "1.5e10", false},
                                    {"b", "Binary", "\x01", true}};
  EXPECT_FALSE(validate_attributes(ok));
  std::vector<attribute_view> aws = {{"AWS.x", "String", "v", false}};
  EXPECT_TRUE(validate_attributes(aws));
  std::vector<attribute_view> type = {{"a", "Str", "v", false}};
  EXPECT_TRUE(validate_attributes(type));
  std::vector<attribute_view> num = {{"a", "Number", "12abc", false}};
  EXPECT_TRUE(validate_attributes(num));
  std::vector<attribute_view> empty = {{"a", "String", "", false}};
  auto e = validate_attributes(empty);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "Message (user) attribute 'a' must contain a non-empty value of type 'String'.");
  std::vector<attribute_view> many(11, attribute_view{"a", "String", "v", false});
  EXPECT_TRUE(validate_attributes(many));
}

}  // namespace
}  // namespace sqsrelay::sqs
