// Injected time sources. Production code takes a `clock&`; tests pass a `manual_clock`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sqsrelay {

// Wall-clock time (for timestamps that leave the process) and a monotonic time (for
// deadlines). Implementations must be thread-safe.
class clock {
 public:
  virtual ~clock() = default;
  virtual std::chrono::system_clock::time_point wall() const = 0;
  virtual std::chrono::steady_clock::time_point steady() const = 0;

  // Milliseconds since the Unix epoch: the unit SQS uses for message timestamps.
  int64_t wall_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(wall().time_since_epoch())
        .count();
  }
};

class system_clock final : public clock {
 public:
  std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::now();
  }
  static system_clock& instance() {
    static system_clock c;
    return c;
  }
};

// A clock that moves only when told to; both time lines advance together.
class manual_clock final : public clock {
 public:
  explicit manual_clock(std::chrono::system_clock::time_point start)
      : wall_ns_(start.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::system_clock::duration(wall_ns_.load()));
  }
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(steady_ns_.load()));
  }
  void advance(std::chrono::nanoseconds d) {
    wall_ns_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d).count();
    steady_ns_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d).count();
  }

 private:
  std::atomic<std::chrono::system_clock::rep> wall_ns_;
  std::atomic<std::chrono::steady_clock::rep> steady_ns_{0};
};

}  // namespace sqsrelay
