#include "sqs/query_codec.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace sqsrelay::sqs {
namespace {

namespace json = boost::json;

query_params form(std::string_view body) {
  auto params = parse_form(body);
  EXPECT_TRUE(params) << params.error().message;
  return params ? *params : query_params{};
}

query_result<json::object> decode(std::string_view body) {
  const query_params params = form(body);
  return query_to_json_request(query_action(params), params);
}

json::object decode_ok(std::string_view body) {
  auto request = decode(body);
  EXPECT_TRUE(request) << request.error().message;
  return request ? std::move(*request) : json::object();
}

json::object object_from(std::string_view text) { return json::parse(text).as_object(); }

void expect_error(std::string_view body, query_errc code, std::string_view mention) {
  auto request = decode(body);
  ASSERT_FALSE(request) << json::serialize(*request);
  EXPECT_EQ(request.error().code, code) << request.error().message;
  EXPECT_NE(request.error().message.find(mention), std::string::npos) << request.error().message;
}

// ---------------------------------------------------------------------------------------------
// parse_form

TEST(parse_form, decodes_percent_escapes_and_plus_in_request_order) {
  const query_params params = form("b=x+y%2B%26&a=%E2%98%83&Empty=&NoEquals&&");
  const query_params expected = {
      {"b", "x y+&"}, {"a", "\xE2\x98\x83"}, {"Empty", ""}, {"NoEquals", ""}};
  EXPECT_EQ(params, expected);
  EXPECT_TRUE(form("").empty());
}

TEST(parse_form, accepts_raw_characters_form_encoders_leave_alone) {
  const query_params expected = {{"a", "x*y (z)!'~ {}"}};
  EXPECT_EQ(form("a=x*y (z)!'~ {}"), expected);
}

TEST(parse_form, rejects_malformed_percent_escapes_naming_the_parameter) {
  for (std::string_view body : {"MessageBody=%G1", "MessageBody=100%", "MessageBody=%4"}) {
    auto params = parse_form(body);
    ASSERT_FALSE(params) << body;
    EXPECT_EQ(params.error().code, query_errc::malformed_query_string);
    EXPECT_NE(params.error().message.find("MessageBody"), std::string::npos)
        << params.error().message;
  }
  auto bad_name = parse_form("Queue%zzUrl=x");
  ASSERT_FALSE(bad_name);
  EXPECT_NE(bad_name.error().message.find("Queue%zzUrl"), std::string::npos);
}

TEST(parse_form, rejects_what_does_not_decode_to_utf8) {
  // Stray byte, overlong '/', UTF-16 surrogate, truncated sequence.
  for (std::string_view body : {"a=%FF", "a=%C0%AF", "a=%ED%A0%80", "a=%E2%98", "%80=1"}) {
    auto params = parse_form(body);
    ASSERT_FALSE(params) << body;
    EXPECT_EQ(params.error().code, query_errc::malformed_query_string) << body;
  }
}

TEST(query_action, returns_the_first_action_or_nothing) {
  EXPECT_EQ(query_action(form("Version=1&Action=SendMessage&Action=Other")), "SendMessage");
  EXPECT_EQ(query_action(form("Version=1")), "");
}

// ---------------------------------------------------------------------------------------------
// query_to_json_request: one request per action, byte for byte as AWS CLI v2.9's botocore
// QuerySerializer sends it (the message-move-task actions, which its model predates, by analogy).

struct request_case {
  const char* action;
  const char* body;
  const char* json;
};

const request_case botocore_requests[] = {
    {"CreateQueue",
     "Action=CreateQueue&Version=2012-11-05&QueueName=q.fifo&Attribute.1.Name=FifoQueue&"
     "Attribute.1.Value=true&Attribute.2.Name=DelaySeconds&Attribute.2.Value=5&"
     "Tag.1.Key=team&Tag.1.Value=a+b",
     R"({"QueueName":"q.fifo","Attributes":{"FifoQueue":"true","DelaySeconds":"5"},)"
     R"("tags":{"team":"a b"}})"},
    {"GetQueueUrl",
     "Action=GetQueueUrl&Version=2012-11-05&QueueName=q&QueueOwnerAWSAccountId=000000000000",
     R"({"QueueName":"q","QueueOwnerAWSAccountId":"000000000000"})"},
    {"ListQueues",
     "Action=ListQueues&Version=2012-11-05&QueueNamePrefix=q&NextToken=t%2B%2F%3D&"
     "MaxResults=10",
     R"({"QueueNamePrefix":"q","NextToken":"t+/=","MaxResults":10})"},
    {"DeleteQueue",
     "Action=DeleteQueue&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q"})"},
    {"GetQueueAttributes",
     "Action=GetQueueAttributes&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&AttributeName.1=All&"
     "AttributeName.2=QueueArn",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","AttributeNames":["All",)"
     R"("QueueArn"]})"},
    {"SetQueueAttributes",
     "Action=SetQueueAttributes&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&"
     "Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q",)"
     R"("Attributes":{"VisibilityTimeout":"60"}})"},
    {"PurgeQueue",
     "Action=PurgeQueue&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q"})"},
    {"TagQueue",
     "Action=TagQueue&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&Tag.1.Key=k1&Tag.1.Value=v1&"
     "Tag.2.Key=k2&Tag.2.Value=",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Tags":{"k1":"v1","k2":""}})"},
    {"UntagQueue",
     "Action=UntagQueue&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&TagKey.1=k1&TagKey.2=k2",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","TagKeys":["k1","k2"]})"},
    {"ListQueueTags",
     "Action=ListQueueTags&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q"})"},
    {"SendMessage",
     "Action=SendMessage&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&"
     "MessageBody=a%26b%3Dc%2Bd%0D%0A&DelaySeconds=5&MessageAttribute.1.Name=s&"
     "MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=x&"
     "MessageAttribute.2.Name=b&MessageAttribute.2.Value.DataType=Binary&"
     "MessageAttribute.2.Value.BinaryValue=AP8%3D&"
     "MessageSystemAttribute.1.Name=AWSTraceHeader&"
     "MessageSystemAttribute.1.Value.DataType=String&"
     "MessageSystemAttribute.1.Value.StringValue=Root%3D1",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","MessageBody":"a&b=c+d\r\n",)"
     R"("DelaySeconds":5,"MessageAttributes":{"s":{"DataType":"String","StringValue":"x"},)"
     R"("b":{"DataType":"Binary","BinaryValue":"AP8="}},)"
     R"("MessageSystemAttributes":{"AWSTraceHeader":{"DataType":"String",)"
     R"("StringValue":"Root=1"}}})"},
    {"SendMessageBatch",
     "Action=SendMessageBatch&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&"
     "SendMessageBatchRequestEntry.1.Id=1&SendMessageBatchRequestEntry.1.MessageBody=one&"
     "SendMessageBatchRequestEntry.1.DelaySeconds=0&"
     "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=a&"
     "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=Number&"
     "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=-1&"
     "SendMessageBatchRequestEntry.2.Id=2&SendMessageBatchRequestEntry.2.MessageBody=two&"
     "SendMessageBatchRequestEntry.2.MessageGroupId=g&"
     "SendMessageBatchRequestEntry.2.MessageDeduplicationId=d",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Entries":[{"Id":"1",)"
     R"("MessageBody":"one","DelaySeconds":0,"MessageAttributes":{"a":{"DataType":"Number",)"
     R"("StringValue":"-1"}}},{"Id":"2","MessageBody":"two","MessageGroupId":"g",)"
     R"("MessageDeduplicationId":"d"}]})"},
    {"ReceiveMessage",
     "Action=ReceiveMessage&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&AttributeName.1=All&"
     "MessageAttributeName.1=a&MessageAttributeName.2=b.%2A&MaxNumberOfMessages=10&"
     "VisibilityTimeout=30&WaitTimeSeconds=20&ReceiveRequestAttemptId=r",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","AttributeNames":["All"],)"
     R"("MessageAttributeNames":["a","b.*"],"MaxNumberOfMessages":10,"VisibilityTimeout":30,)"
     R"("WaitTimeSeconds":20,"ReceiveRequestAttemptId":"r"})"},
    {"DeleteMessage",
     "Action=DeleteMessage&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&ReceiptHandle=rh%2B%2F%3D",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","ReceiptHandle":"rh+/="})"},
    {"DeleteMessageBatch",
     "Action=DeleteMessageBatch&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&"
     "DeleteMessageBatchRequestEntry.1.Id=1&"
     "DeleteMessageBatchRequestEntry.1.ReceiptHandle=rh1&"
     "DeleteMessageBatchRequestEntry.2.Id=2&"
     "DeleteMessageBatchRequestEntry.2.ReceiptHandle=rh2",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Entries":[{"Id":"1",)"
     R"("ReceiptHandle":"rh1"},{"Id":"2","ReceiptHandle":"rh2"}]})"},
    {"ChangeMessageVisibility",
     "Action=ChangeMessageVisibility&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&ReceiptHandle=rh&"
     "VisibilityTimeout=0",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","ReceiptHandle":"rh",)"
     R"("VisibilityTimeout":0})"},
    {"ChangeMessageVisibilityBatch",
     "Action=ChangeMessageVisibilityBatch&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&"
     "ChangeMessageVisibilityBatchRequestEntry.1.Id=1&"
     "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=rh1&"
     "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=60&"
     "ChangeMessageVisibilityBatchRequestEntry.2.Id=2&"
     "ChangeMessageVisibilityBatchRequestEntry.2.ReceiptHandle=rh2",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Entries":[{"Id":"1",)"
     R"("ReceiptHandle":"rh1","VisibilityTimeout":60},{"Id":"2","ReceiptHandle":"rh2"}]})"},
    {"ListDeadLetterSourceQueues",
     "Action=ListDeadLetterSourceQueues&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&NextToken=t&MaxResults=100",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","NextToken":"t","MaxResults":100})"},
    {"AddPermission",
     "Action=AddPermission&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&Label=l&"
     "AWSAccountId.1=111122223333&ActionName.1=SendMessage&ActionName.2=DeleteMessage",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Label":"l",)"
     R"("AWSAccountIds":["111122223333"],"Actions":["SendMessage","DeleteMessage"]})"},
    {"RemovePermission",
     "Action=RemovePermission&Version=2012-11-05&"
     "QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq&Label=l",
     R"({"QueueUrl":"http://localhost:9324/000000000000/q","Label":"l"})"},
    {"StartMessageMoveTask",
     "Action=StartMessageMoveTask&Version=2012-11-05&"
     "SourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Adlq&"
     "DestinationArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Aq&"
     "MaxNumberOfMessagesPerSecond=50",
     R"({"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq",)"
     R"("DestinationArn":"arn:aws:sqs:us-east-1:000000000000:q",)"
     R"("MaxNumberOfMessagesPerSecond":50})"},
    {"CancelMessageMoveTask", "Action=CancelMessageMoveTask&Version=2012-11-05&TaskHandle=th%2B",
     R"({"TaskHandle":"th+"})"},
    {"ListMessageMoveTasks",
     "Action=ListMessageMoveTasks&Version=2012-11-05&"
     "SourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Adlq&MaxResults=10",
     R"({"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq","MaxResults":10})"},
};

// GoogleTest's customization point for printing a parameter.
// NOLINTNEXTLINE(readability-identifier-naming)
void PrintTo(const request_case& c, std::ostream* os) { *os << c.action; }

class botocore_request : public testing::TestWithParam<request_case> {};

TEST_P(botocore_request, converts_to_the_json_protocol_request) {
  const request_case& c = GetParam();
  const query_params params = form(c.body);
  ASSERT_EQ(query_action(params), c.action);
  auto request = query_to_json_request(c.action, params);
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(*request, object_from(c.json)) << json::serialize(*request);
}

INSTANTIATE_TEST_SUITE_P(every_action, botocore_request, testing::ValuesIn(botocore_requests),
                         [](const testing::TestParamInfo<request_case>& case_info) {
                           return std::string(case_info.param.action);
                         });

TEST(query_to_json_request, turns_botocores_empty_list_marker_into_an_empty_array) {
  EXPECT_EQ(decode_ok("Action=DeleteMessageBatch&QueueUrl=u&Entries="),
            object_from(R"({"QueueUrl":"u","Entries":[]})"));
  EXPECT_EQ(decode_ok("Action=GetQueueAttributes&QueueUrl=u&AttributeNames="),
            object_from(R"({"QueueUrl":"u","AttributeNames":[]})"));
  EXPECT_EQ(
      decode_ok("Action=SendMessage&MessageAttribute.1.Name=a&"
                "MessageAttribute.1.Value.DataType=String&"
                "MessageAttribute.1.Value.StringListValue="),
      object_from(R"({"MessageAttributes":{"a":{"StringListValues":[],"DataType":"String"}}})"));
}

TEST(query_to_json_request, accepts_the_unindexed_one_item_forms_of_aws_examples) {
  EXPECT_EQ(decode_ok("Action=GetQueueAttributes&QueueUrl=u&AttributeName=All"),
            object_from(R"({"QueueUrl":"u","AttributeNames":["All"]})"));
  EXPECT_EQ(decode_ok("Action=ReceiveMessage&AttributeName=All&MessageAttributeName=All"),
            object_from(R"({"AttributeNames":["All"],"MessageAttributeNames":["All"]})"));
  EXPECT_EQ(decode_ok("Action=TagQueue&Tag.Key=QueueType&Tag.Value=Production"),
            object_from(R"({"Tags":{"QueueType":"Production"}})"));
  EXPECT_EQ(decode_ok("Action=SetQueueAttributes&Attribute.Name=DelaySeconds&Attribute.Value=5"),
            object_from(R"({"Attributes":{"DelaySeconds":"5"}})"));
  EXPECT_EQ(decode_ok("Action=SendMessage&MessageAttribute.Name=a&"
                      "MessageAttribute.Value.DataType=String&"
                      "MessageAttribute.Value.StringValue=x"),
            object_from(R"({"MessageAttributes":{"a":{"StringValue":"x","DataType":"String"}}})"));
  expect_error("Action=TagQueue&Tag.Key=a", query_errc::missing_parameter, "Tag.Value");
  expect_error("Action=TagQueue&Tag.Key=a&Tag.Value=1&Tag.1.Key=b&Tag.1.Value=2",
               query_errc::malformed_query_string, "invalid list index");
}

TEST(query_to_json_request, orders_list_items_by_index_not_by_arrival) {
  EXPECT_EQ(decode_ok("Action=UntagQueue&TagKey.2=b&TagKey.10=j&TagKey.1=a&TagKey.3=c&TagKey.4=d&"
                      "TagKey.5=e&TagKey.6=f&TagKey.7=g&TagKey.8=h&TagKey.9=i"),
            object_from(R"({"TagKeys":["a","b","c","d","e","f","g","h","i","j"]})"));
}

TEST(query_to_json_request, accepts_the_newer_message_system_attribute_names) {
  EXPECT_EQ(decode_ok("Action=ReceiveMessage&QueueUrl=u&MessageSystemAttributeName.1=All"),
            object_from(R"({"QueueUrl":"u","MessageSystemAttributeNames":["All"]})"));
}

TEST(query_to_json_request, ignores_parameters_the_action_does_not_define) {
  EXPECT_EQ(decode_ok("Action=DeleteQueue&Version=2012-11-05&QueueUrl=u&"
                      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc&AUTHPARAMS=x&"
                      "Attribute.1.Name=n&Bogus.0.x=1&QueueUrl.1=y"),
            object_from(R"({"QueueUrl":"u"})"));
  EXPECT_EQ(decode_ok("Action=DeleteMessageBatch&DeleteMessageBatchRequestEntry.1.Id=a&"
                      "DeleteMessageBatchRequestEntry.1.Bogus=b"),
            object_from(R"({"Entries":[{"Id":"a"}]})"));
}

TEST(query_to_json_request, leaves_required_member_checks_to_the_handlers) {
  EXPECT_EQ(decode_ok("Action=SendMessage"), json::object());
}

TEST(query_to_json_request, rejects_non_integers_where_the_model_has_an_integer) {
  expect_error("Action=SendMessage&DelaySeconds=abc", query_errc::invalid_parameter_value,
               "Value abc for parameter DelaySeconds is invalid");
  for (std::string_view value : {"", "1.5", "+5", " 5", "5 ", "0x10", "2147483648", "1e3"}) {
    expect_error("Action=ReceiveMessage&MaxNumberOfMessages=" + std::string(value),
                 query_errc::invalid_parameter_value, "MaxNumberOfMessages");
  }
  expect_error(
      "Action=SendMessageBatch&SendMessageBatchRequestEntry.1.Id=a&"
      "SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.DelaySeconds=x",
      query_errc::invalid_parameter_value, "SendMessageBatchRequestEntry.2.DelaySeconds");
  EXPECT_EQ(decode_ok("Action=ChangeMessageVisibility&VisibilityTimeout=-2147483648"),
            object_from(R"({"VisibilityTimeout":-2147483648})"));
}

TEST(query_to_json_request, rejects_list_indexes_that_are_zero_non_numeric_or_padded) {
  expect_error("Action=GetQueueAttributes&AttributeName.0=All", query_errc::malformed_query_string,
               "AttributeName.0");
  expect_error("Action=GetQueueAttributes&AttributeName.x=All", query_errc::malformed_query_string,
               "AttributeName.x");
  expect_error("Action=GetQueueAttributes&AttributeName.01=All", query_errc::malformed_query_string,
               "AttributeName.01");
  expect_error("Action=GetQueueAttributes&AttributeName.-1=All", query_errc::malformed_query_string,
               "AttributeName.-1");
}

TEST(query_to_json_request, rejects_gaps_in_list_and_map_numbering) {
  expect_error("Action=GetQueueAttributes&AttributeName.1=a&AttributeName.3=b",
               query_errc::malformed_query_string, "AttributeName.2 is missing");
  expect_error("Action=SendMessageBatch&SendMessageBatchRequestEntry.2.Id=b",
               query_errc::malformed_query_string, "SendMessageBatchRequestEntry.1 is missing");
  expect_error(
      "Action=SetQueueAttributes&Attribute.1.Name=a&Attribute.1.Value=1&"
      "Attribute.99999999999.Name=b&Attribute.99999999999.Value=2",
      query_errc::malformed_query_string, "Attribute.2 is missing");
}

TEST(query_to_json_request, rejects_map_entries_without_name_or_value) {
  expect_error("Action=SetQueueAttributes&Attribute.1.Value=5", query_errc::missing_parameter,
               "The request must contain the parameter Attribute.1.Name.");
  expect_error("Action=SetQueueAttributes&Attribute.1.Name=DelaySeconds",
               query_errc::missing_parameter, "Attribute.1.Value");
  expect_error("Action=TagQueue&Tag.1.Key=a&Tag.1.Value=1&Tag.2.Key=b",
               query_errc::missing_parameter, "Tag.2.Value");
  expect_error("Action=SendMessageBatch&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=a",
               query_errc::missing_parameter,
               "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value");
}

TEST(query_to_json_request, rejects_list_items_without_a_value) {
  expect_error("Action=GetQueueAttributes&AttributeName.1.Foo=All", query_errc::missing_parameter,
               "AttributeName.1");
}

TEST(query_to_json_request, rejects_repeated_names_and_parameters) {
  expect_error(
      "Action=SetQueueAttributes&Attribute.1.Name=A&Attribute.1.Value=1&"
      "Attribute.2.Name=A&Attribute.2.Value=2",
      query_errc::invalid_parameter_value, "Attribute.2.Name");
  expect_error("Action=DeleteQueue&QueueUrl=a&QueueUrl=b", query_errc::malformed_query_string,
               "QueueUrl is given more than once");
}

TEST(query_to_json_request, rejects_missing_and_unknown_actions) {
  expect_error("QueueUrl=u", query_errc::missing_action, "parameter Action");
  expect_error("Action=CreateTopic", query_errc::invalid_action,
               "The action CreateTopic is not valid");
  expect_error("Action=sendmessage", query_errc::invalid_action, "sendmessage");
}

TEST(query_errc, maps_to_aws_codes_and_an_error_category) {
  EXPECT_EQ(aws_error_code(query_errc::malformed_query_string), "MalformedQueryString");
  EXPECT_EQ(aws_error_code(query_errc::invalid_parameter_value), "InvalidParameterValue");
  EXPECT_EQ(aws_error_code(query_errc::missing_parameter), "MissingParameter");
  EXPECT_EQ(aws_error_code(query_errc::missing_action), "MissingAction");
  EXPECT_EQ(aws_error_code(query_errc::invalid_action), "InvalidAction");
  const error_code ec = query_errc::missing_parameter;
  EXPECT_EQ(ec.message(), "MissingParameter");
  EXPECT_EQ(&ec.category(), &query_category());
  EXPECT_THROW((void)decode("Action=Nope").value(), boost::system::system_error);
}

// ---------------------------------------------------------------------------------------------
// json_result_to_query_xml, query_error_xml

constexpr std::string_view ns = R"( xmlns="http://queue.amazonaws.com/doc/2012-11-05/")";

std::string metadata(std::string_view request_id) {
  return "<ResponseMetadata><RequestId>" + std::string(request_id) +
         "</RequestId></ResponseMetadata>";
}

std::string to_xml(std::string_view action, std::string_view result_json) {
  return json_result_to_query_xml(action, json::parse(result_json).as_object(), "req-1");
}

TEST(json_result_to_query_xml, wraps_the_result_and_request_id) {
  EXPECT_EQ(to_xml("GetQueueUrl", R"({"QueueUrl":"http://h/1/q"})"),
            "<GetQueueUrlResponse" + std::string(ns) +
                "><GetQueueUrlResult><QueueUrl>http://h/1/q</QueueUrl></GetQueueUrlResult>" +
                metadata("req-1") + "</GetQueueUrlResponse>");
}

TEST(json_result_to_query_xml, has_no_result_element_for_actions_without_output) {
  EXPECT_EQ(to_xml("DeleteQueue", "{}"), "<DeleteQueueResponse" + std::string(ns) + ">" +
                                             metadata("req-1") + "</DeleteQueueResponse>");
}

TEST(json_result_to_query_xml, keeps_an_empty_result_element_botocore_looks_for) {
  EXPECT_EQ(to_xml("ReceiveMessage", R"({"Messages":[]})"),
            "<ReceiveMessageResponse" + std::string(ns) +
                "><ReceiveMessageResult></ReceiveMessageResult>" + metadata("req-1") +
                "</ReceiveMessageResponse>");
}

TEST(json_result_to_query_xml, writes_flattened_lists_and_maps_in_model_order) {
  const std::string xml = to_xml("ReceiveMessage", R"({"Messages":[{
      "MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"AP8="}},
      "Attributes":{"SenderId":"s"},"Body":"b","MessageId":"m"}]})");
  EXPECT_NE(xml.find("<ReceiveMessageResult><Message><MessageId>m</MessageId><Body>b</Body>"
                     "<Attribute><Name>SenderId</Name><Value>s</Value></Attribute>"
                     "<MessageAttribute><Name>a</Name><Value><BinaryValue>AP8=</BinaryValue>"
                     "<DataType>Binary</DataType></Value></MessageAttribute></Message>"
                     "</ReceiveMessageResult>"),
            std::string::npos)
      << xml;
}

TEST(json_result_to_query_xml, writes_batch_results_with_sender_fault_booleans) {
  const std::string xml = to_xml("DeleteMessageBatch", R"({"Successful":[{"Id":"a"}],
      "Failed":[{"Id":"b","SenderFault":true,"Code":"C"},
                {"Id":"c","SenderFault":false,"Code":"D"}]})");
  EXPECT_NE(
      xml.find("<DeleteMessageBatchResult>"
               "<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"
               "<BatchResultErrorEntry><Id>b</Id><SenderFault>true</SenderFault><Code>C</Code>"
               "</BatchResultErrorEntry><BatchResultErrorEntry><Id>c</Id>"
               "<SenderFault>false</SenderFault><Code>D</Code></BatchResultErrorEntry>"
               "</DeleteMessageBatchResult>"),
      std::string::npos)
      << xml;
}

TEST(json_result_to_query_xml, escapes_markup_quotes_and_carriage_returns) {
  const std::string xml =
      json_result_to_query_xml("GetQueueUrl", {{"QueueUrl", "a&b<c>d\"e'f\r\ng\th ]]>"}}, "r");
  EXPECT_NE(xml.find("<QueueUrl>a&amp;b&lt;c&gt;d&quot;e&apos;f&#xD;\ng\th ]]&gt;</QueueUrl>"),
            std::string::npos)
      << xml;
}

TEST(json_result_to_query_xml, replaces_what_xml_cannot_carry_with_u_fffd) {
  // NUL, a C0 control, U+FFFF, a stray byte; U+FFFD itself and astral characters pass through.
  constexpr char raw[] =
      "a\0b\x01"
      "c\xEF\xBF\xBF"
      "d\xFF"
      "e\xEF\xBF\xBD\xF0\x9F\x98\x80";
  const std::string in(raw, sizeof raw - 1);
  const std::string xml = json_result_to_query_xml("GetQueueUrl", {{"QueueUrl", in}}, "r");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_NE(xml.find("<QueueUrl>a" + fffd + "b" + fffd + "c" + fffd + "d" + fffd + "e" + fffd +
                     "\xF0\x9F\x98\x80</QueueUrl>"),
            std::string::npos)
      << xml;
}

TEST(json_result_to_query_xml, skips_nulls_unknown_members_and_misfit_types) {
  EXPECT_EQ(to_xml("ListQueues", R"({"QueueUrls":"not-a-list","NextToken":null,"Extra":1})"),
            "<ListQueuesResponse" + std::string(ns) + "><ListQueuesResult></ListQueuesResult>" +
                metadata("req-1") + "</ListQueuesResponse>");
  EXPECT_EQ(to_xml("ListQueueTags", R"({"Tags":{"a":{"x":1},"b":"2"}})").find("<Key>a</Key>"),
            std::string::npos);
}

TEST(json_result_to_query_xml, cannot_be_broken_by_a_bogus_action_name) {
  EXPECT_EQ(json_result_to_query_xml("<x>Foo&", {}, "r"),
            "<xFooResponse" + std::string(ns) + ">" + metadata("r") + "</xFooResponse>");
}

TEST(query_error_xml, matches_the_sqs_error_document) {
  EXPECT_EQ(query_error_xml(true, "InvalidParameterValue", "Value <x> & 'y'", "id&1"),
            "<ErrorResponse" + std::string(ns) +
                "><Error><Type>Sender</Type><Code>InvalidParameterValue</Code>"
                "<Message>Value &lt;x&gt; &amp; &apos;y&apos;</Message><Detail/></Error>"
                "<RequestId>id&amp;1</RequestId></ErrorResponse>");
  EXPECT_NE(query_error_xml(false, "InternalError", "m", "r").find("<Type>Receiver</Type>"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Against the AWS CLI v2.9's own botocore (src/sqs/testdata/botocore_query.py): its
// QuerySerializer writes requests for testdata/query_samples.json, its QueryParser reads our XML.

std::filesystem::path testdata_dir() {
  // Tests run single-threaded, so getenv is safe here.
  if (const char* source = std::getenv("SQSRELAY_SOURCE_DIR")) {  // NOLINT(concurrency-mt-unsafe)
    return std::filesystem::path(source) / "src" / "sqs" / "testdata";
  }
  return std::filesystem::path(__FILE__).parent_path() / "testdata";
}

std::string awscli_python() {
  const char* python = std::getenv("SQSRELAY_AWSCLI_PYTHON");  // NOLINT(concurrency-mt-unsafe)
  return python != nullptr ? python : "/usr/bin/python3";      // the CLI's interpreter on Debian
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct oracle_output {
  int exit_code = -1;
  json::value parsed;
};

// Runs botocore_query.py; exit code 77 means the CLI's botocore is not importable.
oracle_output run_oracle(std::string_view command, const std::filesystem::path& input) {
  const std::string line = shell_quote(awscli_python()) + " " +
                           shell_quote((testdata_dir() / "botocore_query.py").string()) + " " +
                           std::string(command) + " " + shell_quote(input.string());
  FILE* pipe = popen(line.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  oracle_output result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (result.exit_code == 0) result.parsed = json::parse(out);
  return result;
}

json::array load_samples() {
  const std::filesystem::path path = testdata_dir() / "query_samples.json";
  std::string text(std::filesystem::file_size(path), '\0');
  std::ifstream(path, std::ios::binary)
      .read(text.data(), static_cast<std::streamsize>(text.size()));
  return json::parse(text).as_array();
}

// botocore leaves out empty flattened lists and maps (there is no element to see).
json::value without_empty_containers(const json::value& v) {
  if (!v.is_object()) return v;
  json::object out;
  for (const auto& [key, member] : v.get_object()) {
    const bool empty = (member.is_array() && member.get_array().empty()) ||
                       (member.is_object() && member.get_object().empty());
    if (empty) continue;
    if (member.is_array()) {
      json::array items;
      for (const auto& item : member.get_array()) items.push_back(without_empty_containers(item));
      out[key] = std::move(items);
    } else {
      out[key] = without_empty_containers(member);
    }
  }
  return out;
}

class temp_file {
 public:
  explicit temp_file(std::string_view contents)
      : path_(std::filesystem::temp_directory_path() /
              ("sqs_query_codec_test." + std::to_string(getpid()) + ".json")) {
    std::ofstream(path_) << contents;
  }
  ~temp_file() { std::filesystem::remove(path_); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(awscli_botocore, query_serializer_requests_convert_back_to_the_json_input) {
  if (!std::filesystem::exists(awscli_python())) GTEST_SKIP() << awscli_python() << " missing";
  const oracle_output bodies = run_oracle("serialize", testdata_dir() / "query_samples.json");
  if (bodies.exit_code == 77) GTEST_SKIP() << "AWS CLI v2.9 botocore is not importable";
  ASSERT_EQ(bodies.exit_code, 0);
  int checked = 0;
  for (const json::value& sample : load_samples()) {
    const json::string& name = sample.at("name").get_string();
    const json::value* body = bodies.parsed.as_object().if_contains(name);
    if (body == nullptr) continue;  // an action the CLI v2.9 model predates
    SCOPED_TRACE(std::string(name) + ": " + std::string(body->get_string()));
    const query_params params = form(body->get_string());
    auto request = query_to_json_request(query_action(params), params);
    ASSERT_TRUE(request) << request.error().message;
    EXPECT_EQ(*request, sample.at("request").as_object()) << json::serialize(*request);
    ++checked;
  }
  EXPECT_GE(checked, 25);  // every action but the three message-move-task ones, some twice
}

TEST(awscli_botocore, query_parser_reads_our_xml_back_as_the_json_result) {
  if (!std::filesystem::exists(awscli_python())) GTEST_SKIP() << awscli_python() << " missing";
  json::array responses;
  json::object expected;
  for (const json::value& sample : load_samples()) {
    if (!sample.as_object().contains("result")) continue;
    const json::string& name = sample.at("name").get_string();
    const std::string request_id = "rid-" + std::string(name);
    responses.push_back(
        {{"name", name},
         {"action", sample.at("action")},
         {"status", 200},
         {"xml", json_result_to_query_xml(sample.at("action").get_string(),
                                          sample.at("result").get_object(), request_id)}});
    json::value want = without_empty_containers(sample.at("result"));
    want.as_object()["RequestId"] = request_id;
    expected[name] = std::move(want);
  }
  responses.push_back({{"name", "error"},
                       {"action", "SendMessage"},
                       {"status", 400},
                       {"xml", query_error_xml(true, "InvalidParameterValue",
                                               "Value <x> & \"y\"\r\n is bad", "rid-e")}});
  const temp_file input(json::serialize(responses));
  const oracle_output parsed = run_oracle("parse", input.path());
  if (parsed.exit_code == 77) GTEST_SKIP() << "AWS CLI v2.9 botocore is not importable";
  ASSERT_EQ(parsed.exit_code, 0);
  for (const auto& [name, want] : expected) {
    EXPECT_EQ(parsed.parsed.at(name), want)
        << name << ": " << json::serialize(parsed.parsed.at(name));
  }
  const json::value& error = parsed.parsed.at("error");
  EXPECT_EQ(error.at("Error").at("Code"), "InvalidParameterValue");
  EXPECT_EQ(error.at("Error").at("Type"), "Sender");
  EXPECT_EQ(error.at("Error").at("Message"), "Value <x> & \"y\"\r\n is bad");
  EXPECT_EQ(error.at("RequestId"), "rid-e");
  EXPECT_GE(expected.size(), 25u);  // every sample with a result
}

}  // namespace
}  // namespace sqsrelay::sqs
