#include "wal/scanner.h"

#include <cstring>
#include <vector>

#include "base/hash.h"
#include "wal/codec.h"

namespace sqsrelay::wal {
namespace {

constexpr uint64_t npos = UINT64_MAX;

// Checksums of ranges of one body in time that does not grow with the range: resync tries
// every byte as a record start, and in garbage many of them announce a long record, so
// checksumming each candidate's whole length would be quadratic. Keeps crc32c of the body's
// prefixes at multiples of `stride` (one pass over the body in all, made as far as needed);
// a range's crc follows from the prefix crcs at its two ends, each at most `stride` bytes
// past a kept one. Memory: 4 bytes per `stride` bytes scanned.
class range_crc {
 public:
  explicit range_crc(std::span<const char> body) : body_(body) {}

  // crc32c(body[begin, end)).
  uint32_t of(uint64_t begin, uint64_t end) {
    if (end - begin <= 2 * stride) return crc32c(body_.data() + begin, end - begin);
    if (end - begin != shift_bytes_) {  // garbage of one repeated byte repeats lengths too
      shift_bytes_ = end - begin;
      shift_ = crc32c_shift(shift_bytes_);
    }
    return prefix(end) ^ shift_(prefix(begin));
  }

 private:
  static constexpr uint64_t stride = 256;

  // crc32c(body[0, end)).
  uint32_t prefix(uint64_t end) {
    const uint64_t i = end / stride;
    while (marks_.size() <= i) {
      const uint64_t from = (marks_.size() - 1) * stride;
      marks_.push_back(crc32c(body_.data() + from, stride, marks_.back()));
    }
    return crc32c(body_.data() + i * stride, end - i * stride, marks_[i]);
  }

  std::span<const char> body_;
  std::vector<uint32_t> marks_{0};  // marks_[i] = crc32c(body[0, i * stride))
  uint64_t shift_bytes_ = 0;        // the last range length, and its shift
  crc32c_shift shift_{0};
};

class scanner {
 public:
  explicit scanner(std::span<const char> body) : body_(body), crc_(body) {}

  // Payload length of an intact record at `pos`, or npos.
  uint64_t intact_at(uint64_t pos) {
    const uint64_t len = length_at(pos);
    if (len == npos) return npos;
    const uint64_t covered = pos + record_type_offset;  // type + payload
    const uint32_t crc = crc_.of(covered, covered + 1 + len);
    return get_u32(body_.data() + pos) == mask_crc(crc) ? len : npos;
  }

  // The first intact record starting after the damaged one at `bad` and before `end`, or
  // npos. Where the damaged record's length field points proves nothing (it may be the
  // damaged field, and then jumping there would drop the intact records in between), so
  // every byte is tried.
  uint64_t resync(uint64_t bad, uint64_t end) {
    for (uint64_t p = bad + 1; p < end && body_.size() - p >= record_header_size; ++p) {
      if (intact_at(p) != npos) return p;
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

  std::span<const char> body_;
  range_crc crc_;
};

// One past the last byte that is not zero (0 if all are).
uint64_t end_of_data(std::span<const char> body) {
  uint64_t end = body.size();
  while (end >= 8) {
    uint64_t word;
    std::memcpy(&word, body.data() + end - 8, 8);
    if (word != 0) break;
    end -= 8;
  }
  while (end > 0 && body[end - 1] == 0) --end;
  return end;
}

}  // namespace

scan_result scan_records(std::span<const char> body, uint64_t base,
                         const std::function<void(const scanned_record&)>& visit) {
  scanner s(body);
  scan_result r;
  const uint64_t data_end = end_of_data(body);
  uint64_t pos = 0;
  while (pos < data_end) {
    if (uint64_t len = s.intact_at(pos); len != npos) {
      const char* h = body.data() + pos;
      visit({static_cast<uint8_t>(h[record_type_offset]),
             body.subspan(pos + record_header_size, len), base + pos + record_header_size});
      ++r.records;
      pos += record_header_size + len;
      continue;
    }
    uint64_t next = s.resync(pos, data_end);
    if (next == npos) break;
    ++r.corrupt_records;
    r.skipped_bytes += next - pos;
    pos = next;
  }
  r.valid_end = base + pos;
  if (pos >= data_end) {
    r.zero_bytes = body.size() - pos;
  } else {
    r.tail_bytes = body.size() - pos;
  }
  return r;
}

}  // namespace sqsrelay::wal
