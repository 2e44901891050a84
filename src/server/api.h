// SQS actions over the AWS JSON 1.0 request/response shapes. The frontend converts Query
// protocol requests into these shapes and the results back into XML, so every action is
// implemented once.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>

#include "server/service.h"
#include "sqs/errors.h"

namespace sqsrelay::server {

struct request_context {
  std::string host;       // Host header: queue URLs are built from it
  std::string path;       // request path: the legacy queue-URL-in-path form
  std::string sender_id;  // SenderId system attribute
  std::string trace_id;   // X-Amzn-Trace-Id header: AWSTraceHeader unless a message sets its own
};

// The result of an action: an error, or the JSON-protocol result, either as an object or,
// for the hot actions, already as JSON text (`text`, when non-empty).
struct api_outcome {
  boost::json::object result;
  std::optional<sqs::api_error> error;
  std::string text;
};

struct api_counters {
  std::atomic<uint64_t> sent{0}, received{0}, deleted{0}, requests{0}, errors{0};
};

class api {
 public:
  explicit api(service& s) : svc_(s) {}
  // Coroutine parameters by value (STYLE.md rule 10).
  boost::asio::awaitable<api_outcome> handle(std::string action, boost::json::object req,
                                             request_context ctx);
  const api_counters& counters() const { return counters_; }

 private:
  service& svc_;
  api_counters counters_;
};

}  // namespace sqsrelay::server
