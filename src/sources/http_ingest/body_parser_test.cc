#include "sources/http_ingest/body_parser.h"

#include <gtest/gtest.h>

#include "base/json_scan.h"

namespace sqsrelay::sources {
namespace {

std::vector<std::string> bodies(const parse_outcome& o) {
  std::vector<std::string> out;
  for (const auto& m : o.batch.messages()) out.emplace_back(m.body);
  return out;
}

parse_outcome parse(const route_options& r, std::string body,
                    std::string_view content_type = "application/json", size_t depth = 64) {
  body_parser p(depth);
  return p.parse(r, content_type, body);
}

TEST(BodyParser, ArrayElementsBecomeCompactMessagesInOrder) {
  auto o = parse({}, R"([ {"a": 1,  "b" : [1, 2]} , "x y", 3.50, true, null ])");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(o.elements, 5u);
  EXPECT_TRUE(o.errors.empty());
  EXPECT_EQ(bodies(o),
            (std::vector<std::string>{R"({"a":1,"b":[1,2]})", "x y", "3.50", "true", "null"}));
  EXPECT_EQ(o.batch.messages()[2].index, 2u);
}

TEST(BodyParser, WhitespaceInsideStringsIsKept) {
  auto o = parse({}, "[\n  {\"text\": \"two  spaces\\n and \\\"quotes\\\" ]\"}\n]");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"text":"two  spaces\n and \"quotes\" ]"})"}));
}

TEST(BodyParser, StringElementsAreTheirValueOrTheirJsonText) {
  route_options r;
  auto o = parse(r, R"(["caf\u00e9 \"q\"", "plain"])");
  EXPECT_EQ(bodies(o), (std::vector<std::string>{"café \"q\"", "plain"}));
  r.strings = string_elements::json;
  o = parse(r, R"(["caf\u00e9", "plain"])");
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"("caf\u00e9")", R"("plain")"}));
}

TEST(BodyParser, SingleValueIsOneMessage) {
  auto o = parse({}, "  {\"k\": \"v\"}  \n");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"k":"v"})"}));
  EXPECT_EQ(o.batch.messages()[0].index, 0u);
}

TEST(BodyParser, MessagesPerRequestAreBounded) {
  body_parser p(64, 3);
  std::string ok = "[1,2,3]", more = "[1,2,3,4]", lines = "1\n2\n\n3\n", more_lines = "1\n2\n3\n4\n";
  auto o = p.parse({}, "application/json", ok);
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(o.batch.messages().size(), 3u);
  o = p.parse({}, "application/json", more);
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "too_many_messages");
  EXPECT_EQ(o.detail, "the request has 4 messages; at most 3 per request (split it)");
  EXPECT_TRUE(o.batch.messages().empty());
  o = p.parse({}, "application/x-ndjson", lines);
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(o.batch.messages().size(), 3u);
  o = p.parse({}, "application/x-ndjson", more_lines);
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "too_many_messages");
  EXPECT_EQ(o.detail, "the request has more than 3 messages; at most 3 per request (split it)");
}

TEST(BodyParser, EmptyArrayIsZeroMessages) {
  auto o = parse({}, "[ ]");
  EXPECT_FALSE(o.request_error);
  EXPECT_EQ(o.elements, 0u);
  EXPECT_TRUE(o.batch.messages().empty());
}

TEST(BodyParser, NdjsonLinesByContentType) {
  for (auto ct : {"application/x-ndjson", "application/jsonlines; charset=utf-8"}) {
    auto o = parse({}, "{\"a\": 1}\r\n\n  [1, 2]\n\"s\"\n", ct);
    ASSERT_FALSE(o.request_error) << o.detail;
    EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", "[1,2]", "s"})) << ct;
  }
}

TEST(BodyParser, NdjsonDetectedByContentWithoutContentType) {
  auto o = parse({}, "{\"a\":1}\n{\"a\":2}\n", "");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", R"({"a":2})"}));
  o = parse({}, "[{\"a\":1},{\"a\":2}]\n", "text/plain");
  EXPECT_EQ(bodies(o).size(), 2u);
}

TEST(BodyParser, NdjsonBadLineIsAnElementErrorNamingTheLine) {
  auto o = parse({}, "{\"a\":1}\n{\"a\":\n{\"a\":3}\n", "application/x-ndjson");
  ASSERT_FALSE(o.request_error);
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", R"({"a":3})"}));
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0].index, 1u);
  EXPECT_EQ(o.errors[0].offset, 8u);
  EXPECT_EQ(o.errors[0].reason, "invalid_json");
  EXPECT_NE(o.errors[0].detail.find("line 2 (element 1, byte 8)"), std::string::npos)
      << o.errors[0].detail;
  ASSERT_EQ(o.batch.dead_letters().size(), 1u);
  EXPECT_EQ(o.batch.dead_letters()[0].raw, "{\"a\":");
}

TEST(BodyParser, RecordsFieldSelectsTheArrayOfAnObject) {
  route_options r;
  r.records_field = field_pointer("/result/messages");
  auto o = parse(r, R"({"result": {"count": 2, "messages": [ {"n": 1}, {"n": 2} ]}})");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"n":1})", R"({"n":2})"}));
  o = parse(r, R"({"result": {"messages": 5}})");
  EXPECT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "no_records_array");
  // A top-level array is still taken as the records.
  o = parse(r, R"([{"n": 1}])");
  EXPECT_EQ(bodies(o).size(), 1u);
}

TEST(BodyParser, FlespiMessagesWithDottedKeysGiveAttributesAndGroupIds) {
  route_options r;
  r.attributes = {{field_pointer("ident"), "ident", "String", true},
                  {field_pointer("position.speed"), "speed", "Number", false},
                  {field_pointer("/engine.ignition.status"), "ignition", "String", false}};
  r.group_id_field = field_pointer("ident");
  auto o = parse(r, R"([
    {"ident": "352093081452251", "timestamp": 1702366832.965264, "position.speed": 42,
     "engine.ignition.status": true},
    {"ident": "352093081452252", "timestamp": 1702366833.5, "position.speed": 3.25}
  ])");
  ASSERT_FALSE(o.request_error) << o.detail;
  ASSERT_EQ(o.batch.messages().size(), 2u);
  const auto& m0 = o.batch.messages()[0];
  EXPECT_EQ(m0.group_id, "352093081452251");
  ASSERT_EQ(m0.attributes.size(), 3u);
  EXPECT_EQ(m0.attributes[0].name, "ident");
  EXPECT_EQ(m0.attributes[0].data_type, "String");
  EXPECT_EQ(m0.attributes[0].value, "352093081452251");
  EXPECT_EQ(m0.attributes[1].value, "42");
  EXPECT_EQ(m0.attributes[1].data_type, "Number");
  EXPECT_EQ(m0.attributes[2].value, "true");
  const auto& m1 = o.batch.messages()[1];
  ASSERT_EQ(m1.attributes.size(), 2u);  // no ignition field: optional, skipped
  EXPECT_EQ(m1.attributes[1].value, "3.25");
  EXPECT_NE(m1.body.find("\"timestamp\":1702366833.5"), std::string_view::npos);
}

// Valid JSON numbers that the DOM cannot hold (past 64-bit integers, past double's range)
// are messages like any other, their text kept byte for byte.
TEST(BodyParser, NumbersOutsideInt64AndDoubleRangePassThrough) {
  const std::vector<std::string> wide = {"123456789012345678901234567890",
                                         "18446744073709551616", "-9223372036854775809", "1e400",
                                         "-1.5E+999"};
  for (const std::string& n : wide) {
    auto o = parse({}, "[" + n + "]");
    ASSERT_FALSE(o.request_error) << n << ": " << o.detail;
    EXPECT_EQ(bodies(o), (std::vector<std::string>{n}));
    o = parse({}, n);  // a single value
    ASSERT_FALSE(o.request_error) << n << ": " << o.detail;
    EXPECT_EQ(bodies(o), (std::vector<std::string>{n}));
    o = parse({}, "{\"a\": 1}\n{\"n\": " + n + ", \"s\": \"1e400\"}\n", "application/x-ndjson");
    ASSERT_TRUE(o.errors.empty()) << n << ": " << o.errors.front().detail;
    EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", R"({"n":)" + n + R"(,"s":"1e400"})"}));
  }
  // Neighbours keep their values, and attributes read wide numbers from the text.
  route_options r;
  r.attributes = {{field_pointer("big"), "big", "Number", false},
                  {field_pointer("small"), "small", "Number", false}};
  auto o = parse(r, R"([{"big": 123456789012345678901234567890, "small": 2.50}, [1e400, 7]])");
  ASSERT_FALSE(o.request_error) << o.detail;
  ASSERT_EQ(o.batch.messages().size(), 2u);
  const auto& m0 = o.batch.messages()[0];
  ASSERT_EQ(m0.attributes.size(), 2u);
  EXPECT_EQ(m0.attributes[0].value, "123456789012345678901234567890");
  EXPECT_EQ(m0.attributes[1].value, "2.5");
  EXPECT_EQ(bodies(o)[1], "[1e400,7]");
  // Numbers that are not JSON stay errors.
  for (const std::string bad : {"[01]", "[1.]", "[-]", "[1e]", "[99999999999999999999.]"}) {
    auto e = parse({}, bad);
    EXPECT_TRUE(e.request_error) << bad;
    EXPECT_EQ(e.reason, "invalid_json") << bad;
  }
}

TEST(JsonScan, WideNumbers) {
  EXPECT_TRUE(json_scan::is_wide_number("18446744073709551616"));
  EXPECT_FALSE(json_scan::is_wide_number("18446744073709551615"));
  EXPECT_FALSE(json_scan::is_wide_number("-9223372036854775808"));
  EXPECT_TRUE(json_scan::is_wide_number("-9223372036854775809"));
  EXPECT_TRUE(json_scan::is_wide_number("1e400"));
  EXPECT_FALSE(json_scan::is_wide_number("1e300"));
  EXPECT_FALSE(json_scan::is_wide_number("01e400"));
  std::string t = R"([1e400,"1e400",{"k":18446744073709551616}])";
  EXPECT_EQ(json_scan::mask_wide_numbers(t), 2u);
  EXPECT_EQ(t, R"([0    ,"1e400",{"k":0                   }])");
}

TEST(BodyParser, RequiredFieldMissingIsAnElementError) {
  route_options r;
  r.attributes = {{field_pointer("ident"), "ident", "String", true}};
  auto o = parse(r, R"([{"ident": "a"}, {"other": 1}, {"ident": null}])");
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[0].index, 1u);
  EXPECT_EQ(o.errors[0].reason, "missing_field");
  EXPECT_NE(o.errors[0].detail.find("required field '/ident' (attribute ident)"), std::string::npos)
      << o.errors[0].detail;
  EXPECT_EQ(o.errors[1].index, 2u);
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"ident":"a"})"}));
}

TEST(BodyParser, NumberAttributeMustBeANumber) {
  route_options r;
  r.attributes = {{field_pointer("v"), "v", "Number", false}};
  auto o = parse(r, R"([{"v": "12.5"}, {"v": "twelve"}])");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0].index, 1u);
  EXPECT_EQ(o.errors[0].reason, "invalid_attribute");
  EXPECT_EQ(o.batch.messages()[0].attributes[0].value, "12.5");
}

TEST(BodyParser, GroupIdMissingOrInvalid) {
  route_options r;
  r.group_id_field = field_pointer("g");
  auto o = parse(r, R"([{"g": "ok"}, {"x": 1}, {"g": "has space"}, {"g": 17}])");
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[0].reason, "missing_field");
  EXPECT_EQ(o.errors[1].reason, "invalid_id");
  EXPECT_NE(o.errors[1].detail.find("MessageGroupId"), std::string::npos);
  ASSERT_EQ(o.batch.messages().size(), 2u);
  EXPECT_EQ(o.batch.messages()[1].group_id, "17");
}

TEST(BodyParser, TooLargeCountsAttributes) {
  route_options r;
  r.max_message_bytes = 30;
  r.attributes = {{field_pointer("id"), "id", "String", false}};
  // {"id":"abcdefghij"} is 19 bytes; + "id" + "String" + "abcdefghij" = 37.
  auto o = parse(r, R"([{"id":"abc"}, {"id":"abcdefghij"}])");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0].index, 1u);
  EXPECT_EQ(o.errors[0].reason, "too_large");
  EXPECT_EQ(o.errors[0].offset, 15u);
  EXPECT_NE(o.errors[0].detail.find("element 1 at byte 15: message is 37 bytes with its "
                                    "attributes, over the limit of 30"),
            std::string::npos)
      << o.errors[0].detail;
}

TEST(BodyParser, CharactersSqsRefuses) {
  // A string element's value may hold code points SQS refuses.
  auto o = parse({}, R"(["ok", "bad\u0001x", "\uffff"])");
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[0].reason, "invalid_characters");
  EXPECT_NE(o.errors[0].detail.find("character U+0001 at byte 3"), std::string::npos)
      << o.errors[0].detail;
  EXPECT_NE(o.errors[1].detail.find("U+FFFF"), std::string::npos) << o.errors[1].detail;
  // As JSON text the escape is plain ASCII and fine.
  route_options r;
  r.strings = string_elements::json;
  o = parse(r, R"(["bad\u0001x"])");
  EXPECT_TRUE(o.errors.empty());
}

TEST(BodyParser, EmptyStringValueIsAnEmptyMessage) {
  auto o = parse({}, R"(["", "x"])");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0].reason, "empty_body");
}

TEST(BodyParser, SyntaxErrorNamesTheElementAndOffset) {
  auto o = parse({}, R"([{"a":1}, {"a":tru}, {"a":3}])");
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "invalid_json");
  EXPECT_EQ(o.offset, 10u);
  EXPECT_NE(o.detail.find("element 1 at byte 10"), std::string::npos) << o.detail;
}

TEST(BodyParser, MalformedArrayNamesTheByte) {
  auto o = parse({}, R"([1, 2 3])");
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "invalid_json");
  EXPECT_EQ(o.offset, 6u);
  EXPECT_NE(o.detail.find("malformed array at byte 6"), std::string::npos) << o.detail;
}

TEST(BodyParser, TooDeepNamesTheElement) {
  std::string deep = "[1, " + std::string(40, '[') + std::string(40, ']') + "]";
  auto o = parse({}, deep, "application/json", 16);
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "too_deep");
  EXPECT_EQ(o.offset, 4u);
  EXPECT_NE(o.detail.find("element 1 at byte 4: JSON nested deeper than 16 levels"),
            std::string::npos)
      << o.detail;
  // A depth bomb is refused without recursion trouble.
  std::string bomb(200000, '[');
  o = parse({}, bomb, "application/json", 16);
  EXPECT_TRUE(o.request_error);
}

TEST(BodyParser, DepthLimitCountsEveryLevelOfTheDocument) {
  auto nest = [](size_t levels, std::string_view inner) {
    return std::string(levels, '[') + std::string(inner) + std::string(levels, ']');
  };
  // The body's own array is level 1: elements may nest 15 more levels under a limit of 16.
  for (std::string_view inner : {"1", "[]", "\"s\"", "{}"}) {
    auto ok = parse({}, nest(16, inner), "application/json", 16);
    EXPECT_FALSE(ok.request_error) << inner << ": " << ok.detail;
  }
  for (std::string_view inner : {"1", "[1]"}) {
    auto deep = parse({}, nest(17, inner), "application/json", 16);
    ASSERT_TRUE(deep.request_error) << inner;
    EXPECT_EQ(deep.reason, "too_deep");
    EXPECT_NE(deep.detail.find("element 0 at byte 1"), std::string::npos) << deep.detail;
  }
  auto objects = parse({}, "[" + std::string(15 * 5, ' ') + "]", "application/json", 16);
  EXPECT_FALSE(objects.request_error);
  std::string obj = "[";
  for (int i = 0; i < 15; ++i) obj += R"({"a":)";
  obj += "1";
  for (int i = 0; i < 15; ++i) obj += "}";
  obj += "]";
  auto o = parse({}, obj, "application/json", 16);
  EXPECT_FALSE(o.request_error) << o.detail;
}

TEST(BodyParser, ALeadingByteOrderMarkIsIgnored) {
  auto o = parse({}, "\xEF\xBB\xBF[{\"a\":1}, 2]");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", "2"}));
  o = parse({}, "\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n", "application/x-ndjson");
  ASSERT_FALSE(o.request_error) << o.detail;
  EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", R"({"b":2})"}));
  o = parse({}, "\xEF\xBB\xBF[1, 2 3]");
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.offset, 9u) << "offsets count the mark: " << o.detail;
}

TEST(BodyParser, EmptyBody) {
  auto o = parse({}, "  \n");
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "empty_body");
}

TEST(BodyParser, InvalidUtf8IsRefused) {
  auto o = parse({}, "[\"a\xff\"]");
  ASSERT_TRUE(o.request_error);
  EXPECT_EQ(o.reason, "invalid_json");
}

TEST(BodyParser, DeadLettersKeepTheRawElement) {
  route_options r;
  r.max_message_bytes = 8;
  auto o = parse(r, R"([ "short", { "long" : "long enough to fail" } ])");
  ASSERT_EQ(o.batch.dead_letters().size(), 1u);
  const auto& d = o.batch.dead_letters()[0];
  EXPECT_EQ(d.index, 1u);
  EXPECT_EQ(d.reason, "too_large");
  EXPECT_EQ(d.raw, R"({ "long" : "long enough to fail" })");
  EXPECT_NE(d.detail.find("over the limit of 8"), std::string_view::npos);
  EXPECT_EQ(bodies(o), (std::vector<std::string>{"short"}));
}

TEST(BodyParser, BatchViewsSurviveAMove) {
  auto o = parse({}, R"([{"a":1},{"b":2}])");
  ingest_batch moved = std::move(o.batch);
  ASSERT_EQ(moved.messages().size(), 2u);
  EXPECT_EQ(moved.messages()[1].body, R"({"b":2})");
}

TEST(BodyParser, ParserIsReusableAcrossRequests) {
  body_parser p(64);
  for (int i = 0; i < 3; ++i) {
    std::string big = "[" + std::string(i * 1000, ' ') + "{\"i\":" + std::to_string(i) + "}]";
    auto o = p.parse({}, "application/json", big);
    ASSERT_EQ(o.batch.messages().size(), 1u);
    EXPECT_EQ(o.batch.messages()[0].body, "{\"i\":" + std::to_string(i) + "}");
  }
}

TEST(BodyParser, BodiesWithAndWithoutSparePaddingCapacity) {
  body_parser p(64);
  for (bool spare : {false, true}) {
    for (std::string body : {std::string(R"([{"a": 1}, [2]])"), std::string("{\"a\":1}\n[2]\n")}) {
      if (spare)
        body.reserve(body.size() + 128);
      else
        body.shrink_to_fit();
      std::string before = body;
      auto o = p.parse({}, body.front() == '[' ? "application/json" : "application/x-ndjson", body);
      ASSERT_FALSE(o.request_error) << o.detail;
      EXPECT_EQ(bodies(o), (std::vector<std::string>{R"({"a":1})", "[2]"})) << spare;
      EXPECT_EQ(body, before);
    }
  }
}

TEST(FieldPointer, KeysBecomePointers) {
  EXPECT_EQ(field_pointer("ident"), "/ident");
  EXPECT_EQ(field_pointer("position.speed"), "/position.speed");
  EXPECT_EQ(field_pointer("a/b~c"), "/a~1b~0c");
  EXPECT_EQ(field_pointer("/a/b"), "/a/b");
  EXPECT_EQ(field_pointer(""), "");
}

TEST(DetectFormat, ByContentType) {
  EXPECT_EQ(detect_format(body_format::auto_detect, "application/x-ndjson"), body_format::ndjson);
  EXPECT_EQ(detect_format(body_format::auto_detect, "Application/JSON; charset=utf-8"),
            body_format::json);
  EXPECT_EQ(detect_format(body_format::auto_detect, "application/vnd.api+json"), body_format::json);
  EXPECT_EQ(detect_format(body_format::auto_detect, "text/plain"), body_format::auto_detect);
  EXPECT_EQ(detect_format(body_format::ndjson, "application/json"), body_format::ndjson);
}

TEST(JsonScan, LocateAndSplit) {
  std::string_view doc = R"({"a": {"x": [1, {"y": "]"}]}, "b": 2})";
  EXPECT_EQ(json_scan::locate(doc, "/a/x/1/y"), "\"]\"");
  EXPECT_EQ(json_scan::locate(doc, "/b"), "2");
  EXPECT_EQ(json_scan::locate(doc, "/c"), "");
  EXPECT_EQ(json_scan::locate(doc, "/a/x/9"), "");
  std::vector<std::string_view> parts;
  const char* fail = nullptr;
  ASSERT_TRUE(json_scan::split_array(R"([ "a\"]", {"k":[1,2]} ,3 ])", parts, fail));
  EXPECT_EQ(parts, (std::vector<std::string_view>{R"("a\"]")", R"({"k":[1,2]})", "3"}));
  parts.clear();
  EXPECT_FALSE(json_scan::split_array(R"([ "unterminated )", parts, fail));
}

}  // namespace
}  // namespace sqsrelay::sources
