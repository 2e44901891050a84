#include "wal/scanner.h"

#include "wal/codec.h"

namespace sqsrelay::wal {
namespace {

constexpr uint64_t npos = UINT64_MAX;

class scanner {
 public:
  explicit scanner(std::span<const char> body)
      : body_(body), budget_(32 * body.size() + (1u << 20)) {}

  // Payload length of an intact record at `pos`, or npos.
  uint64_t intact_at(uint64_t pos) {
    const uint64_t len = length_at(pos);
    if (len == npos || len + 1 > budget_) return npos;
    budget_ -= len + 1;
    auto covered = body_.subspan(pos + record_type_offset, len + 1);  // type + payload
    return get_u32(body_.data() + pos) == record_crc(covered) ? len : npos;
  }

  // The next intact record after damage at `bad`, or npos: where the damaged record's
  // length points, else the first later byte where one starts.
  uint64_t resync(uint64_t bad) {
    if (uint64_t len = length_at(bad); len != npos) {
      const uint64_t skip = bad + record_header_size + len;
      if (skip < body_.size() && intact_at(skip) != npos) return skip;
    }
    for (uint64_t p = bad + 1; p < body_.size() && budget_ > 0; ++p) {
      if (plausible_at(p) && intact_at(p) != npos) return p;
    }
    return npos;
  }

 private:
  // The length field at `pos` if a header fits there and the payload it announces too.
  uint64_t length_at(uint64_t pos) const {
    if (body_.size() - pos < record_header_size) return npos;
    const uint64_t len = get_u32(body_.data() + pos + 4);
    return body_.size() - pos - record_header_size < len ? npos : len;
  }

  // Cheap filter for resync candidates: the length fits, and the record is followed by the
  // end of the body (or a partial header) or by a header whose length fits as well. Random
  // bytes rarely pass both, so the checksum budget goes to likely positions. The price: an
  // intact record directly followed by more damage is missed by the byte scan.
  bool plausible_at(uint64_t pos) const {
    const uint64_t len = length_at(pos);
    if (len == npos) return false;
    const uint64_t next = pos + record_header_size + len;
    return body_.size() - next < record_header_size || length_at(next) != npos;
  }

  std::span<const char> body_;
  uint64_t budget_;  // checksum bytes left; bounds the work on a garbage-filled body
};

}  // namespace

scan_result scan_records(std::span<const char> body, uint64_t base,
                         const std::function<void(const scanned_record&)>& visit) {
  scanner s(body);
  scan_result r;
  uint64_t pos = 0;
  while (pos < body.size()) {
    if (uint64_t len = s.intact_at(pos); len != npos) {
      const char* h = body.data() + pos;
      visit({static_cast<uint8_t>(h[record_type_offset]),
             body.subspan(pos + record_header_size, len), base + pos + record_header_size});
      ++r.records;
      pos += record_header_size + len;
      continue;
    }
    uint64_t next = s.resync(pos);
    if (next == npos) break;
    ++r.corrupt_records;
    r.skipped_bytes += next - pos;
    pos = next;
  }
  r.valid_end = base + pos;
  r.tail_bytes = body.size() - pos;
  return r;
}

}  // namespace sqsrelay::wal
