#include "sqs/errors.h"

#include <fmt/format.h>

namespace sqsrelay::sqs::errors {

namespace {
api_error make(std::string type, std::string query_code, int status, std::string message,
               bool sender = true) {
  return api_error{std::move(type), std::move(query_code), status, sender, std::move(message)};
}
api_error same(std::string code, int status, std::string message, bool sender = true) {
  std::string type = code;
  return make(std::move(type), std::move(code), status, std::move(message), sender);
}
}  // namespace

api_error queue_does_not_exist() {
  return make("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400,
              "The specified queue does not exist.");
}
api_error queue_name_exists(std::string_view attribute) {
  return make("QueueNameExists", "QueueAlreadyExists", 400,
              fmt::format("A queue already exists with the same name and a different value "
                          "for attribute {}",
                          attribute));
}
api_error invalid_attribute_name(std::string_view name) {
  return same("InvalidAttributeName", 400, fmt::format("Unknown Attribute {}.", name));
}
api_error invalid_attribute_value(std::string_view name, std::string_view reason) {
  std::string msg = fmt::format("Invalid value for the parameter {}.", name);
  if (!reason.empty()) msg += fmt::format(" Reason: {}", reason);
  return same("InvalidAttributeValue", 400, std::move(msg));
}
api_error invalid_parameter_value(std::string message) {
  return same("InvalidParameterValue", 400, std::move(message));
}
api_error missing_parameter(std::string_view name) {
  return same("MissingParameter", 400,
              fmt::format("The request must contain the parameter {}.", name));
}
api_error invalid_action(std::string_view action) {
  return same("InvalidAction", 400,
              fmt::format("The action or operation requested is invalid: {}", action));
}
api_error unsupported_operation(std::string message) {
  return make("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400,
              std::move(message));
}
api_error receipt_handle_is_invalid(std::string_view handle) {
  return same("ReceiptHandleIsInvalid", 400,
              fmt::format("The input receipt handle \"{}\" is not a valid receipt handle.",
                          handle.substr(0, 256)));
}
api_error message_gone_for_visibility(std::string_view handle) {
  return same("InvalidParameterValue", 400,
              fmt::format("Value {} for parameter ReceiptHandle is invalid. Reason: Message does "
                          "not exist or is not available for visibility timeout change.",
                          handle.substr(0, 256)));
}
api_error purge_in_progress(std::string_view queue_name) {
  return make("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403,
              fmt::format("Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                          queue_name));
}
api_error too_many_entries(size_t sent) {
  return make("TooManyEntriesInBatchRequest",
              "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400,
              fmt::format("Maximum number of entries per request are 10. You have sent {}.",
                          sent));
}
api_error empty_batch_request(std::string_view entry_shape) {
  return make("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400,
              fmt::format("There should be at least one {} in the request.", entry_shape));
}
api_error batch_entry_ids_not_distinct(std::string_view id) {
  return make("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
              400, fmt::format("Id {} repeated.", id));
}
api_error invalid_batch_entry_id() {
  return make("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400,
              "A batch entry id can only contain alphanumeric characters, hyphens and "
              "underscores. It can be at most 80 letters long.");
}
api_error batch_request_too_long(size_t bytes) {
  return make("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400,
              fmt::format("Batch requests cannot be longer than 1048576 bytes. You have sent "
                          "{} bytes.",
                          bytes));
}
api_error invalid_message_contents() {
  return same("InvalidMessageContents", 400,
              "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 "
              "to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF");
}
api_error over_limit(std::string message) { return same("OverLimit", 403, std::move(message)); }
api_error malformed_request(std::string message) {
  return same("MalformedQueryString", 400, std::move(message));
}
api_error serialization_exception(std::string message) {
  return same("SerializationException", 400, std::move(message));
}
api_error unsupported_content_type(std::string_view content_type) {
  return same("InvalidParameterValue", 415,
              fmt::format("Unsupported Content-Type '{}': use application/x-amz-json-1.0 or "
                          "application/x-www-form-urlencoded.",
                          content_type.substr(0, 128)));
}
api_error request_too_large(size_t limit) {
  return same("RequestEntityTooLarge", 413,
              fmt::format("Request body is larger than the limit of {} bytes.", limit));
}
api_error internal_failure(std::string message) {
  return same("InternalFailure", 500, std::move(message), false);
}
api_error service_unavailable(std::string message) {
  return same("ServiceUnavailable", 503, std::move(message), false);
}
api_error throttled() {
  return same("RequestThrottled", 400, "Request is throttled.");
}
api_error resource_not_found(std::string message) {
  return same("ResourceNotFoundException", 404, std::move(message));
}
api_error auth_failure(int status, std::string code, std::string message) {
  return same(std::move(code), status, std::move(message));
}

}  // namespace sqsrelay::sqs::errors
