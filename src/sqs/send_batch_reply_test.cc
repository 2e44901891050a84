#include "sqs/send_batch_reply.h"

#include <gtest/gtest.h>

#include <string>

namespace sqsrelay::sqs {
namespace {

TEST(send_batch_reply, reads_both_lists_in_order) {
  send_batch_reply_reader r;
  std::string body =
      R"({"Successful":[{"Id":"0","MessageId":"m0","MD5OfMessageBody":"h0"},)"
      R"({"Id":"2","MessageId":"m2","MD5OfMessageBody":"h2","SequenceNumber":"7"}],)"
      R"("Failed":[{"Id":"1","Code":"InternalError","Message":"x\"y","SenderFault":false}]})";
  const std::string sent = body;
  send_batch_result out;
  ASSERT_FALSE(r.read(body, out));
  EXPECT_EQ(body, sent);
  ASSERT_EQ(out.successful.size(), 2u);
  EXPECT_EQ(out.successful[0].id, "0");
  EXPECT_EQ(out.successful[0].message_id, "m0");
  EXPECT_EQ(out.successful[0].md5_of_body, "h0");
  EXPECT_EQ(out.successful[0].sequence_number, "");
  EXPECT_EQ(out.successful[1].sequence_number, "7");
  ASSERT_EQ(out.failed.size(), 1u);
  EXPECT_EQ(out.failed[0].id, "1");
  EXPECT_EQ(out.failed[0].code, "InternalError");
  EXPECT_EQ(out.failed[0].message, "x\"y");
  EXPECT_FALSE(out.failed[0].sender_fault);
}

TEST(send_batch_reply, tolerates_odd_shapes_as_the_dom_reader_did) {
  send_batch_reply_reader r;
  std::string body = R"({"Successful":[1,"x",{"Id":5,"MessageId":null}],"Other":{"a":[1,2]},)"
                     R"("Failed":[{"Id":"a","SenderFault":true},{"Id":"b","SenderFault":"true"},)"
                     R"({"Id":"c","SenderFault":"yes"},{}]})";
  send_batch_result out;
  ASSERT_FALSE(r.read(body, out));
  ASSERT_EQ(out.successful.size(), 1u);  // only the object; its fields are not strings
  EXPECT_EQ(out.successful[0].id, "");
  EXPECT_EQ(out.successful[0].message_id, "");
  ASSERT_EQ(out.failed.size(), 4u);
  EXPECT_TRUE(out.failed[0].sender_fault);
  EXPECT_TRUE(out.failed[1].sender_fault);
  EXPECT_FALSE(out.failed[2].sender_fault);
  EXPECT_EQ(out.failed[3].id, "");
  EXPECT_EQ(out.failed[3].code, "");

  std::string no_lists = R"({"Successful":{},"Failed":"none"})";
  send_batch_result empty;
  ASSERT_FALSE(r.read(no_lists, empty));
  EXPECT_TRUE(empty.successful.empty());
  EXPECT_TRUE(empty.failed.empty());
}

TEST(send_batch_reply, refuses_what_is_not_a_json_object) {
  send_batch_reply_reader r;
  for (std::string body : {"", "{", R"({"Successful":[]} x)", "[]", "\"s\"", "{\"a\":\"\xff\"}"}) {
    send_batch_result out;
    EXPECT_TRUE(r.read(body, out)) << body;
  }
  std::string ok = R"({"Successful":[{"Id":"0"}]})";  // the parser is reused after errors
  send_batch_result out;
  EXPECT_FALSE(r.read(ok, out));
  EXPECT_EQ(out.successful.size(), 1u);
}

}  // namespace
}  // namespace sqsrelay::sqs
