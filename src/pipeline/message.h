// The sender's message model: what a producer hands to the pipeline, how many bytes SQS
// counts for it, whether SQS could ever accept it, and how each message ends.
//
// Size accounting is SQS's own (sqs::message_size): the UTF-8 body plus every message
// attribute's name, data type and value (binary values as raw bytes). That is the number the
// queue's MaximumMessageSize and the 1 MiB SendMessageBatch total are checked against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sqsrelay::pipeline {

// One message attribute. `data_type` is "String", "Number" or "Binary", optionally with a
// custom label ("Number.int"). `value` is the string value, or the raw bytes of a Binary
// attribute (not base64: the transport encodes it).
struct message_attribute {
  std::string name;
  std::string data_type;
  std::string value;

  bool binary() const { return std::string_view(data_type).substr(0, 6) == "Binary"; }
};

// A message bound for a queue. `group_id`/`dedup_id` are sent when non-empty (FIFO queues,
// fair queues); `delay_seconds` < 0 means "the queue's default".
struct outbound_message {
  std::string body;
  std::vector<message_attribute> attributes;
  std::string group_id;
  std::string dedup_id;
  int delay_seconds = -1;
};

// Bytes SQS counts against MaximumMessageSize for `m`.
size_t message_size(const outbound_message& m);

// Why a message can never be accepted. The wire code is what SQS would answer.
enum class reject_reason : uint8_t {
  oversize,            // larger than the queue's MaximumMessageSize
  empty_body,          // SQS requires at least one character
  invalid_characters,  // body outside SQS's character set (or not UTF-8)
  invalid_attributes,  // attribute name/type/value/count SQS refuses
  sender_fault,        // SQS answered Failed[] with SenderFault=true
  request_rejected,    // the whole request was refused in a way a retry cannot fix
  retry_limit,         // retried max_attempts times without success
  invalid_input,       // the input record itself was malformed (bad JSON, too long)
  abandoned,           // dead-letter file only: the stop deadline passed before delivery
                       // (the outcome is `abandoned`; see sender_options)
};
std::string_view to_string(reject_reason r);

struct rejection {
  reject_reason reason;
  std::string code;     // e.g. "InvalidMessageContents", "MessageTooLong"
  std::string message;  // human-readable detail
};

// Checks everything SQS checks per message before a call: character set of the body,
// attributes (count, names, types, values), size against `max_message_size`, and an empty
// body. nullopt: sendable.
std::optional<rejection> check_message(const outbound_message& m, size_t max_message_size);

// How one submitted message ended. Reported exactly once per submission.
struct outcome {
  enum class kind : uint8_t { delivered, dead_lettered, abandoned };
  kind what = kind::delivered;
  std::string message_id;            // delivered: the id SQS assigned
  std::optional<rejection> reason;   // dead_lettered: why
  uint32_t attempts = 0;             // SendMessageBatch calls that carried it

  bool delivered() const { return what == kind::delivered; }
};
std::string_view to_string(outcome::kind k);

// Called once with the outcome, on the sender's thread: keep it short, never block.
using completion = std::function<void(const outcome&)>;

}  // namespace sqsrelay::pipeline
