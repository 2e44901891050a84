#include "app/spool_record.h"

#include <cstdint>
#include <cstring>

namespace sqsrelay::app {

namespace {

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, sizeof(T));
}

template <class T>
void put_bytes(std::string& out, std::string_view s) {
  put<T>(out, static_cast<T>(s.size()));
  out.append(s);
}

struct reader {
  std::string_view in;
  bool ok = true;

  template <class T>
  T get() {
    if (in.size() < sizeof(T)) {
      ok = false;
      return 0;
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      v = static_cast<T>(v | static_cast<T>(static_cast<T>(static_cast<uint8_t>(in[i])) << (8 * i)));
    in.remove_prefix(sizeof(T));
    return v;
  }
  template <class T>
  std::string_view bytes() {
    size_t n = get<T>();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    auto s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

void encode_spool_record(std::string& out, const spool_message_view& m) {
  put<uint8_t>(out, 1);
  put<uint8_t>(out, m.flags);
  put_bytes<uint16_t>(out, m.endpoint);
  put_bytes<uint16_t>(out, m.queue);
  put_bytes<uint32_t>(out, m.body);
  put<uint8_t>(out, static_cast<uint8_t>(m.attributes.size()));
  for (const auto& a : m.attributes) {
    put_bytes<uint16_t>(out, a.name);
    put_bytes<uint16_t>(out, a.data_type);
    put_bytes<uint32_t>(out, a.value);
  }
  put_bytes<uint16_t>(out, m.group_id);
  put_bytes<uint16_t>(out, m.dedup_id);
}

std::optional<spool_message_view> decode_spool_record(std::string_view rec) {
  reader r{rec};
  if (r.get<uint8_t>() != 1 || !r.ok) return std::nullopt;
  spool_message_view m;
  m.flags = r.get<uint8_t>();
  m.endpoint = r.bytes<uint16_t>();
  m.queue = r.bytes<uint16_t>();
  m.body = r.bytes<uint32_t>();
  size_t n = r.get<uint8_t>();
  m.attributes.reserve(n);
  for (size_t i = 0; i < n && r.ok; ++i) {
    sqs::attribute_view a;
    a.name = r.bytes<uint16_t>();
    a.data_type = r.bytes<uint16_t>();
    a.value = r.bytes<uint32_t>();
    a.binary = a.data_type.substr(0, 6) == "Binary";
    m.attributes.push_back(a);
  }
  m.group_id = r.bytes<uint16_t>();
  m.dedup_id = r.bytes<uint16_t>();
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return m;
}

}  // namespace sqsrelay::app
