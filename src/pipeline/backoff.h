// Capped exponential backoff with full jitter (the AWS Architecture Blog's "Exponential
// Backoff And Jitter"): before retry n (n = 1 after the first failed attempt) wait a uniform
// random time in [0, min(cap, base * 2^(n-1))]. Spreads retries of many failed entries so
// they do not come back as one burst.
#pragma once

#include <chrono>
#include <cstdint>

#include "base/random.h"

namespace sqsrelay::pipeline {

struct backoff_policy {
  std::chrono::microseconds base{std::chrono::milliseconds(25)};
  std::chrono::microseconds cap{std::chrono::seconds(5)};
};

// The upper bound of the wait before retry `attempt` (>= 1).
std::chrono::microseconds backoff_ceiling(const backoff_policy& p, uint32_t attempt);

// A uniformly drawn wait in [0, backoff_ceiling(p, attempt)].
std::chrono::microseconds backoff_delay(const backoff_policy& p, uint32_t attempt,
                                        random_source& rnd);

}  // namespace sqsrelay::pipeline
