// The sender's only view of SQS: one asynchronous SendMessageBatch and the queue's live
// MaximumMessageSize. Production uses sqs_transport (over sqs::client); tests use fakes that
// answer on command, so every reply shape (partial failures, missing ids, throttling, drops)
// is exercised without a network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "pipeline/message.h"

namespace sqsrelay::pipeline {

// One entry of a SendMessageBatch call: a batch-unique id and the message (owned by the
// sender; valid until the call's completion runs).
struct batch_entry {
  std::string_view id;
  const outbound_message* message = nullptr;
};

// A whole-request failure: no entry took effect (or, for a dropped connection after the
// request was sent, we cannot know: the entries are retried and may be duplicated).
struct request_error {
  enum class kind : uint8_t { transport, timeout, http_status, api };
  kind what = kind::transport;
  int http_status = 0;
  std::string code;     // e.g. "RequestThrottled", "InternalError", "QueueDoesNotExist"
  std::string message;
  bool sender_fault = false;
  bool retryable = true;  // transport errors, timeouts, 5xx, throttling
  bool throttled = false;
};

struct entry_success {
  std::string id;
  std::string message_id;
};

struct entry_failure {
  std::string id;
  std::string code;
  std::string message;
  bool sender_fault = false;
};

// The answer to one call: either `error`, or the Successful/Failed lists of a 200.
struct batch_reply {
  std::optional<request_error> error;
  std::vector<entry_success> successful;
  std::vector<entry_failure> failed;
};

class batch_transport {
 public:
  virtual ~batch_transport() = default;

  // Sends one SendMessageBatch of 1..10 entries to `queue` (a name or URL). The `entries`
  // span is valid during the call only; the messages it points to stay valid until `done`
  // runs. `done` runs exactly once, never before send_batch returns, on the executor the
  // sender was given (implementations post to it).
  virtual void send_batch(const std::string& queue, std::span<const batch_entry> entries,
                          std::function<void(batch_reply)> done) = 0;

  // The queue's live MaximumMessageSize (GetQueueAttributes), or an error: `would_block`
  // when a retry can succeed (throttling, 5xx, network), anything else when it cannot (e.g.
  // no permission to read attributes). `done` runs exactly once, on the sender's executor.
  virtual void max_message_size(const std::string& queue,
                                std::function<void(result<size_t>)> done) = 0;
};

}  // namespace sqsrelay::pipeline
