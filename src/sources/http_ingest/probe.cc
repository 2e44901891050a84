#include "sources/http_ingest/probe.h"

#include <fmt/format.h>

#include <iterator>
#include <vector>

#include "base/prometheus.h"

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
  const labeled one{{}, this, inflight_bytes};
  render(out, std::span<const labeled>(&one, 1));
}

void ingest_probe::render(std::string& out, std::span<const labeled> listeners) {
  auto it = std::back_inserter(out);
  std::vector<std::string> label;  // per listener: `listener="x"` or empty
  for (const labeled& l : listeners)
    label.push_back(l.listener.empty() ? std::string()
                                       : "listener=\"" + prometheus_label_value(l.listener) + "\"");
  // name{listener="x",extra} or name{extra} or name{listener="x"} or name.
  auto sample = [&](std::string_view name, size_t i, std::string_view extra, uint64_t v) {
    std::string_view sep = !label[i].empty() && !extra.empty() ? "," : "";
    if (label[i].empty() && extra.empty())
      fmt::format_to(it, "sqsrelay_ingest_{} {}\n", name, v);
    else
      fmt::format_to(it, "sqsrelay_ingest_{}{{{}{}{}}} {}\n", name, label[i], sep, extra, v);
  };
  auto simple = [&](std::string_view name, std::string_view help, const counter ingest_probe::*c) {
    header(out, name, "counter", help);
    for (size_t i = 0; i < listeners.size(); ++i) sample(name, i, {}, get(listeners[i].probe->*c));
  };
  simple("requests_total", "HTTP requests received.", &ingest_probe::requests_);
  simple("request_bytes_total", "Request body bytes received.", &ingest_probe::bytes_);
  simple("messages_accepted_total", "Messages acknowledged with a 200.", &ingest_probe::accepted_);
  simple("messages_dead_lettered_total", "Invalid elements stored as dead letters.",
         &ingest_probe::dead_lettered_);
  simple("messages_undelivered_total",
         "Messages of ack = delivered requests that SQS did not take (dead-lettered; 502, or "
         "listed in a 200's report).",
         &ingest_probe::undelivered_);
  simple("sink_retry_total", "Requests the sink could not take (503 with Retry-After).",
         &ingest_probe::sink_retry_);
  simple("sink_errors_total", "Requests the sink failed (500).", &ingest_probe::sink_error_);
  simple("sink_refused_total",
         "Requests the sink refused as they were sent (4xx, e.g. no such queue).",
         &ingest_probe::sink_refused_);
  simple("inflight_rejected_total",
         "Requests refused because the in-flight byte budget was used up (503).",
         &ingest_probe::inflight_rejected_);
  header(out, "responses_total", "counter", "Responses by HTTP status (0: other).");
  for (size_t i = 0; i < listeners.size(); ++i)
    for (size_t k = 0; k < codes.size(); ++k)
      sample("responses_total", i, fmt::format("code=\"{}\"", codes[k]),
             get(listeners[i].probe->responses_[k]));
  header(out, "invalid_total", "counter",
         "Invalid elements and requests by reason (elements of rejected requests included).");
  for (size_t i = 0; i < listeners.size(); ++i)
    for (size_t k = 0; k < reasons.size(); ++k)
      sample("invalid_total", i, fmt::format("reason=\"{}\"", reasons[k]),
             get(listeners[i].probe->invalid_[k]));
  header(out, "auth_failures_total", "counter",
         "Requests denied: bad or missing token, address not allowed, malformed "
         "X-Forwarded-For.");
  static constexpr std::string_view kinds[] = {"token", "address", "forwarded_for"};
  for (size_t i = 0; i < listeners.size(); ++i)
    for (size_t k = 0; k < std::size(kinds); ++k)
      sample("auth_failures_total", i, fmt::format("kind=\"{}\"", kinds[k]),
             get(listeners[i].probe->auth_[k]));
  header(out, "inflight_bytes", "gauge", "Request body bytes being handled now.");
  for (size_t i = 0; i < listeners.size(); ++i)
    sample("inflight_bytes", i, {}, listeners[i].inflight_bytes);
}

}  // namespace sqsrelay::sources
