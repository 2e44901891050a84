#include "http/chunked.h"

#include <algorithm>

namespace sqsrelay::http {

bool chunked_decoder::fail(std::string_view why) {
  status_ = status::malformed;
  error_ = why;
  return false;
}

bool chunked_decoder::take_size_line(std::string_view line) {
  // chunk-size [ chunk-ext ]: hex digits, then optional whitespace and ";ext".
  size_t i = 0;
  uint64_t size = 0;
  for (; i < line.size(); ++i) {
    char c = line[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) break;
    if (size > (UINT64_MAX >> 4)) return fail("chunk size overflows");
    size = (size << 4) | static_cast<uint64_t>(d);
  }
  if (i == 0) return fail("chunk size is not a hex number");
  auto rest = line.substr(i);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  if (!rest.empty() && rest.front() != ';') return fail("unexpected text after the chunk size");
  if (size > limit_ - decoded_) {  // refused before its data arrives
    status_ = status::too_large;
    return false;
  }
  remaining_ = size;
  step_ = size == 0 ? step::trailer : step::data;
  return true;
}

size_t chunked_decoder::feed(std::string_view in, std::string& body) {
  size_t used = 0;
  while (status_ == status::need_more && used < in.size()) {
    std::string_view avail = in.substr(used);
    if (step_ == step::data) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, avail.size()));
      body.append(avail.data(), n);
      decoded_ += n;
      used += n;
      remaining_ -= n;
      if (remaining_ == 0) step_ = step::data_end;
      continue;
    }
    // The other steps read a CRLF-terminated line (a bare LF is tolerated, as most servers do).
    auto lf = avail.find('\n');
    size_t take = lf == std::string_view::npos ? avail.size() : lf + 1;
    if (line_.size() + take > max_line + 2) {
      fail("a chunk size line or trailer field is too long");
      break;
    }
    if (overhead_ + take > max_overhead_) {  // sizes, extensions, trailers: bounded too
      fail("too much chunk framing (extensions or trailer fields)");
      break;
    }
    overhead_ += take;
    line_.append(avail.data(), take);
    used += take;
    if (lf == std::string_view::npos) break;  // the line continues in the next feed
    std::string_view line = line_;
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool ok = true;
    if (step_ == step::size_line) {
      ok = take_size_line(line);
    } else if (step_ == step::data_end) {
      if (!line.empty()) ok = fail("chunk data is longer than its size");
      else step_ = step::size_line;
    } else if (line.empty()) {  // step::trailer: an empty line ends the message
      status_ = status::done;
    }
    line_.clear();
    if (!ok) break;
  }
  return used;
}

}  // namespace sqsrelay::http
