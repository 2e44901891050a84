#include "server/queue_attributes.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "sqs/message.h"

namespace sqsrelay::server {

namespace {

std::optional<int> parse_int(std::string_view v) {
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
  return out;
}

std::optional<sqs::api_error> set_range(int& field, std::string_view name, std::string_view v,
                                        int lo, int hi) {
  auto n = parse_int(v);
  if (!n || *n < lo || *n > hi)
    return sqs::errors::invalid_attribute_value(
        name, fmt::format("Must be an integer from {} to {}.", lo, hi));
  field = *n;
  return std::nullopt;
}

// An SQS queue ARN: arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
bool looks_like_queue_arn(std::string_view arn) {
  std::array<std::string_view, 6> parts;
  size_t n = 0;
  while (n < parts.size()) {
    auto colon = arn.find(':');
    parts[n++] = arn.substr(0, colon);
    if (colon == std::string_view::npos) break;
    arn.remove_prefix(colon + 1);
    if (n == parts.size()) return false;  // a seventh part
  }
  return n == 6 && parts[0] == "arn" && !parts[1].empty() && parts[2] == "sqs" &&
         !parts[3].empty() && !parts[4].empty() && !parts[5].empty();
}

std::optional<sqs::api_error> set_redrive_policy(queue_attributes& a, std::string_view v) {
  if (v.empty()) {
    a.redrive_policy.clear();
    a.dead_letter_target_arn.clear();
    a.max_receive_count = 0;
    return std::nullopt;
  }
  // SQS's wording: InvalidParameterValue, the policy echoed as sent, then the reason.
  auto invalid = [&](std::string_view reason) {
    return sqs::errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter RedrivePolicy is invalid. Reason: {}", sqs::utf8_prefix(v, 1024),
        reason));
  };
  boost::system::error_code ec;
  auto j = boost::json::parse(v, ec);
  if (ec || !j.is_object()) return invalid("Redrive policy is not a valid JSON map.");
  auto& o = j.as_object();
  for (const auto& kv : o)
    if (kv.key() != "deadLetterTargetArn" && kv.key() != "maxReceiveCount")
      return invalid("Only following attributes are supported: [deadLetterTargetArn, "
                     "maxReceiveCount].");
  auto* arn = o.if_contains("deadLetterTargetArn");
  auto* count = o.if_contains("maxReceiveCount");
  if (!arn) return invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.");
  if (!count) return invalid("Redrive policy does not contain mandatory attribute: maxReceiveCount.");
  if (!arn->is_string() || !looks_like_queue_arn(arn->as_string()))
    return invalid("Invalid value for deadLetterTargetArn.");
  std::optional<int> parsed;
  if (count->is_int64()) parsed = static_cast<int>(std::clamp<int64_t>(count->as_int64(), -1, 1001));
  if (count->is_string()) parsed = parse_int(count->as_string());
  if (!parsed || *parsed < 1 || *parsed > 1000)
    return invalid(fmt::format(
        "Invalid value for maxReceiveCount: {}, valid values are from 1 to 1000 both inclusive.",
        count->is_string() ? std::string(count->as_string()) : boost::json::serialize(*count)));
  int n = *parsed;
  a.dead_letter_target_arn = std::string(arn->as_string());
  a.max_receive_count = n;
  a.redrive_policy = fmt::format(R"({{"deadLetterTargetArn":"{}","maxReceiveCount":{}}})",
                                 a.dead_letter_target_arn, n);
  return std::nullopt;
}

std::optional<sqs::api_error> set_redrive_allow_policy(queue_attributes& a, std::string_view v) {
  if (v.empty()) {
    a.redrive_allow_policy.clear();
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto j = boost::json::parse(v, ec);
  if (ec || !j.is_object())
    return sqs::errors::invalid_attribute_value("RedriveAllowPolicy", "Invalid JSON.");
  auto* perm = j.as_object().if_contains("redrivePermission");
  if (!perm || !perm->is_string())
    return sqs::errors::invalid_attribute_value(
        "RedriveAllowPolicy", "Missing redrivePermission (allowAll, denyAll or byQueue).");
  std::string_view p = perm->as_string();
  auto* src = j.as_object().if_contains("sourceQueueArns");
  if (p == "byQueue") {
    if (!src || !src->is_array() || src->as_array().empty() || src->as_array().size() > 10)
      return sqs::errors::invalid_attribute_value(
          "RedriveAllowPolicy", "byQueue needs 1 to 10 sourceQueueArns.");
  } else if (p != "allowAll" && p != "denyAll") {
    return sqs::errors::invalid_attribute_value(
        "RedriveAllowPolicy", "redrivePermission must be allowAll, denyAll or byQueue.");
  } else if (src) {
    return sqs::errors::invalid_attribute_value(
        "RedriveAllowPolicy", "sourceQueueArns is only allowed with byQueue.");
  }
  a.redrive_allow_policy = boost::json::serialize(j);
  return std::nullopt;
}

constexpr std::array<std::string_view, 9> read_only_names = {
    "All",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId"};

}  // namespace

std::optional<sqs::api_error> queue_attributes::set(std::string_view name, std::string_view v) {
  if (name == "DelaySeconds") return set_range(delay_seconds, name, v, 0, 900);
  if (name == "MaximumMessageSize") return set_range(maximum_message_size, name, v, 1024, 1048576);
  if (name == "MessageRetentionPeriod")
    return set_range(message_retention_period, name, v, 60, 1209600);
  if (name == "ReceiveMessageWaitTimeSeconds")
    return set_range(receive_message_wait_time_seconds, name, v, 0, 20);
  if (name == "VisibilityTimeout") return set_range(visibility_timeout, name, v, 0, 43200);
  if (name == "KmsDataKeyReusePeriodSeconds")
    return set_range(kms_data_key_reuse_period_seconds, name, v, 60, 86400);
  if (name == "RedrivePolicy") return set_redrive_policy(*this, v);
  if (name == "RedriveAllowPolicy") return set_redrive_allow_policy(*this, v);
  if (name == "Policy") {
    // Not an IAM policy evaluator: the document must be a JSON object whose Statement, if
    // present, is a statement object or a list of them, and whose Version is a string.
    if (!v.empty()) {
      boost::system::error_code ec;
      boost::json::value doc = boost::json::parse(v, ec);
      if (ec) return sqs::errors::invalid_attribute_value(name, "Invalid JSON policy document.");
      const auto* o = doc.if_object();
      const auto* st = o ? o->if_contains("Statement") : nullptr;
      const auto* ver = o ? o->if_contains("Version") : nullptr;
      bool ok = o != nullptr && (!ver || ver->is_string());
      if (ok && st) {
        ok = st->is_object() || (st->is_array() && !st->as_array().empty());
        if (st->is_array())
          for (const auto& e : st->as_array()) ok = ok && e.is_object();
      }
      if (!ok)
        return sqs::errors::invalid_attribute_value(
            name, "The policy is not a policy document (a JSON object with a Statement).");
    }
    policy = std::string(v);
    return std::nullopt;
  }
  // A queue has one kind of server-side encryption: choosing KMS turns SSE-SQS off, and
  // turning SSE-SQS on drops the KMS key (check_attribute_request refuses both at once).
  if (name == "KmsMasterKeyId") {
    kms_master_key_id = std::string(v);
    if (!v.empty()) sqs_managed_sse_enabled = false;
    return std::nullopt;
  }
  if (name == "SqsManagedSseEnabled") {
    if (v != "true" && v != "false") return sqs::errors::invalid_attribute_value(name);
    sqs_managed_sse_enabled = v == "true";
    if (sqs_managed_sse_enabled) kms_master_key_id.clear();
    return std::nullopt;
  }
  // FifoQueue=false at creation is a standard queue (check_attribute_request); FIFO-only
  // attributes are unknown on a standard queue, as on SQS.
  if (name == "FifoQueue" && v == "false") return std::nullopt;
  return sqs::errors::invalid_attribute_name(name);
}

std::optional<sqs::api_error> check_attribute_request(
    const std::vector<std::pair<std::string, std::string>>& attrs, bool creating) {
  bool kms = false, sqs_sse = false;
  for (const auto& [k, v] : attrs) {
    if (k == "FifoQueue" && !creating) return sqs::errors::invalid_attribute_name(k);
    kms = kms || (k == "KmsMasterKeyId" && !v.empty());
    sqs_sse = sqs_sse || (k == "SqsManagedSseEnabled" && v == "true");
  }
  if (kms && sqs_sse)
    return sqs::api_error{"InvalidAttributeName", "InvalidAttributeName", 400, true,
                          "You can use one type of server-side encryption (SSE) at one time. "
                          "You can either enable KMS SSE or SQS SSE."};
  return std::nullopt;
}

std::optional<std::string> queue_attributes::get(std::string_view name) const {
  auto all = settable();
  auto it = all.find(std::string(name));
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> queue_attributes::settable() const {
  std::map<std::string, std::string> m{
      {"DelaySeconds", std::to_string(delay_seconds)},
      {"MaximumMessageSize", std::to_string(maximum_message_size)},
      {"MessageRetentionPeriod", std::to_string(message_retention_period)},
      {"ReceiveMessageWaitTimeSeconds", std::to_string(receive_message_wait_time_seconds)},
      {"VisibilityTimeout", std::to_string(visibility_timeout)},
      {"SqsManagedSseEnabled", sqs_managed_sse_enabled ? "true" : "false"},
  };
  if (!policy.empty()) m["Policy"] = policy;
  if (!redrive_policy.empty()) m["RedrivePolicy"] = redrive_policy;
  if (!redrive_allow_policy.empty()) m["RedriveAllowPolicy"] = redrive_allow_policy;
  if (!kms_master_key_id.empty()) {
    m["KmsMasterKeyId"] = kms_master_key_id;
    m["KmsDataKeyReusePeriodSeconds"] = std::to_string(kms_data_key_reuse_period_seconds);
  }
  return m;
}

bool known_attribute_name(std::string_view name) {
  for (auto n : read_only_names)
    if (n == name) return true;
  static constexpr std::array<std::string_view, 10> settable_names = {
      "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
      "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "Policy", "RedrivePolicy",
      "RedriveAllowPolicy", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"};
  for (auto n : settable_names)
    if (n == name) return true;
  return name == "FifoQueue" || name == "ContentBasedDeduplication" ||
         name == "DeduplicationScope" || name == "FifoThroughputLimit";
}

}  // namespace sqsrelay::server
