// Fuzzes the message blob decoder that replay and receive run on bytes read back from the
// WAL: decode_message must never crash on arbitrary bytes, and whatever it accepts must
// survive encode -> decode unchanged (the blob is the only copy of a message).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/message_codec.h"

namespace server = sqsrelay::server;

namespace {

bool same_attributes(const server::message_view& a, const server::message_view& b) {
  if (a.attributes.size() != b.attributes.size()) return false;
  for (size_t i = 0; i < a.attributes.size(); ++i) {
    const auto& x = a.attributes[i];
    const auto& y = b.attributes[i];
    if (x.name != y.name || x.data_type != y.data_type || x.value != y.value ||
        x.binary != y.binary)
      return false;
  }
  return true;
}

bool same(const server::message_view& a, const server::message_view& b) {
  return a.seq == b.seq && a.id == b.id && a.sent_ms == b.sent_ms &&
         a.delay_seconds == b.delay_seconds && a.md5_body == b.md5_body &&
         a.md5_attributes == b.md5_attributes && a.md5_system == b.md5_system &&
         a.sender_id == b.sender_id && a.trace_header == b.trace_header && a.body == b.body &&
         same_attributes(a, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  auto m = server::decode_message(blob);
  if (!m) return 0;

  server::prepared_message p;
  p.body = m->body;
  p.attributes = m->attributes;
  p.trace_header = m->trace_header;
  p.delay_seconds = static_cast<int>(m->delay_seconds);
  p.id = m->id;
  p.md5_body = m->md5_body;
  p.md5_attributes = m->md5_attributes;
  p.md5_system = m->md5_system;
  std::string out;
  const size_t n = server::encode_message(out, p, m->seq, m->sent_ms, m->sender_id);
  if (n != out.size()) std::abort();
  auto again = server::decode_message(out);
  if (!again || !same(*m, *again)) std::abort();  // round trip lost or changed something
  return 0;
}
