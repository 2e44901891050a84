#include "pipeline/dead_letter.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/hash.h"

namespace sqsrelay::pipeline {
namespace {

namespace json = boost::json;

json::object parse_line(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  return json::parse(line).as_object();
}

TEST(DeadLetterLine, HasQueueReasonCodeBodyAndSendMessageShapedAttributes) {
  outbound_message m;
  m.body = "{\"id\":7,\"note\":\"caf\xC3\xA9\"}";
  m.attributes.push_back({"type", "String", "order"});
  m.attributes.push_back({"raw", "Binary", std::string("\x00\xff", 2)});
  m.group_id = "g1";
  rejection why{reject_reason::sender_fault, "InvalidParameterValue", "bad \"thing\""};
  std::string out;
  manual_clock clk(std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123)));
  append_dead_letter_line(out, {"orders", &m, &why, 3}, clk.wall());
  auto o = parse_line(out);
  EXPECT_EQ(o.at("time").as_string(), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(o.at("queue").as_string(), "orders");
  EXPECT_EQ(o.at("reason").as_string(), "sender_fault");
  EXPECT_EQ(o.at("code").as_string(), "InvalidParameterValue");
  EXPECT_EQ(o.at("detail").as_string(), "bad \"thing\"");
  EXPECT_EQ(o.at("attempts").as_int64(), 3);
  EXPECT_EQ(o.at("body").as_string(), m.body);
  EXPECT_EQ(o.at("group_id").as_string(), "g1");
  EXPECT_FALSE(o.contains("dedup_id"));
  auto& attrs = o.at("attributes").as_object();
  EXPECT_EQ(attrs.at("type").at("DataType").as_string(), "String");
  EXPECT_EQ(attrs.at("type").at("StringValue").as_string(), "order");
  EXPECT_EQ(attrs.at("raw").at("BinaryValue").as_string(), base64_encode(std::string("\x00\xff", 2)));
}

TEST(DeadLetterLine, BodyThatIsNotUtf8IsKeptAsBase64) {
  outbound_message m;
  m.body = std::string("\xff\xfe\x00x", 4);
  rejection why{reject_reason::invalid_characters, "InvalidMessageContents", "x"};
  std::string out;
  append_dead_letter_line(out, {"q", &m, &why, 0}, std::chrono::system_clock::now());
  auto o = parse_line(out);
  EXPECT_FALSE(o.contains("body"));
  std::string decoded;
  ASSERT_TRUE(base64_decode(o.at("body_base64").as_string(), decoded));
  EXPECT_EQ(decoded, m.body);
}

TEST(DeadLetterFile, AppendsLinesAndReportsAfterTheyAreWritten) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sqsrelay-dl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "dead.ndjson").string();
  std::filesystem::remove(path);
  {
    auto f = ndjson_dead_letter_file::open(path);
    ASSERT_TRUE(f) << f.error().message();
    outbound_message a, b;
    a.body = "first";
    b.body = "second";
    rejection why{reject_reason::oversize, "MessageTooLong", "too big"};
    std::promise<error_code> p1, p2;
    (*f)->write({{"q", &a, &why, 0}}, [&](error_code ec) { p1.set_value(ec); });
    (*f)->write({{"q", &b, &why, 0}}, [&](error_code ec) { p2.set_value(ec); });
    EXPECT_FALSE(p1.get_future().get());
    EXPECT_FALSE(p2.get_future().get());
    // Written before the callbacks ran: readable now, without closing the file.
    std::ifstream in(path);
    std::string l1, l2, l3;
    ASSERT_TRUE(std::getline(in, l1));
    ASSERT_TRUE(std::getline(in, l2));
    EXPECT_FALSE(std::getline(in, l3));
    EXPECT_EQ(json::parse(l1).at("body").as_string(), "first");
    EXPECT_EQ(json::parse(l2).at("body").as_string(), "second");
  }
  EXPECT_FALSE(ndjson_dead_letter_file::open((dir / "no/such/dir/x").string()));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sqsrelay::pipeline
