// Fuzzes the Query-protocol request path: parse_form on arbitrary bytes, then
// query_to_json_request for the request's own Action and for one more SQS action, then the
// XML serializer on the result (as if a handler echoed its request back).
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

#include <boost/json/serialize.hpp>

#include "sqs/query_codec.h"

namespace {

constexpr std::string_view actions[] = {
    "AddPermission", "CancelMessageMoveTask", "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch", "CreateQueue", "DeleteMessage", "DeleteMessageBatch",
    "DeleteQueue", "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks", "ListQueueTags", "ListQueues", "PurgeQueue", "ReceiveMessage",
    "RemovePermission", "SendMessage", "SendMessageBatch", "SetQueueAttributes",
    "StartMessageMoveTask", "TagQueue", "UntagQueue", "NotAnAction", ""};

void convert(std::string_view action, const sqsrelay::sqs::query_params& params) {
  auto obj = sqsrelay::sqs::query_to_json_request(action, params);
  if (!obj) {
    (void)sqsrelay::sqs::aws_error_code(obj.error().code);
    return;
  }
  (void)boost::json::serialize(*obj);
  (void)sqsrelay::sqs::json_result_to_query_xml(action, *obj, "req-1");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto params = sqsrelay::sqs::parse_form(body);
  if (!params) {
    (void)sqsrelay::sqs::query_error_xml(true, "MalformedQueryString", params.error().message,
                                         "req-1");
    return 0;
  }
  convert(sqsrelay::sqs::query_action(*params), *params);
  // Also as one other action, picked by the last byte: every shape sees every input over
  // time without making each run 25 conversions long.
  if (size > 0) convert(actions[data[size - 1] % std::size(actions)], *params);
  return 0;
}
