// sqsrelay::producer — a background batching SQS producer for C++ programs.
//
//   #include <sqsrelay/producer.h>
//
//   sqsrelay::producer p;                          // the embedded server on 127.0.0.1:9324
//   sqsrelay::producer p({.endpoint_url = "https://sqs.eu-west-1.amazonaws.com",
//                         .region = "eu-west-1"}); // Amazon SQS, credentials from the chain
//
//   auto f = p.send("orders", R"({"id":1})");                   // std::future<send_result>
//   p.send("orders", m, [](const sqsrelay::send_result& r) { ... });  // callback; m: message
//   p.flush();                 // everything sent so far has an outcome
//   // ~producer(): flushes for up to options.close_timeout, then abandons the rest
//
// What it does for you: packs messages into SendMessageBatch calls (10 entries, the 1 MiB
// total, the queue's own MaximumMessageSize, a short linger), keeps an adaptive number of
// calls in flight, checks every entry of every reply, retries what can succeed (throttling,
// 5xx, network errors, SenderFault=false, entries missing from a reply) with capped
// exponential backoff and jitter, and never re-sends what succeeded. Messages SQS can never
// accept (invalid characters, oversize, bad attributes, SenderFault=true) end as
// `dead_lettered` with the reason — also written to `dead_letter_file` and/or re-sent to
// `dead_letter_queue` when configured. Every send gets exactly one result.
//
// Threading: send(), flush() and stats() may be called from any thread. Callbacks (and
// future completions) run on the producer's I/O thread: keep them short, never call flush()
// or destroy the producer from one. An exception a callback throws is logged and dropped;
// it affects no other message. send() blocks while `max_pending_messages` are unfinished,
// or max_pending_bytes of them (back-pressure), so memory stays bounded — except when called from a
// callback, where it never blocks (only that thread makes room) and may pass the limits.
// A message for a FIFO queue (name or URL ending in .fifo) without a group_id is
// dead-lettered alone (MissingParameter), before any call, as SQS would fail its batch.
// An abandoned result carries code "Abandoned" and, in `detail`, the attempts made and
// the last retryable error.
// Errors: the constructor throws std::runtime_error for an unusable configuration (bad
// endpoint URL, unreadable CA or dead-letter file); nothing else throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace sqsrelay {

struct producer_options {
  // Empty: $AWS_ENDPOINT_URL_SQS, $AWS_ENDPOINT_URL, else the embedded server
  // (http://127.0.0.1:9324).
  std::string endpoint_url;
  std::string region;  // empty: $AWS_REGION / $AWS_DEFAULT_REGION / us-east-1
  // Empty: the default credential chain (environment, profile, container, EC2 IMDSv2).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string profile;
  std::string ca_file;  // extra trusted CAs (PEM) for https endpoints

  std::chrono::microseconds linger{std::chrono::milliseconds(5)};
  uint32_t max_in_flight = 256;              // upper bound of the adaptive window (0: 1)
  size_t max_pending_messages = 100000;      // send() blocks beyond this (0: 1)
  size_t max_pending_bytes = size_t{256} << 20;  // ... or beyond this many bytes (at least
                                                 // one message is always accepted)
  uint32_t max_attempts = 0;                 // 0: retry until close_timeout
  std::string dead_letter_file;              // NDJSON, appended, fsync'd
  std::string dead_letter_queue;             // name or URL
  std::chrono::milliseconds close_timeout{std::chrono::seconds(30)};
};

struct message_attribute {
  std::string name;
  std::string data_type;  // "String", "Number", "Binary" (+ optional ".label")
  std::string value;      // text, or raw bytes for Binary
};

struct message {
  message() = default;
  message(std::string b) : body(std::move(b)) {}  // NOLINT: implicit on purpose: send(q, "x")
  message(const char* b) : body(b) {}              // NOLINT

  std::string body;
  std::vector<message_attribute> attributes;
  std::string group_id;  // FIFO (or fair) queues
  std::string dedup_id;  // FIFO queues without content-based deduplication
  int delay_seconds = -1;  // < 0: the queue's default
};

enum class send_status { delivered, dead_lettered, abandoned };

struct send_result {
  send_status status = send_status::delivered;
  std::string message_id;  // delivered
  std::string reason;      // dead_lettered: oversize, invalid_characters, sender_fault, ...
  std::string code;        // the SQS error code, when there is one
  std::string detail;
  uint32_t attempts = 0;   // SendMessageBatch calls that carried the message
  bool ok() const { return status == send_status::delivered; }
};

struct producer_stats {
  uint64_t accepted = 0, delivered = 0, retried = 0, dead_lettered = 0, abandoned = 0,
           api_calls = 0, entries_sent = 0, billing_units = 0, throttled = 0,
           request_errors = 0, in_flight = 0, window = 0, pending = 0;
};

class producer {
 public:
  explicit producer(producer_options options = {});
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  std::future<send_result> send(const std::string& queue, message m);
  void send(const std::string& queue, message m,
            std::function<void(const send_result&)> callback);

  // Waits until every message sent so far has a result (or `timeout` passes); true if so.
  bool flush(std::chrono::milliseconds timeout = std::chrono::hours(24));

  producer_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sqsrelay
