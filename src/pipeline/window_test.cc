#include "pipeline/window.h"

#include <gtest/gtest.h>

namespace sqsrelay::pipeline {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using tp = std::chrono::steady_clock::time_point;

window_options opts() {
  window_options o;
  o.initial = 4;
  o.min = 1;
  o.max = 200;
  return o;
}

TEST(Window, SlowStartGrowsOnePerReplyWithBacklogOnly) {
  concurrency_window w(opts());
  tp now{};
  EXPECT_EQ(w.limit(), 4u);
  for (int i = 0; i < 10; ++i) w.on_success(milliseconds(20), /*backlog=*/false, now);
  EXPECT_EQ(w.limit(), 4u);
  for (int i = 0; i < 100; ++i) w.on_success(milliseconds(20), true, now);
  EXPECT_EQ(w.limit(), 104u);  // ~100 in flight after a few round trips at 20 ms
  for (int i = 0; i < 500; ++i) w.on_success(milliseconds(20), true, now);
  EXPECT_EQ(w.limit(), 200u);  // capped
}

TEST(Window, HalvesOncePerRoundTripOnCongestionThenGrowsAdditively) {
  concurrency_window w(opts());
  tp now{};
  for (int i = 0; i < 60; ++i) w.on_success(milliseconds(20), true, now);
  ASSERT_EQ(w.limit(), 64u);
  w.on_congestion(now);
  EXPECT_EQ(w.limit(), 32u);
  w.on_congestion(now + milliseconds(1));  // same round trip: one decrease
  EXPECT_EQ(w.limit(), 32u);
  w.on_congestion(now + milliseconds(25));
  EXPECT_EQ(w.limit(), 16u);
  EXPECT_FALSE(w.slow_start());
  for (int i = 0; i < 17; ++i) w.on_success(milliseconds(20), true, now + milliseconds(30));
  EXPECT_EQ(w.limit(), 17u);  // +1 per window of replies
  for (int i = 0; i < 20; ++i) w.on_congestion(now + milliseconds(100 + 50 * i));
  EXPECT_EQ(w.limit(), 1u);  // never below min
}

TEST(Window, StopsGrowingWhenLatencyRisesPastTolerance) {
  window_options o = opts();
  o.latency_slack = milliseconds(1);
  concurrency_window w(o);
  tp now{};
  for (int i = 0; i < 10; ++i) w.on_success(milliseconds(2), true, now);
  uint32_t before = w.limit();
  for (int i = 0; i < 100; ++i) w.on_success(milliseconds(20), true, now);  // 2*2+1 = 5 ms
  EXPECT_LE(w.limit(), before + 2);  // the EWMA crosses the bound within a couple of replies
  EXPECT_FALSE(w.slow_start());
  EXPECT_EQ(w.min_latency(), milliseconds(2));
}

}  // namespace
}  // namespace sqsrelay::pipeline
