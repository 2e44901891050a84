// The HTTP ingest source's model: per-route options, the parsed batch handed to the sink,
// and the sink interface the app implements (spool: ack when durable; spool + sender: ack
// when delivered).
//
// Public API (namespace sqsrelay::sources):
//   route_options / ingest_options       what `relay.toml` or `sqsrelay serve` configure
//   ingest_batch                         the messages (and dead letters) of one request
//   ingest_sink::async_submit(target, batch) -> submit_result {accepted|retry_after|error}
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sqs/message.h"

namespace sqsrelay::sources {

// How a request body is split into messages. `auto_detect` looks at Content-Type
// (application/x-ndjson, application/jsonlines, application/json) and then at the content.
enum class body_format : uint8_t { auto_detect, json, ndjson };
// What happens to a request with invalid elements: answer 400 and store nothing, or store
// the valid ones, dead-letter the invalid ones and answer 200 with a per-index report.
enum class invalid_policy : uint8_t { reject, dead_letter };
// When the 200 is sent: once the sink has the records on disk, or once SQS accepted them.
enum class ack_mode : uint8_t { durable, delivered };
// The body of a JSON string element: its (unescaped) value, or its JSON text with quotes.
enum class string_elements : uint8_t { value, json };

// One message attribute taken from a field of each element.
struct field_attribute {
  std::string field;      // JSON Pointer ("/position/speed"), or one top-level key ("ident")
  std::string name;       // attribute name
  std::string data_type;  // "String" or "Number" (custom labels: "Number.float")
  bool required = false;  // a missing field makes the element invalid instead of skipping
};

struct route_options {
  std::string path;   // "/flespi"; empty for the built-in /queues/{name}/messages route
  std::string queue;  // target queue name (ignored for the built-in route)
  body_format format = body_format::auto_detect;
  std::string records_field;  // pointer to the array when the body is an object ("/data")
  std::vector<field_attribute> attributes;
  std::string group_id_field;  // FIFO MessageGroupId from this field
  std::string dedup_id_field;  // FIFO MessageDeduplicationId from this field
  invalid_policy on_invalid = invalid_policy::reject;
  ack_mode ack = ack_mode::durable;
  string_elements strings = string_elements::value;
  size_t max_message_bytes = 1048576;  // body + attributes, as SQS counts them
};

struct ingest_options {
  std::vector<route_options> routes;   // matched by exact path
  bool queue_route = true;             // also serve POST /queues/{name}/messages
  route_options queue_route_defaults;  // options for the built-in route
  // Security (DESIGN.md §3.7). Tokens are secrets: never logged.
  std::string token_header = "Authorization";  // "Bearer " prefix accepted on the value
  std::vector<std::string> tokens;             // empty: no token required
  std::vector<std::string> allow_cidrs;        // empty: every peer allowed
  std::vector<std::string> trusted_proxies;    // peers whose X-Forwarded-For is honoured
  size_t max_body_bytes = 8u << 20;            // 413 beyond (checked on Content-Length)
  size_t json_max_depth = 64;                  // nesting depth of one message
  size_t max_messages = 100000;                // elements of one request; 413 beyond
  size_t max_inflight_bytes = 256u << 20;      // bodies being handled at once; 503 beyond
  std::chrono::seconds retry_after{1};         // Retry-After on our own 503s
};

// The messages of one request, in element order. Owns its bytes; views stay valid while
// the batch lives (moves keep them valid: the text is in a heap buffer that moves along).
class ingest_batch {
 public:
  struct message {
    uint32_t index = 0;   // element index in the request
    uint64_t offset = 0;  // byte offset of the element in the request body
    std::string_view body;
    std::span<const sqs::attribute_view> attributes;
    std::string_view group_id, dedup_id;  // empty when not configured
  };
  struct dead_letter {
    uint32_t index = 0;
    uint64_t offset = 0;      // byte offset of the element in the request body
    std::string_view reason;  // short code: "too_large", "invalid_characters", ...
    std::string_view detail;  // human message
    std::string_view raw;     // the element's bytes as received (may be invalid UTF-8)
  };

  ingest_batch() = default;
  ingest_batch(ingest_batch&&) noexcept = default;
  ingest_batch& operator=(ingest_batch&&) noexcept = default;
  ingest_batch(const ingest_batch&) = delete;
  ingest_batch& operator=(const ingest_batch&) = delete;

  std::span<const message> messages() const { return messages_; }
  std::span<const dead_letter> dead_letters() const { return dead_; }
  size_t bytes() const { return text_.size(); }

 private:
  friend class batch_builder;
  std::vector<char> text_;
  std::vector<sqs::attribute_view> attrs_;
  std::vector<message> messages_;
  std::vector<dead_letter> dead_;
};

// Where a batch goes. Views point into the handler's configuration or the batch.
struct ingest_target {
  std::string queue;
  std::string route;  // route path, or "/queues/{name}/messages"
  ack_mode ack = ack_mode::durable;
};

// A message of an ack = delivered batch that SQS did not take: the sink dead-lettered it
// (e.g. MessageTooLong, QueueDoesNotExist) instead of delivering it.
struct undelivered_message {
  uint32_t index = 0;   // ingest_batch::message::index
  uint64_t offset = 0;  // ingest_batch::message::offset
  std::string code;     // SQS's error code (or the relay's), e.g. "MessageTooLong"
  std::string detail;   // for humans
};

struct submit_result {
  enum class kind : uint8_t { accepted, retry_after, error, refused };
  kind status = kind::error;
  std::chrono::seconds retry{1};  // for retry_after
  std::string reason;             // for everything but accepted; sent to the client
  int http_status = 0;            // for refused: the 4xx to answer (e.g. 404, no such queue)
  // For accepted with ack = delivered: the messages dead-lettered instead of delivered, in
  // index order (empty: every message was delivered).
  std::vector<undelivered_message> undelivered;

  static submit_result accepted() { return {kind::accepted, {}, {}, 0, {}}; }
  static submit_result retry_later(std::chrono::seconds s, std::string why) {
    return {kind::retry_after, s, std::move(why), 0, {}};
  }
  static submit_result failed(std::string why) {
    return {kind::error, {}, std::move(why), 0, {}};
  }
  // The request can never succeed as sent (no such queue, ...): a 4xx, not a retry.
  static submit_result refused(int http_status, std::string why) {
    return {kind::refused, {}, std::move(why), http_status, {}};
  }
};

// Implemented by the app. `async_submit` resolves `accepted` only when every message and
// dead letter of the batch is durable (target.ack == durable) or has ended at SQS
// (delivered: accepted by SQS, or dead-lettered and listed in `undelivered`); `retry_after` when it cannot take them now (spool full, overloaded);
// `error` when it failed; `refused` when the request can never succeed as sent (no such
// queue). The HTTP answer follows: 200, 503 + Retry-After, 500, the given 4xx. It is
// called on the connection's executor and must resume there; it may be called
// concurrently from several threads. Timeouts are the sink's business.
class ingest_sink {
 public:
  virtual ~ingest_sink() = default;
  virtual boost::asio::awaitable<submit_result> async_submit(ingest_target target,
                                                             ingest_batch batch) = 0;
};

}  // namespace sqsrelay::sources
