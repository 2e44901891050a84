#include "sources/http_ingest/probe.h"

#include <fmt/format.h>

namespace sqsrelay::sources {

namespace {

size_t reason_slot(std::string_view reason) {
  for (size_t i = 0; i + 1 < ingest_probe::reasons.size(); ++i)
    if (ingest_probe::reasons[i] == reason) return i;
  return ingest_probe::reasons.size() - 1;
}

size_t code_slot(int status) {
  for (size_t i = 0; i + 1 < ingest_probe::codes.size(); ++i)
    if (ingest_probe::codes[i] == status) return i;
  return ingest_probe::codes.size() - 1;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out),
                 "# HELP sqsrelay_ingest_{} {}\n# TYPE sqsrelay_ingest_{} {}\n", name, help, name,
                 type);
}

}  // namespace

void ingest_probe::request(uint64_t body_bytes) {
  add(requests_, 1);
  add(bytes_, body_bytes);
}

void ingest_probe::response(int status) { add(responses_[code_slot(status)], 1); }

void ingest_probe::invalid(std::string_view reason, uint64_t n) {
  add(invalid_[reason_slot(reason)], n);
}

uint64_t ingest_probe::invalid_count(std::string_view reason) const {
  return get(invalid_[reason_slot(reason)]);
}

uint64_t ingest_probe::responses(int status) const { return get(responses_[code_slot(status)]); }

void ingest_probe::render(std::string& out, uint64_t inflight_bytes) const {
  auto it = std::back_inserter(out);
  auto simple = [&](std::string_view name, std::string_view help, uint64_t v) {
    header(out, name, "counter", help);
    fmt::format_to(it, "sqsrelay_ingest_{} {}\n", name, v);
  };
  simple("requests_total", "HTTP requests received.", get(requests_));
  simple("request_bytes_total", "Request body bytes received.", get(bytes_));
  simple("messages_accepted_total", "Messages acknowledged with a 200.", get(accepted_));
  simple("messages_dead_lettered_total", "Invalid elements stored as dead letters.",
         get(dead_lettered_));
  simple("messages_undelivered_total",
         "Messages of ack = delivered requests that SQS did not take (dead-lettered; 502, or "
         "listed in a 200's report).",
         get(undelivered_));
  simple("sink_retry_total", "Requests the sink could not take (503 with Retry-After).",
         get(sink_retry_));
  simple("sink_errors_total", "Requests the sink failed (500).", get(sink_error_));
  simple("sink_refused_total",
         "Requests the sink refused as they were sent (4xx, e.g. no "
         "such queue).",
         get(sink_refused_));
  simple("inflight_rejected_total",
         "Requests refused because the in-flight byte budget was used up (503).",
         get(inflight_rejected_));
  header(out, "responses_total", "counter", "Responses by HTTP status (0: other).");
  for (size_t i = 0; i < codes.size(); ++i)
    fmt::format_to(it, "sqsrelay_ingest_responses_total{{code=\"{}\"}} {}\n", codes[i],
                   get(responses_[i]));
  header(out, "invalid_total", "counter",
         "Invalid elements and requests by reason (elements of rejected requests included).");
  for (size_t i = 0; i < reasons.size(); ++i)
    fmt::format_to(it, "sqsrelay_ingest_invalid_total{{reason=\"{}\"}} {}\n", reasons[i],
                   get(invalid_[i]));
  header(out, "auth_failures_total", "counter",
         "Requests denied: bad or missing token, address not allowed, malformed "
         "X-Forwarded-For.");
  static constexpr std::string_view kinds[] = {"token", "address", "forwarded_for"};
  for (size_t i = 0; i < auth_.size(); ++i)
    fmt::format_to(it, "sqsrelay_ingest_auth_failures_total{{kind=\"{}\"}} {}\n", kinds[i],
                   get(auth_[i]));
  header(out, "inflight_bytes", "gauge", "Request body bytes being handled now.");
  fmt::format_to(it, "sqsrelay_ingest_inflight_bytes {}\n", inflight_bytes);
}

}  // namespace sqsrelay::sources
