// Fault injection on the SQS surface of the embedded server: latency (fixed and jittered),
// throttling errors, 5xx, connections dropped before or after the request took effect, and
// partial Failed[] entries in batch answers, each at a given rate, for every queue or one.
// It lets sqsrelay's sender, and anybody's client, exercise its retry paths end to end.
//
// Rules are written as specs, one per rule: comma-separated key=value items
//   queue=NAME      the rule applies to this queue only (default: every request)
//   latency=10ms    fixed delay before the request is handled (units us, ms, s; bare = ms)
//   jitter=5ms      extra uniform random delay in [0, jitter]
//   throttle=0.1    fraction of requests answered 400 RequestThrottled
//   error5xx=0.05   fraction answered 500 InternalFailure
//   drop=0.01       fraction whose connection is closed unanswered, before taking effect
//   drop_after=0.01 fraction closed unanswered after taking effect (an ambiguous outcome)
//   partial=0.2     fraction of batch entries answered in Failed[] (SenderFault=false,
//                   Code InternalError) without taking effect
//   seed=N          seeds the random stream (per thread: N plus the thread's ordinal)
// A queue rule takes precedence over the catch-all rule for requests to that queue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sqsrelay::server {

struct fault_rule {
  std::string queue;  // empty: every request
  std::chrono::microseconds latency{0};
  std::chrono::microseconds jitter{0};
  double throttle = 0, error5xx = 0, drop = 0, drop_after = 0, partial = 0;
  std::optional<uint64_t> seed;
};

// Parses one spec; on failure returns nullopt and sets `error` (which item, why).
std::optional<fault_rule> parse_fault_rule(std::string_view spec, std::string& error);
// Parses newline-separated specs (blank lines and '#' comments skipped).
std::optional<std::vector<fault_rule>> parse_fault_rules(std::string_view text,
                                                          std::string& error);
// The spec text of a rule, as parse_fault_rule reads it.
std::string format_fault_rule(const fault_rule& r);

struct fault_stats {
  std::atomic<uint64_t> delayed{0}, throttled{0}, errors5xx{0}, dropped{0}, dropped_after{0},
      failed_entries{0};
};

enum class fault_action { none, throttle, error5xx, drop, drop_after };

struct fault_decision {
  std::chrono::microseconds delay{0};
  fault_action action = fault_action::none;
  double partial = 0;  // rate at which this request's batch entries fail
};

class fault_injector {
 public:
  // Replaces the rules (thread-safe; requests in progress keep the rules they started with).
  void set(std::vector<fault_rule> rules);
  bool active() const { return active_.load(std::memory_order_relaxed); }
  std::vector<fault_rule> rules() const;

  // Draws the faults for one request to `queue` (its name; empty when the request names none).
  fault_decision decide(std::string_view queue);
  // Draws whether one batch entry fails, at `rate`.
  bool fail_entry(double rate);

  fault_stats& stats() { return stats_; }
  const fault_stats& stats() const { return stats_; }

 private:
  struct rule_set;
  double uniform();  // [0, 1) from this thread's stream

  std::atomic<bool> active_{false};
  std::atomic<std::shared_ptr<const rule_set>> rules_;
  std::atomic<uint64_t> generation_{0};
  fault_stats stats_;
};

}  // namespace sqsrelay::server
