// Adaptive concurrency for SendMessageBatch calls in flight (AIMD with a latency guard,
// the idea of Vector's adaptive request concurrency and TCP congestion control):
//  - slow start: +1 per good reply (the window doubles per round trip) until the first
//    congestion signal, so 20 ms of latency reaches ~100 in flight within a few RTTs;
//  - then additive increase: +1/window per good reply (+1 per round trip);
//  - growth only while there is backlog (a full window with work waiting) and while the
//    smoothed latency stays under tolerance x the lowest latency seen + slack: when more
//    in flight only queues at the server, the window stops growing;
//  - multiplicative decrease on throttling, 5xx, timeouts and transport errors, at most
//    once per smoothed round trip (a burst of failures from one window counts once).
// Not thread-safe: the sender drives it from its executor.
#pragma once

#include <chrono>
#include <cstdint>

namespace sqsrelay::pipeline {

struct window_options {
  uint32_t initial = 8;
  uint32_t min = 1;
  uint32_t max = 256;
  double latency_tolerance = 2.0;
  std::chrono::microseconds latency_slack{std::chrono::milliseconds(5)};
  double decrease = 0.5;
  // The lowest latency seen is forgotten after this long, so a route that got slower for
  // good (or a cold start that was unusually fast) does not freeze the window.
  std::chrono::seconds min_latency_lifetime{30};
};

class concurrency_window {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit concurrency_window(window_options o);

  // Requests allowed in flight now.
  uint32_t limit() const { return static_cast<uint32_t>(cwnd_); }

  // A request completed without a congestion signal after `latency`. `backlog`: work was
  // waiting for a free slot (growing an idle window would only add risk).
  void on_success(std::chrono::microseconds latency, bool backlog, time_point now);

  // Throttling, 5xx, timeout or transport failure.
  void on_congestion(time_point now);

  std::chrono::microseconds smoothed_latency() const { return srtt_; }
  std::chrono::microseconds min_latency() const { return min_rtt_; }
  bool slow_start() const { return slow_start_; }

 private:
  bool latency_ok() const;

  window_options o_;
  double cwnd_;
  bool slow_start_ = true;
  std::chrono::microseconds srtt_{0};
  std::chrono::microseconds min_rtt_{0};
  time_point min_rtt_at_{};
  time_point last_decrease_{};
  bool decreased_ = false;
};

}  // namespace sqsrelay::pipeline
