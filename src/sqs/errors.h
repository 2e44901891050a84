// The SQS error catalog: every error the server answers with, in both protocols' terms.
// JSON protocol: `__type` = "com.amazonaws.sqs#<type>" plus the header
// `x-amzn-query-error: <query_code>;<Sender|Receiver>` (SDKs map typed exceptions from it);
// Query protocol: <Code><query_code></Code>. Codes follow the botocore models.
#pragma once

#include <string>
#include <string_view>

namespace sqsrelay::sqs {

struct api_error {
  std::string type;        // JSON shape name, e.g. "QueueDoesNotExist"
  std::string query_code;  // legacy code, e.g. "AWS.SimpleQueueService.NonExistentQueue"
  int http_status = 400;
  bool sender_fault = true;
  std::string message;
};

namespace errors {
api_error queue_does_not_exist();
api_error queue_name_exists(std::string_view attribute);
api_error invalid_attribute_name(std::string_view name);
api_error invalid_attribute_value(std::string_view name, std::string_view reason = {});
api_error invalid_parameter_value(std::string message);
api_error missing_parameter(std::string_view name);
api_error invalid_action(std::string_view action);
api_error unsupported_operation(std::string message);
api_error receipt_handle_is_invalid(std::string_view handle);
api_error message_gone_for_visibility(std::string_view handle);
api_error purge_in_progress(std::string_view queue_name);
api_error too_many_entries(size_t sent);
api_error empty_batch_request(std::string_view entry_shape);
api_error batch_entry_ids_not_distinct(std::string_view id);
api_error invalid_batch_entry_id();
api_error batch_request_too_long(size_t bytes);
api_error invalid_message_contents();
api_error over_limit(std::string message);
api_error malformed_request(std::string message);  // a form body that cannot be parsed
api_error serialization_exception(std::string message);  // a JSON body that cannot be parsed
api_error unsupported_content_type(std::string_view content_type);
api_error request_too_large(size_t limit);
api_error internal_failure(std::string message);
api_error service_unavailable(std::string message);
api_error throttled();
api_error resource_not_found(std::string message);
api_error auth_failure(int status, std::string code, std::string message);
}  // namespace errors

}  // namespace sqsrelay::sqs
