#include "pipeline/window.h"

#include <algorithm>

namespace sqsrelay::pipeline {

concurrency_window::concurrency_window(window_options o) : o_(o) {
  o_.min = std::max<uint32_t>(o_.min, 1);
  o_.max = std::max(o_.max, o_.min);
  cwnd_ = std::clamp<double>(o_.initial, o_.min, o_.max);
}

bool concurrency_window::latency_ok() const {
  auto bound = std::chrono::microseconds(
      static_cast<int64_t>(static_cast<double>(min_rtt_.count()) * o_.latency_tolerance) +
      o_.latency_slack.count());
  return srtt_ <= bound;
}

void concurrency_window::on_success(std::chrono::microseconds latency, bool backlog,
                                    time_point now) {
  if (latency.count() < 0) latency = std::chrono::microseconds(0);
  bool fresh = min_rtt_.count() == 0 || now - min_rtt_at_ > o_.min_latency_lifetime;
  if (fresh || latency <= min_rtt_) {
    min_rtt_ = latency;
    min_rtt_at_ = now;
  }
  // EWMA with weight 1/8, as TCP's SRTT.
  srtt_ = srtt_.count() == 0 ? latency : (srtt_ * 7 + latency) / 8;
  if (!backlog) return;
  if (!latency_ok()) {
    slow_start_ = false;  // latency is rising: growth from here on is careful
    return;
  }
  double step = slow_start_ ? 1.0 : 1.0 / cwnd_;
  cwnd_ = std::min<double>(cwnd_ + step, o_.max);
}

void concurrency_window::on_congestion(time_point now) {
  if (decreased_ && now - last_decrease_ < std::max(srtt_, std::chrono::microseconds(1000)))
    return;
  decreased_ = true;
  last_decrease_ = now;
  slow_start_ = false;
  cwnd_ = std::max<double>(o_.min, cwnd_ * o_.decrease);
}

}  // namespace sqsrelay::pipeline
