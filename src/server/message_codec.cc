#include "server/message_codec.h"

#include <bit>
#include <cstring>

#include "server/store_format.h"

namespace sqsrelay::server {

// The store format is little-endian; so are the hosts we build for, so a memcpy is the
// encoding (checked at compile time).
static_assert(std::endian::native == std::endian::little, "store format assumes little-endian");

void put_u16(std::string& out, uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); }
void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

namespace {
void put_str16(std::string& out, std::string_view s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}
void put_str32(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
void put_digest(std::string& out, const std::optional<md5_digest>& d) {
  md5_digest z{};
  const auto& v = d ? *d : z;
  out.append(reinterpret_cast<const char*>(v.data()), v.size());
}
}  // namespace

size_t encode_message(std::string& out, const prepared_message& m, uint64_t seq,
                      int64_t sent_ms, std::string_view sender_id) {
  size_t start = out.size();
  put_u64(out, seq);
  out.append(reinterpret_cast<const char*>(m.id.data()), m.id.size());
  put_u64(out, static_cast<uint64_t>(sent_ms));
  put_u32(out, static_cast<uint32_t>(m.delay_seconds));
  uint8_t flags = (m.md5_attributes ? store_format::flag_has_attributes : 0) |
                  (m.md5_system ? store_format::flag_has_system_attributes : 0) |
                  (m.group_id.empty() ? 0 : store_format::flag_has_group_id);
  out.push_back(static_cast<char>(flags));
  put_digest(out, m.md5_body);
  put_digest(out, m.md5_attributes);
  put_digest(out, m.md5_system);
  put_str16(out, sender_id);
  put_str16(out, m.trace_header);
  put_str32(out, m.body);
  out.push_back(static_cast<char>(m.attributes.size()));
  for (const auto& a : m.attributes) {
    put_str16(out, a.name);
    put_str16(out, a.data_type);
    out.push_back(a.binary ? 1 : 0);
    put_str32(out, a.value);
  }
  if (!m.group_id.empty()) put_str16(out, m.group_id);
  return out.size() - start;
}

bool byte_reader::bytes(size_t n, std::string_view& v) {
  if (data_.size() - pos_ < n) return false;
  v = data_.substr(pos_, n);
  pos_ += n;
  return true;
}
bool byte_reader::u8(uint8_t& v) {
  std::string_view b;
  if (!bytes(1, b)) return false;
  v = static_cast<uint8_t>(b[0]);
  return true;
}
bool byte_reader::u16(uint16_t& v) {
  std::string_view b;
  if (!bytes(2, b)) return false;
  v = static_cast<uint16_t>(static_cast<uint8_t>(b[0]) | (static_cast<uint8_t>(b[1]) << 8));
  return true;
}
bool byte_reader::u32(uint32_t& v) {
  std::string_view b;
  if (!bytes(4, b)) return false;
  v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  return true;
}
bool byte_reader::u64(uint64_t& v) {
  std::string_view b;
  if (!bytes(8, b)) return false;
  v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  return true;
}

namespace {
bool read_digest(byte_reader& r, md5_digest& d) {
  std::string_view b;
  if (!r.bytes(16, b)) return false;
  std::memcpy(d.data(), b.data(), 16);
  return true;
}
bool read_str16(byte_reader& r, std::string_view& s) {
  uint16_t n;
  return r.u16(n) && r.bytes(n, s);
}
bool read_str32(byte_reader& r, std::string_view& s) {
  uint32_t n;
  return r.u32(n) && r.bytes(n, s);
}
}  // namespace

std::optional<message_view> decode_message(std::string_view blob) {
  byte_reader r(blob);
  message_view m;
  std::string_view id;
  uint64_t sent = 0;
  uint8_t flags = 0;
  md5_digest attrs{}, sys{};
  if (!r.u64(m.seq) || !r.bytes(16, id) || !r.u64(sent) || !r.u32(m.delay_seconds) ||
      !r.u8(flags) || !read_digest(r, m.md5_body) || !read_digest(r, attrs) ||
      !read_digest(r, sys) || !read_str16(r, m.sender_id) || !read_str16(r, m.trace_header) ||
      !read_str32(r, m.body))
    return std::nullopt;
  std::memcpy(m.id.data(), id.data(), 16);
  m.sent_ms = static_cast<int64_t>(sent);
  if (flags & store_format::flag_has_attributes) m.md5_attributes = attrs;
  if (flags & store_format::flag_has_system_attributes) m.md5_system = sys;
  uint8_t count = 0;
  if (!r.u8(count)) return std::nullopt;
  m.attributes.resize(count);
  for (auto& a : m.attributes) {
    uint8_t binary = 0;
    if (!read_str16(r, a.name) || !read_str16(r, a.data_type) || !r.u8(binary) ||
        !read_str32(r, a.value))
      return std::nullopt;
    a.binary = binary != 0;
  }
  if ((flags & store_format::flag_has_group_id) && !read_str16(r, m.group_id)) return std::nullopt;
  if (!r.done()) return std::nullopt;
  return m;
}

}  // namespace sqsrelay::server
