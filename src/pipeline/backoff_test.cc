#include "pipeline/backoff.h"

#include <gtest/gtest.h>

namespace sqsrelay::pipeline {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(Backoff, CeilingDoublesPerAttemptUpToTheCap) {
  backoff_policy p{milliseconds(10), milliseconds(300)};
  EXPECT_EQ(backoff_ceiling(p, 1), milliseconds(10));
  EXPECT_EQ(backoff_ceiling(p, 2), milliseconds(20));
  EXPECT_EQ(backoff_ceiling(p, 5), milliseconds(160));
  EXPECT_EQ(backoff_ceiling(p, 6), milliseconds(300));
  EXPECT_EQ(backoff_ceiling(p, 1000), milliseconds(300));  // no overflow
}

TEST(Backoff, FullJitterStaysWithinZeroAndTheCeilingAndSpreadsOverIt) {
  backoff_policy p{milliseconds(10), milliseconds(300)};
  random_source rnd(42);
  for (uint32_t attempt = 1; attempt <= 8; ++attempt) {
    auto ceiling = backoff_ceiling(p, attempt);
    microseconds lo = ceiling, hi{0};
    for (int i = 0; i < 2000; ++i) {
      auto d = backoff_delay(p, attempt, rnd);
      ASSERT_GE(d.count(), 0);
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    EXPECT_LT(lo, ceiling / 10) << attempt;  // full jitter reaches near zero
    EXPECT_GT(hi, ceiling * 9 / 10) << attempt;
  }
}

TEST(Backoff, ZeroBaseMeansNoWait) {
  backoff_policy p{microseconds(0), milliseconds(100)};
  random_source rnd(1);
  EXPECT_EQ(backoff_delay(p, 3, rnd), microseconds(0));
}

}  // namespace
}  // namespace sqsrelay::pipeline
