// A queue's attributes: the typed values the server acts on, plus validation and the
// string forms GetQueueAttributes returns. FIFO-only attributes are rejected until FIFO
// queues land.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sqs/errors.h"

namespace sqsrelay::server {

struct queue_attributes {
  int delay_seconds = 0;
  int maximum_message_size = 1048576;
  int message_retention_period = 345600;
  int receive_message_wait_time_seconds = 0;
  int visibility_timeout = 30;
  int kms_data_key_reuse_period_seconds = 300;
  bool sqs_managed_sse_enabled = true;
  std::string policy;
  std::string redrive_policy;        // JSON, as given (normalized)
  std::string redrive_allow_policy;  // JSON, as given (normalized)
  std::string kms_master_key_id;
  // Parsed from redrive_policy.
  std::string dead_letter_target_arn;
  int max_receive_count = 0;

  // Applies `name=value`; an unknown name or an out-of-range value gives SQS's error.
  std::optional<sqs::api_error> set(std::string_view name, std::string_view value);
  // The string value of a settable attribute, or nullopt when it is unset (Policy etc.).
  std::optional<std::string> get(std::string_view name) const;
  // Every settable attribute GetQueueAttributes(All) shows, in AWS's order.
  std::map<std::string, std::string> settable() const;
};

// Checks that need the whole request (CreateQueue, SetQueueAttributes): KMS and
// SQS-managed encryption at once is refused, as SQS does. `creating` allows FifoQueue=false
// (a standard queue spelled out); on SetQueueAttributes FifoQueue is unknown, as on SQS.
std::optional<sqs::api_error> check_attribute_request(
    const std::vector<std::pair<std::string, std::string>>& attrs, bool creating);

// True for the names GetQueueAttributes accepts (settable and read-only).
bool known_attribute_name(std::string_view name);

}  // namespace sqsrelay::server
