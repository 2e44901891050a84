// Digests used on the wire and on disk. Thin wrappers over OpenSSL (MD5 for SQS's
// MD5OfMessageBody, SHA-256/HMAC for SigV4) plus CRC32C for on-disk records.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sqsrelay {

using md5_digest = std::array<uint8_t, 16>;
using sha256_digest = std::array<uint8_t, 32>;

// Incremental MD5; reuses one OpenSSL context per object.
class md5_hasher {
 public:
  md5_hasher();
  ~md5_hasher();
  md5_hasher(const md5_hasher&) = delete;
  md5_hasher& operator=(const md5_hasher&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  md5_digest finish();  // also resets for the next message

 private:
  void* ctx_;
};

md5_digest md5(std::string_view data);
sha256_digest sha256(std::string_view data);
sha256_digest hmac_sha256(std::string_view key, std::string_view data);
sha256_digest hmac_sha256(std::span<const uint8_t> key, std::string_view data);

// CRC32C (Castagnoli). Uses the SSE4.2 instruction when the CPU has it. `seed` is a
// previous result, to checksum data in pieces: crc32c(b, nb, crc32c(a, na)) == crc32c(ab).
uint32_t crc32c(const void* data, size_t n, uint32_t seed = 0);

std::string to_hex(std::span<const uint8_t> bytes);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& a) {
  return to_hex(std::span<const uint8_t>(a.data(), a.size()));
}

std::string base64_encode(std::string_view data);
// The same into `out`, which must hold 4 * ((data.size() + 2) / 3) characters (no allocation).
void base64_encode_to(std::string_view data, char* out);
// Empty optional-like: returns false on malformed input.
bool base64_decode(std::string_view in, std::string& out);

// Compares in time that depends only on the lengths, never on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace sqsrelay
