// The SQS client: AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Op>`) over the keep-alive pool
// of http/client.h, SigV4-signed with credentials from aws/credential_chain.h.
//
// API (coroutines on the HTTP client's executor):
//
//   sqs::client c(http, chain, system_clock::instance(), {.endpoint = origin, .region = "eu-west-1"});
//   auto r = co_await c.send_message_batch("orders", entries);   // name or URL
//   if (!r) { r.error().retryable ... }  else { r->successful, r->failed }
//
// Queues are named by URL or by name everywhere; names are resolved with GetQueueUrl once and
// cached (resolve_queue). Every request goes to the configured endpoint (the queue URL's host
// is not used for routing: endpoint.h derives the endpoint from a queue URL when none is set).
//
// Errors: client_error{kind, http_status, code, query_code, message, sender_fault, retryable}.
//   transport  the request did not complete (connect, TLS, reset); retryable
//   timeout    no response in time; retryable
//   http_status a non-2xx answer without an SQS error body; retryable when 5xx/429
//   api        an SQS error (`__type` + `x-amzn-query-error`); retryable for throttling
//              (RequestThrottled, ThrottlingException, Throttling, ...), 5xx and
//              SenderFault=false; never for SenderFault client errors
//   credentials no credentials could be obtained; not retryable
//   invalid    the call itself is invalid (e.g. 0 or more than 10 entries); not retryable
// SendMessageBatch entries that fail come back in `failed` (the call succeeds); entries the
// response names in neither list are reported in `failed` with code "MissingEntry" and
// sender_fault=false (so they are retried). With verify_md5, a success whose MD5OfMessageBody
// differs from the body sent is reported as a failure "MD5Mismatch" (sender_fault=false).
//
// Per-queue limits: queue_limits(queue) reads MaximumMessageSize with GetQueueAttributes,
// caches it for `limits_ttl`, and returns the cached value while a refresh fails.
//
// Allocation: request bodies are written directly as JSON text into pooled buffers (one per
// request in flight, reused), responses are parsed with Boost.JSON into a per-buffer arena,
// except SendMessageBatch's, which simdjson reads (send_batch_reply.h).
//
// Thread-safety: none; use from the executor of the http::client it was given. The http
// client and the credential chain must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/fwd.hpp>
#include <boost/system/result.hpp>

#include "base/clock.h"
#include "http/client.h"
#include "sqs/message.h"

namespace sqsrelay::aws {
class credential_chain;
class signer;
struct timed_credentials;
}  // namespace sqsrelay::aws

namespace sqsrelay::sqs {

class send_batch_reply_reader;

enum class error_kind { transport, timeout, http_status, api, credentials, invalid };
std::string_view to_string(error_kind k);

struct client_error {
  error_kind kind = error_kind::transport;
  int http_status = 0;
  std::string code;        // the error shape, e.g. "QueueDoesNotExist", "RequestThrottled"
  std::string query_code;  // legacy code from x-amzn-query-error, e.g.
                           // "AWS.SimpleQueueService.NonExistentQueue"
  std::string message;     // what happened, with the operation and the endpoint
  bool sender_fault = false;
  bool retryable = false;
  bool throttled = false;
  // Transport errors only: the request may have reached the server (ambiguous outcome).
  bool request_sent = false;
};
[[noreturn]] void throw_exception_from_error(const client_error& e,
                                             const boost::source_location& loc);

template <class T>
using client_result = boost::system::result<T, client_error>;

// True for the codes AWS SDKs treat as throttling.
bool is_throttling_code(std::string_view code);

// ---- Shapes --------------------------------------------------------------------------------

// An owning message attribute. Binary values are raw bytes (base64-encoded on the wire).
struct message_attribute {
  std::string name;
  std::string data_type;  // "String", "Number", "Binary", optionally ".label"
  std::string value;
  bool binary() const { return std::string_view(data_type).substr(0, 6) == "Binary"; }
};

// A SendMessageBatch entry by reference (the hot path: no copies of bodies). Attributes use
// sqs::attribute_view (value = raw bytes for Binary). delay_seconds < 0: the queue default.
struct send_entry_ref {
  std::string_view id;
  std::string_view body;
  std::span<const attribute_view> attributes;
  int delay_seconds = -1;
  std::string_view group_id;
  std::string_view dedup_id;
};

// An owning entry (convenience).
struct send_entry {
  std::string id;
  std::string body;
  std::vector<message_attribute> message_attributes;
  int delay_seconds = -1;
  std::string group_id;
  std::string dedup_id;
};

struct batch_success {
  std::string id;
  std::string message_id;
  std::string md5_of_body;
  std::string sequence_number;  // FIFO queues
};

struct batch_failure {
  std::string id;
  std::string code;
  std::string message;
  bool sender_fault = false;
};

struct send_batch_result {
  std::vector<batch_success> successful;
  std::vector<batch_failure> failed;
};

struct send_result {
  std::string message_id;
  std::string md5_of_body;
  std::string sequence_number;
};

struct receive_options {
  int max_messages = 10;                  // 1..10
  std::optional<int> wait_seconds;        // 0..20; none: the queue's default
  std::optional<int> visibility_timeout;  // none: the queue's default
  std::vector<std::string> attribute_names{"All"};          // system attributes
  std::vector<std::string> message_attribute_names{"All"};  // user attributes
  std::string receive_request_attempt_id;                   // FIFO
};

struct received_message {
  std::string message_id;
  std::string receipt_handle;
  std::string body;
  std::string md5_of_body;
  std::map<std::string, std::string> attributes;  // system attributes (SentTimestamp, ...)
  std::vector<message_attribute> message_attributes;
};

struct handle_entry {
  std::string id;
  std::string receipt_handle;
};

struct visibility_entry {
  std::string id;
  std::string receipt_handle;
  int visibility_timeout = 0;
};

// Delete/ChangeVisibility batch results: ids of the successes, and the failures.
struct ack_batch_result {
  std::vector<std::string> successful;
  std::vector<batch_failure> failed;
};

using attribute_map = std::map<std::string, std::string>;

struct list_queues_result {
  std::vector<std::string> queue_urls;
};

struct queue_limits {
  size_t max_message_size = 1048576;
};

struct client_options {
  http::origin endpoint;      // where requests go
  std::string path = "/";     // the request target of every call (an endpoint URL's path)
  std::string region = "us-east-1";
  std::string service = "sqs";  // the SigV4 signing name
  bool verify_md5 = true;
  std::chrono::seconds limits_ttl{300};
  // Extra time given to a long poll's HTTP request beyond its WaitTimeSeconds.
  std::chrono::seconds long_poll_grace{10};
  std::string user_agent = "sqsrelay/0.1";
  // Calls per operation: a throttled, 5xx or transport failure is tried again after a full-
  // jitter exponential backoff (retry_base, doubling, at most retry_cap), as AWS SDKs do. 1:
  // no retries (the sender retries per entry itself).
  uint32_t max_attempts = 1;
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_cap{5000};
};

struct client_stats {
  uint64_t calls = 0, errors = 0, throttled = 0, retryable_errors = 0, bytes_sent = 0,
           bytes_received = 0, md5_mismatches = 0, missing_entries = 0;
};

class client {
 public:
  // `http` and `creds` must outlive the client; `clk` gives the signing time.
  client(http::client& http, aws::credential_chain& creds, const clock& clk, client_options o);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // ---- Messages (queue = name or URL) ----
  // 1..10 entries; `entries` and what it points to must stay valid until completion.
  boost::asio::awaitable<client_result<send_batch_result>> send_message_batch(
      std::string queue, std::span<const send_entry_ref> entries);
  boost::asio::awaitable<client_result<send_batch_result>> send_message_batch(
      std::string queue, std::vector<send_entry> entries);
  boost::asio::awaitable<client_result<send_result>> send_message(std::string queue,
                                                                  send_entry entry);
  boost::asio::awaitable<client_result<std::vector<received_message>>> receive_message(
      std::string queue, receive_options o);
  boost::asio::awaitable<client_result<ack_batch_result>> delete_message_batch(
      std::string queue, std::vector<handle_entry> entries);
  boost::asio::awaitable<client_result<ack_batch_result>> change_message_visibility_batch(
      std::string queue, std::vector<visibility_entry> entries);

  // ---- Queues ----
  boost::asio::awaitable<client_result<std::string>> get_queue_url(std::string name,
                                                                   std::string owner_account = {});
  // A URL is returned as is; a name is looked up once and cached.
  boost::asio::awaitable<client_result<std::string>> resolve_queue(std::string name_or_url);
  boost::asio::awaitable<client_result<attribute_map>> get_queue_attributes(
      std::string queue, std::vector<std::string> names = {"All"});
  boost::asio::awaitable<client_result<void>> set_queue_attributes(std::string queue,
                                                                   attribute_map attrs);
  // Returns the new queue's URL.
  boost::asio::awaitable<client_result<std::string>> create_queue(
      std::string name, attribute_map attrs = {}, std::map<std::string, std::string> tags = {});
  // All pages (NextToken followed) unless max_results > 0 limits to one page of that size.
  boost::asio::awaitable<client_result<list_queues_result>> list_queues(std::string prefix = {},
                                                                        int max_results = 0);
  boost::asio::awaitable<client_result<void>> purge_queue(std::string queue);
  boost::asio::awaitable<client_result<void>> delete_queue(std::string queue);

  // MaximumMessageSize of the queue, cached (see above).
  boost::asio::awaitable<client_result<queue_limits>> get_queue_limits(std::string queue);

  const client_stats& stats() const { return stats_; }
  const client_options& options() const { return opts_; }

  struct exchange;  // a pooled request/response buffer pair

 private:
  class lease;  // an exchange taken from the pool for one operation (client.cc)
  boost::asio::awaitable<client_result<ack_batch_result>> ack_batch(
      std::string_view op, std::string queue, size_t count,
      std::function<void(std::string&, bool&, size_t)> write_entry);
  boost::asio::awaitable<client_result<void>> call(std::string_view op, exchange& ex);
  boost::asio::awaitable<client_result<void>> call_once(std::string_view op, exchange& ex);
  // call(), then the JSON reply parsed into the exchange's arena (valid while it is held).
  boost::asio::awaitable<client_result<boost::json::value>> call_json(std::string_view op,
                                                                      exchange& ex);
  boost::asio::awaitable<client_result<std::shared_ptr<aws::signer>>> current_signer();
  std::unique_ptr<exchange> take_exchange();
  void give_back(std::unique_ptr<exchange> ex);
  client_error parse_error(std::string_view op, const exchange& ex) const;
  // A SendMessageBatch reply's lists checked against the entries sent (see above).
  send_batch_result reconcile(std::span<const send_entry_ref> entries, send_batch_result listed);

  http::client& http_;
  aws::credential_chain& creds_;
  const clock& clock_;
  client_options opts_;
  http::origin_id origin_;
  std::string host_header_;
  std::string endpoint_text_;
  std::shared_ptr<const aws::timed_credentials> signer_creds_;
  std::shared_ptr<aws::signer> signer_;
  std::vector<std::unique_ptr<exchange>> free_;
  std::map<std::string, std::string, std::less<>> url_cache_;
  struct limits_entry {
    queue_limits limits;
    std::chrono::steady_clock::time_point fetched;
  };
  std::map<std::string, limits_entry, std::less<>> limits_cache_;
  client_stats stats_;
  std::unique_ptr<send_batch_reply_reader> batch_reader_;
};

// Splits "https://sqs.us-east-1.amazonaws.com/123456789012/orders" into its parts. Any
// http(s) URL whose last path segment is a name is a queue URL: the embedded server finds a
// queue by that segment whatever comes before it (it forms http://HOST/ACCOUNT/NAME; ElasticMQ's
// legacy form is http://HOST/queue/NAME), and the SDKs pass QueueUrl through unchecked.
// nullopt when it is no http(s) URL or names no queue ("http://HOST", "http://HOST/").
struct queue_url_parts {
  std::string origin;   // "https://sqs.us-east-1.amazonaws.com"
  std::string account;  // the segment before the name; empty for "http://HOST/NAME"
  std::string name;
};
std::optional<queue_url_parts> parse_queue_url(std::string_view url);
// Starts with http:// or https://: meant as a URL (valid or not), never a queue name.
bool is_queue_url(std::string_view s);

}  // namespace sqsrelay::sqs
