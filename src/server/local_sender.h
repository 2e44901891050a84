// In-process sends into the embedded server's queues, for sources that run in the same
// process (the ingest listener of `sqsrelay serve`). The same validation and storage as
// SendMessageBatch — queue limits, character set, attributes, MD5s, one WAL record per ≤ 10
// messages — without HTTP, JSON or SigV4 in between, and any number of messages per call.
// The embedded store is itself a group-committed WAL, so "acknowledged = on disk" holds
// when the completion reports success: it runs after every stored message is fdatasync'd.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sqs/errors.h"
#include "sqs/message.h"

namespace sqsrelay::server {

class service;

struct local_message {
  std::string_view body;
  std::span<const sqs::attribute_view> attributes;  // binary values already decoded
  int delay_seconds = -1;                           // -1: the queue's DelaySeconds
};

struct local_rejection {
  size_t index = 0;  // into the messages passed to send()
  sqs::api_error error;
};

struct local_send_result {
  size_t stored = 0;
  std::vector<local_rejection> rejected;  // invalid messages, not stored
};

class local_sender {
 public:
  // `create_missing`: a queue named by a send that does not exist yet is created with
  // default attributes (the zero-config embedded default); otherwise QueueDoesNotExist.
  local_sender(service& svc, bool create_missing) : svc_(svc), create_missing_(create_missing) {}

  // Validates and stores `msgs` in `queue`. `done` runs exactly once: with an error when
  // nothing could be stored (no such queue, the store failed), else with the result, after
  // the stored messages are durable. It may run on the store's sync thread: keep it short
  // (post to an executor). Invalid messages never fail the rest.
  using completion = std::function<void(const sqs::api_error* error, local_send_result)>;
  void send(std::string_view queue, std::span<const local_message> msgs, completion done);

 private:
  service& svc_;
  bool create_missing_;
};

}  // namespace sqsrelay::server
