#include "wal/codec.h"

#include <cinttypes>
#include <cstdio>

#include "base/hash.h"

namespace sqsrelay::wal {
namespace {

constexpr uint32_t crc32c_poly = 0x82f63b78u;  // Castagnoli, bit-reflected

// a·b mod the CRC polynomial over GF(2), in the reflected bit order of the CRC register
// (the top bit is x^0).
constexpr uint32_t multiply_mod_poly(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int bit = 31; bit >= 0; --bit) {
    product ^= b & (0u - ((a >> bit) & 1u));
    b = (b >> 1) ^ (crc32c_poly & (0u - (b & 1u)));
  }
  return product;
}

// x_to_8_times[k][j] = x^(8·j·256^k) mod the polynomial: shifting a crc by n bytes takes
// one multiplication per nonzero byte of n.
constexpr auto x_to_8_times = [] {
  std::array<std::array<uint32_t, 256>, 8> t{};
  uint32_t step = 1u << 23;  // x^8
  for (auto& row : t) {
    row[0] = 1u << 31;  // x^0
    for (size_t j = 1; j < row.size(); ++j) row[j] = multiply_mod_poly(row[j - 1], step);
    step = multiply_mod_poly(row[255], step);  // x^(8·256^(k+1))
  }
  return t;
}();

}  // namespace

segment_header encode_segment_header(uint32_t segment) {
  segment_header h{};
  std::memcpy(h.data(), segment_magic.data(), segment_magic.size());
  put_u32(h.data() + 8, format_version);
  put_u32(h.data() + 12, segment);
  put_u32(h.data() + 16, mask_crc(crc32c(h.data(), 16)));
  return h;
}

header_check check_segment_header(std::span<const char, segment_header_size> bytes,
                                  uint32_t segment) {
  if (std::memcmp(bytes.data(), segment_magic.data(), segment_magic.size()) != 0) {
    return header_check::damaged;
  }
  if (unmask_crc(get_u32(bytes.data() + 16)) != crc32c(bytes.data(), 16)) {
    return header_check::damaged;
  }
  if (get_u32(bytes.data() + 8) > format_version) return header_check::newer_version;
  if (get_u32(bytes.data() + 8) != format_version) return header_check::foreign;
  return get_u32(bytes.data() + 12) == segment ? header_check::ok : header_check::foreign;
}

bool is_torn_segment_header(std::span<const char> bytes, uint32_t segment) {
  if (bytes.size() >= segment_header_size) return false;
  segment_header expected = encode_segment_header(segment);
  return std::memcmp(bytes.data(), expected.data(), bytes.size()) == 0;
}

uint32_t record_crc(std::span<const char> type_and_payload) {
  return mask_crc(crc32c(type_and_payload.data(), type_and_payload.size()));
}

crc32c_shift::crc32c_shift(uint64_t bytes) : factor_(1u << 31) {  // x^0
  for (size_t k = 0; bytes != 0; bytes >>= 8, ++k) {
    if (bytes & 0xff) factor_ = multiply_mod_poly(x_to_8_times[k][bytes & 0xff], factor_);
  }
}

// crc(ab) = crc(a)·x^(8·|b|) + crc(b) mod the polynomial: the initial and final inversions
// that crc32c applies to both sides cancel (zlib's crc32_combine).
uint32_t crc32c_shift::operator()(uint32_t crc) const { return multiply_mod_poly(factor_, crc); }

void seal_record(std::span<char> record) {
  const size_t payload = record.size() - record_header_size;
  put_u32(record.data() + 4, static_cast<uint32_t>(payload));
  put_u32(record.data(), record_crc(record.subspan(record_type_offset)));
}

std::string segment_file_name(uint32_t segment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%08" PRIu32 ".log", segment);
  return buf;
}

std::optional<uint32_t> parse_segment_file_name(std::string_view name) {
  if (!name.starts_with(segment_file_prefix) || !name.ends_with(segment_file_suffix)) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(segment_file_prefix.size());
  digits.remove_suffix(segment_file_suffix.size());
  if (digits.size() < 8 || digits.size() > 10) return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  // Only the canonical spelling names a segment ("wal-000000001.log" does not).
  if (n > UINT32_MAX || segment_file_name(static_cast<uint32_t>(n)) != name) return std::nullopt;
  return static_cast<uint32_t>(n);
}

}  // namespace sqsrelay::wal
