#include "pipeline/message_reader.h"

#include <gtest/gtest.h>

namespace sqsrelay::pipeline {
namespace {

struct collected {
  std::vector<outbound_message> messages;
  std::vector<input_error> errors;
  std::vector<std::string> error_raw;
  std::vector<uint64_t> lines;
};

// Feeds `input` in pieces of `step` bytes (1 = byte by byte: every state crosses a boundary).
collected read_all(std::string_view input, reader_options o, size_t step,
                   input_format* detected = nullptr) {
  collected c;
  message_reader r(
      std::move(o),
      [&](outbound_message&& m, uint64_t, uint64_t line) {
        c.messages.push_back(std::move(m));
        c.lines.push_back(line);
      },
      [&](const input_error& e) {
        c.errors.push_back(e);
        c.error_raw.emplace_back(e.raw.substr(0, 200));
      });
  for (size_t i = 0; i < input.size(); i += step) r.feed(input.substr(i, step));
  r.finish();
  if (detected) *detected = r.format();
  return c;
}

std::vector<std::string> bodies(const collected& c) {
  std::vector<std::string> out;
  for (const auto& m : c.messages) out.push_back(m.body);
  return out;
}

TEST(MessageReader, PlainLinesWithCrLfBlankLinesAndNoFinalNewline) {
  for (size_t step : {1, 3, 1000}) {
    input_format f;
    auto c = read_all("alpha\r\n\nbeta gamma\n  \n\t \r\n  indented \nlast", {}, step, &f);
    EXPECT_EQ(f, input_format::lines);
    // Whitespace-only lines are blank and skipped; other lines keep their spaces.
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"alpha", "beta gamma", "  indented ", "last"}));
    EXPECT_EQ(c.lines, (std::vector<uint64_t>{1, 3, 6, 7}));
    EXPECT_TRUE(c.errors.empty());
  }
}

TEST(MessageReader, ALeadingUtf8ByteOrderMarkIsDroppedBeforeFormatDetection) {
  for (size_t step : {1, 2, 4096}) {
    input_format f;
    auto c = read_all("\xEF\xBB\xBF{\"a\": 1}\n{bad\n", {}, step, &f);
    EXPECT_EQ(f, input_format::ndjson);
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"{\"a\":1}"}));
    ASSERT_EQ(c.errors.size(), 1u);
    EXPECT_EQ(c.errors[0].offset, 12u);  // offsets count the mark's 3 bytes
    c = read_all("\xEF\xBB\xBFplain\n\xEF\xBB\xBFsecond", {}, step, &f);
    EXPECT_EQ(f, input_format::lines);
    // Only the mark at the start of the input is an encoding signature.
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"plain", "\xEF\xBB\xBFsecond"}));
    c = read_all("\xEF\xBB", {}, step, &f);  // a prefix of the mark at EOF is data
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"\xEF\xBB"}));
  }
}

TEST(MessageReader, NdjsonBodiesAreCompactAndBadLinesAreReportedWithTheirPlace) {
  std::string in = "{\"a\": 1, \"s\": \"x y\"}\n\n{\"broken\": \n{ \"b\" : [1, 2] }\n";
  for (size_t step : {1, 7, 4096}) {
    input_format f;
    auto c = read_all(in, {}, step, &f);
    EXPECT_EQ(f, input_format::ndjson);
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"{\"a\":1,\"s\":\"x y\"}", "{\"b\":[1,2]}"}));
    ASSERT_EQ(c.errors.size(), 1u);
    EXPECT_EQ(c.errors[0].line, 3u);
    EXPECT_EQ(c.errors[0].offset, 22u);
    EXPECT_EQ(c.errors[0].record, 2u);
    EXPECT_NE(c.errors[0].what.find("invalid JSON"), std::string::npos);
    EXPECT_EQ(c.error_raw[0], "{\"broken\": ");
  }
}

TEST(MessageReader, NumbersWiderThan64BitsAreValidJsonAndKeptAsSent) {
  std::string in =
      "{\"n\": 12345678901234567890123, \"s\": \"9\"}\n[1, 1e400]\n{\"big\": -1e-400}\n";
  auto c = read_all(in, {}, 4096);
  EXPECT_TRUE(c.errors.empty()) << (c.errors.empty() ? "" : c.errors[0].what);
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"{\"n\":12345678901234567890123,\"s\":\"9\"}",
                                                 "[1,1e400]", "{\"big\":-1e-400}"}));
  // Attributes from such a record: strings still work; a number could be the mask, so no.
  reader_options o;
  std::string error;
  auto s = parse_attribute_field("s=String:$.s", error);
  ASSERT_TRUE(s) << error;
  o.attributes.push_back(*s);
  c = read_all("{\"n\": 12345678901234567890123, \"s\": \"9\"}\n", o, 4096);
  ASSERT_EQ(c.messages.size(), 1u);
  ASSERT_EQ(c.messages[0].attributes.size(), 1u);
  EXPECT_EQ(c.messages[0].attributes[0].value, "9");
  auto n = parse_attribute_field("n=$.n", error);
  ASSERT_TRUE(n) << error;
  o.attributes = {*n};
  c = read_all("{\"n\": 12345678901234567890123}\n", o, 4096);
  EXPECT_TRUE(c.messages.empty());
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].what.find("wider than 64 bits"), std::string::npos) << c.errors[0].what;
}

TEST(MessageReader, JsonArrayStreamsElementsAcrossChunkBoundaries) {
  std::string in =
      "  [ {\"id\": 1, \"t\": \"a,b]}\"}, \n [1, [2]], \"str\\\"ing\", 42,\n{\"n\":{\"m\":[]}} ]\n";
  for (size_t step : {1, 2, 5, 4096}) {
    input_format f;
    auto c = read_all(in, {}, step, &f);
    EXPECT_EQ(f, input_format::json_array);
    EXPECT_EQ(bodies(c), (std::vector<std::string>{"{\"id\":1,\"t\":\"a,b]}\"}", "[1,[2]]",
                                                   "\"str\\\"ing\"", "42",
                                                   "{\"n\":{\"m\":[]}}"}))
        << step;
    EXPECT_TRUE(c.errors.empty());
  }
}

TEST(MessageReader, JsonArrayErrors) {
  auto c = read_all("[{\"a\":1}, {\"b\": }, 3", {}, 4);
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"{\"a\":1}"}));  // "3" never ended
  ASSERT_EQ(c.errors.size(), 2u);
  EXPECT_NE(c.errors[0].what.find("invalid JSON"), std::string::npos);
  EXPECT_NE(c.errors[1].what.find("not terminated"), std::string::npos);
  reader_options o;
  o.format = input_format::json_array;
  c = read_all("{\"a\":1}", o, 100);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].what.find("expected '['"), std::string::npos);
}

TEST(MessageReader, OverlongRecordsAreSkippedWithoutBufferingThem) {
  reader_options o;
  o.max_record_bytes = 16;
  std::string in = "short\n" + std::string(100, 'x') + "\nafter\n";
  auto c = read_all(in, o, 8);
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"short", "after"}));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].line, 2u);
  o.format = input_format::json_array;
  c = read_all("[1, \"" + std::string(100, 'y') + "\", 2]", o, 8);
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(c.errors.size(), 1u);
}

TEST(MessageReader, AttributesGroupAndDedupIdsFromFields) {
  std::string err;
  reader_options o;
  o.attributes.push_back(*parse_attribute_field("type=String:$.type", err));
  o.attributes.push_back(*parse_attribute_field("n=$.meta.count", err));
  o.attributes.push_back(*parse_attribute_field("tags=$.tags", err));
  o.attributes.push_back(*parse_attribute_field("raw=Binary:/blob", err));
  o.attributes.push_back(*parse_attribute_field("price=Number.float:$.items[1].p", err));
  o.group_pointer = *json_path_to_pointer("$.tenant");
  o.dedup_pointer = *json_path_to_pointer("$.id");
  std::string in =
      "{\"type\":\"order\",\"meta\":{\"count\":3},\"tags\":[\"a\"],\"blob\":\"AAH/\","
      "\"items\":[{},{\"p\":2.5}],\"tenant\":\"t1\",\"id\":77}\n"
      "{\"other\":true}\n"
      "{\"blob\":\"!!notbase64\"}\n";
  auto c = read_all(in, o, 9);
  ASSERT_EQ(c.messages.size(), 2u);
  const auto& m = c.messages[0];
  ASSERT_EQ(m.attributes.size(), 5u);
  EXPECT_EQ(m.attributes[0].data_type, "String");
  EXPECT_EQ(m.attributes[0].value, "order");
  EXPECT_EQ(m.attributes[1].data_type, "Number");
  EXPECT_EQ(m.attributes[1].value, "3");
  EXPECT_EQ(m.attributes[2].data_type, "String");
  EXPECT_EQ(m.attributes[2].value, "[\"a\"]");
  EXPECT_EQ(m.attributes[3].value, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(m.attributes[4].data_type, "Number.float");
  EXPECT_EQ(m.attributes[4].value, "2.5");
  EXPECT_EQ(m.group_id, "t1");
  EXPECT_EQ(m.dedup_id, "77");
  EXPECT_TRUE(c.messages[1].attributes.empty());  // absent fields: no attribute
  EXPECT_TRUE(c.messages[1].group_id.empty());
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].what.find("base64"), std::string::npos);
}

TEST(MessageReader, PathsAndSpecs) {
  EXPECT_EQ(*json_path_to_pointer("$.a.b[0]"), "/a/b/0");
  EXPECT_EQ(*json_path_to_pointer(".a"), "/a");
  EXPECT_EQ(*json_path_to_pointer("a.b"), "/a/b");
  EXPECT_EQ(*json_path_to_pointer("$['x/y']"), "/x~1y");
  EXPECT_EQ(*json_path_to_pointer("/raw/0"), "/raw/0");
  EXPECT_FALSE(json_path_to_pointer("$.a..b"));
  EXPECT_FALSE(json_path_to_pointer("$.a[x]"));
  std::string err;
  EXPECT_FALSE(parse_attribute_field("novalue", err));
  EXPECT_NE(err.find("NAME=[TYPE:]PATH"), std::string::npos);
  auto f = parse_attribute_field("Stringy=$.s", err);  // a name that starts like a type
  ASSERT_TRUE(f);
  EXPECT_EQ(f->name, "Stringy");
  EXPECT_TRUE(f->data_type.empty());
  f = parse_attribute_field("n=Number.int:$.n", err);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data_type, "Number.int");
  EXPECT_EQ(f->pointer, "/n");
  for (const char* bad : {"a=string:$.x", "a=Strings:$.x", "a=Number.:$.x", "a=Int:x"}) {
    err.clear();
    EXPECT_FALSE(parse_attribute_field(bad, err)) << bad;
    EXPECT_NE(err.find("unknown attribute type"), std::string::npos) << bad << ": " << err;
  }
}

}  // namespace
}  // namespace sqsrelay::pipeline
