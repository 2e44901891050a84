// An incremental decoder of chunked request bodies (RFC 9112 §7.1): chunk sizes in hex,
// chunk extensions ignored, trailer fields read and dropped.
//
// Hand-written rather than Beast's chunk parser: Boost.Beast 1.81's parser trips an
// internal assertion on some re-fed chunked inputs (found by fuzz_http_request), and the
// body is wanted whole in a string anyway. The decoder never holds more than one line
// besides the body, and stops at `body_limit`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sqsrelay::http {

class chunked_decoder {
 public:
  enum class status { need_more, done, malformed, too_large };

  // Framing (size lines, extensions, trailer fields) may add at most 64 KiB plus an eighth
  // of the limit to the body's bytes on the wire.
  explicit chunked_decoder(size_t body_limit)
      : limit_(body_limit), max_overhead_((64u << 10) + body_limit / 8) {}

  // Consumes a prefix of `in`, appending chunk data to `body`; returns the bytes consumed.
  // After `done`, the rest of `in` belongs to the next request on the connection.
  size_t feed(std::string_view in, std::string& body);
  status state() const { return status_; }
  // What was wrong, for a 400 (after `malformed`).
  std::string_view error() const { return error_; }

  static constexpr size_t max_line = 4096;  // a size line or a trailer field

 private:
  enum class step { size_line, data, data_end, trailer };
  bool fail(std::string_view why);
  bool take_size_line(std::string_view line);

  size_t limit_;
  size_t max_overhead_;
  size_t overhead_ = 0;  // framing bytes so far
  status status_ = status::need_more;
  step step_ = step::size_line;
  uint64_t remaining_ = 0;  // bytes left of the current chunk
  size_t decoded_ = 0;      // body bytes so far (at most limit_)
  std::string line_;        // a partial line across feeds
  std::string_view error_;
};

}  // namespace sqsrelay::http
