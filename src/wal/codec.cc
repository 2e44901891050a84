#include "wal/codec.h"

#include <cinttypes>
#include <cstdio>

#include "base/hash.h"

namespace sqsrelay::wal {

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
    return header_check::bad;
  }
  if (unmask_crc(get_u32(bytes.data() + 16)) != crc32c(bytes.data(), 16)) {
    return header_check::bad;
  }
  if (get_u32(bytes.data() + 8) > format_version) return header_check::newer_version;
  if (get_u32(bytes.data() + 8) != format_version) return header_check::bad;
  return get_u32(bytes.data() + 12) == segment ? header_check::ok : header_check::bad;
}

bool is_torn_segment_header(std::span<const char> bytes, uint32_t segment) {
  if (bytes.size() >= segment_header_size) return false;
  segment_header expected = encode_segment_header(segment);
  return std::memcmp(bytes.data(), expected.data(), bytes.size()) == 0;
}

uint32_t record_crc(std::span<const char> type_and_payload) {
  return mask_crc(crc32c(type_and_payload.data(), type_and_payload.size()));
}

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
