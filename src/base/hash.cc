#include "base/hash.h"

// MD5 and SHA-256 use OpenSSL's low-level MD5_*/SHA256_* functions, deprecated in OpenSSL 3
// in favour of EVP: an EVP digest context allocates on every re-initialisation (measured: one
// malloc per hash, and 0.6 us against 0.4 us for a 200-byte body), and the server and the
// client hash every message body and every request. HMAC is built on SHA256_* here (RFC 2104)
// because OpenSSL 3's one-shot HMAC() fetches the algorithm and builds an EVP_MAC context on
// every call: ~5 us against ~1 us, once per signed request. Same implementation (OpenSSL's
// assembly) underneath.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>

#include <boost/crc.hpp>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sqsrelay {

md5_hasher::md5_hasher() : ctx_(new MD5_CTX) { MD5_Init(static_cast<MD5_CTX*>(ctx_)); }

md5_hasher::~md5_hasher() { delete static_cast<MD5_CTX*>(ctx_); }

void md5_hasher::update(const void* data, size_t n) {
  MD5_Update(static_cast<MD5_CTX*>(ctx_), data, n);
}

md5_digest md5_hasher::finish() {
  md5_digest d{};
  auto* ctx = static_cast<MD5_CTX*>(ctx_);
  MD5_Final(d.data(), ctx);
  MD5_Init(ctx);  // fresh state for the next message
  return d;
}

md5_digest md5(std::string_view data) {
  thread_local md5_hasher h;
  h.update(data);
  return h.finish();
}

sha256_digest sha256(std::string_view data) {
  sha256_digest d{};
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(d.data(), &ctx);
  return d;
}

sha256_digest hmac_sha256(std::span<const uint8_t> key, std::string_view data) {
  constexpr size_t block_size = 64;     // SHA-256's
  std::array<uint8_t, block_size> k{};  // the key, zero-padded (hashed first when longer)
  if (key.size() > block_size) {
    SHA256(key.data(), key.size(), k.data());
  } else {
    std::memcpy(k.data(), key.data(), key.size());
  }
  std::array<uint8_t, block_size> pad;
  for (size_t i = 0; i < block_size; ++i) pad[i] = k[i] ^ 0x36;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad.data(), pad.size());
  SHA256_Update(&ctx, data.data(), data.size());
  sha256_digest inner{};
  SHA256_Final(inner.data(), &ctx);
  for (size_t i = 0; i < block_size; ++i) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad.data(), pad.size());
  SHA256_Update(&ctx, inner.data(), inner.size());
  sha256_digest d{};
  SHA256_Final(d.data(), &ctx);
  // Key material (the SigV4 signing key and its derivations) must not linger on the stack.
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(pad.data(), pad.size());
  OPENSSL_cleanse(inner.data(), inner.size());
  OPENSSL_cleanse(&ctx, sizeof ctx);
  return d;
}

sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
  return hmac_sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size()), data);
}

namespace {

// Boost.CRC is byte-at-a-time; on x86-64 the crc32 instruction is ~20x faster, which matters
// because every spool and store record is checksummed on the write path.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t seed) {
  // Chaining: a CRC seeded with a previous value starts from its (un-reflected) remainder.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc(~seed);
  crc.process_bytes(data, n);
  return crc.checksum();
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const void* data, size_t n,
                                                      uint32_t seed) {
  auto p = static_cast<const unsigned char*>(data);
  uint64_t c = ~seed;
  while (n >= 8) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t seed) {
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return crc32c_hw(data, n, seed);
#endif
  return crc32c_portable(data, n, seed);
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void base64_encode_to(std::string_view data, char* out) {
  // EVP_EncodeBlock NUL-terminates: encode the whole groups in place, the last one via a
  // small buffer, so exactly 4 * ceil(n / 3) characters are written.
  const size_t whole = data.size() / 3 * 3;
  auto* dst = reinterpret_cast<unsigned char*>(out);
  const auto* src = reinterpret_cast<const unsigned char*>(data.data());
  size_t done = 0;
  if (whole > 3) {
    done = whole - 3;
    EVP_EncodeBlock(dst, src, static_cast<int>(done));
  }
  unsigned char tail[9];
  const int n = EVP_EncodeBlock(tail, src + done, static_cast<int>(data.size() - done));
  std::memcpy(dst + done / 3 * 4, tail, static_cast<size_t>(n));
}

bool base64_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  out.assign(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sqsrelay
