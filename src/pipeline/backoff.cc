#include "pipeline/backoff.h"

#include <algorithm>

namespace sqsrelay::pipeline {

std::chrono::microseconds backoff_ceiling(const backoff_policy& p, uint32_t attempt) {
  if (attempt == 0) attempt = 1;
  // 2^(attempt-1) overflows long before it matters: past 2^30 the cap always wins.
  uint32_t shift = std::min<uint32_t>(attempt - 1, 30);
  auto base = std::max<int64_t>(p.base.count(), 0);
  int64_t cap = std::max<int64_t>(p.cap.count(), 0);
  int64_t ceiling = base > (cap >> shift) ? cap : std::min(cap, base << shift);
  return std::chrono::microseconds(ceiling);
}

std::chrono::microseconds backoff_delay(const backoff_policy& p, uint32_t attempt,
                                        random_source& rnd) {
  auto ceiling = static_cast<uint64_t>(backoff_ceiling(p, attempt).count());
  if (ceiling == 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<int64_t>(rnd.next() % (ceiling + 1)));
}

}  // namespace sqsrelay::pipeline
