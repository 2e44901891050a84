// Counters of the HTTP ingest source, rendered as Prometheus text. Lock-free (relaxed
// atomics): safe to bump from every I/O thread and to render from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sqsrelay::sources {

class ingest_probe {
 public:
  // Element/request rejection reasons, as in responses (docs/ingest.md).
  static constexpr std::array<std::string_view, 13> reasons = {
      "invalid_json",      "too_deep",          "too_large",           "invalid_characters",
      "invalid_attribute", "missing_field",     "invalid_id",          "empty_body",
      "no_records_array",  "unsupported_json",  "too_many_messages",   "unsupported_encoding",
      "other"};
  static constexpr std::array<int, 13> codes = {200, 400, 401, 403, 404, 405, 411,
                                                413, 415, 500, 502, 503, 0};
  enum class auth_failure : uint8_t { token, address, forwarded_for };

  void request(uint64_t body_bytes);
  void response(int status);
  void accepted(uint64_t n) { add(accepted_, n); }
  void dead_lettered(uint64_t n) { add(dead_lettered_, n); }
  void undelivered(uint64_t n) { add(undelivered_, n); }
  void invalid(std::string_view reason, uint64_t n = 1);
  void denied(auth_failure why) { add(auth_[static_cast<size_t>(why)], 1); }
  void sink_retry() { add(sink_retry_, 1); }
  void sink_error() { add(sink_error_, 1); }
  void sink_refused() { add(sink_refused_, 1); }
  void inflight_rejected() { add(inflight_rejected_, 1); }

  uint64_t requests() const { return get(requests_); }
  uint64_t accepted() const { return get(accepted_); }
  uint64_t dead_lettered() const { return get(dead_lettered_); }
  uint64_t undelivered() const { return get(undelivered_); }
  uint64_t invalid_count(std::string_view reason) const;
  uint64_t responses(int status) const;
  uint64_t denied_count(auth_failure why) const { return get(auth_[static_cast<size_t>(why)]); }
  uint64_t sink_retries() const { return get(sink_retry_); }
  uint64_t sink_errors() const { return get(sink_error_); }
  uint64_t sink_refusals() const { return get(sink_refused_); }
  uint64_t inflight_rejections() const { return get(inflight_rejected_); }

  // Appends the counters in the Prometheus text exposition format (metric prefix
  // `sqsrelay_ingest_`), with `inflight_bytes` as a gauge.
  void render(std::string& out, uint64_t inflight_bytes) const;

  // Several listeners in one exposition: each family once (one HELP/TYPE), one sample per
  // listener, labelled `listener="<name>"` (escaped) before the family's own labels.
  struct labeled {
    std::string_view listener;  // empty: no listener label
    const ingest_probe* probe = nullptr;
    uint64_t inflight_bytes = 0;
  };
  static void render(std::string& out, std::span<const labeled> listeners);

 private:
  using counter = std::atomic<uint64_t>;
  static void add(counter& c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }
  static uint64_t get(const counter& c) { return c.load(std::memory_order_relaxed); }
  counter requests_{0}, bytes_{0}, accepted_{0}, dead_lettered_{0}, undelivered_{0},
      sink_retry_{0}, sink_error_{0}, sink_refused_{0}, inflight_rejected_{0};
  std::array<counter, reasons.size()> invalid_{};
  std::array<counter, codes.size()> responses_{};
  std::array<counter, 3> auth_{};
};

}  // namespace sqsrelay::sources
