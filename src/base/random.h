// Injected randomness: message ids, receipt-handle nonces, request ids.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace sqsrelay {

// Thread-safe source of random 64-bit values. Tests seed it for reproducibility.
class random_source {
 public:
  explicit random_source(uint64_t seed = std::random_device{}()) : gen_(seed) {}
  uint64_t next() {
    std::lock_guard lock(mu_);
    return gen_();
  }
  std::array<uint8_t, 16> next16() {
    std::lock_guard lock(mu_);
    std::array<uint8_t, 16> out;
    uint64_t a = gen_(), b = gen_();
    for (int i = 0; i < 8; ++i) {
      out[i] = static_cast<uint8_t>(a >> (8 * i));
      out[8 + i] = static_cast<uint8_t>(b >> (8 * i));
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::mt19937_64 gen_;
};

// Formats 16 bytes as an RFC 4122 version-4 UUID string (SQS message ids look like this).
std::string format_uuid(std::array<uint8_t, 16> bytes);
// The same into a caller's buffer of 36 characters (no allocation; hot paths).
void format_uuid_to(std::array<uint8_t, 16> bytes, char* out);

}  // namespace sqsrelay
