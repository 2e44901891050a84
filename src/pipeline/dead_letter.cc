#include "pipeline/dead_letter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "base/hash.h"
#include "sqs/json_text.h"

namespace sqsrelay::pipeline {

namespace {

// Plain UTF-8 validity (not SQS's narrower set): JSON text must be UTF-8, and the bodies
// that land here are often exactly the ones that are not.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    static constexpr uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void append_text_or_base64(std::string& out, std::string_view key, std::string_view v) {
  out.push_back(',');
  if (valid_utf8(v)) {
    sqs::append_json_member(out, key, v);
  } else {
    std::string k = std::string(key) + "_base64";
    sqs::append_json_member(out, k, base64_encode(v));
  }
}

void append_time(std::string& out, std::chrono::system_clock::time_point when) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
  std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ms.count() % 1000);
}

error_code errno_code() { return error_code(errno, boost::system::system_category()); }

}  // namespace

void append_dead_letter_line(std::string& out, const dead_letter_record& rec,
                             std::chrono::system_clock::time_point when) {
  const outbound_message& m = *rec.message;
  out += "{\"time\":";
  append_time(out, when);
  append_text_or_base64(out, "queue", rec.queue);
  out.push_back(',');
  sqs::append_json_member(out, "reason", to_string(rec.why->reason));
  append_text_or_base64(out, "code", rec.why->code);
  append_text_or_base64(out, "detail", rec.why->message);
  fmt::format_to(std::back_inserter(out), ",\"attempts\":{}", rec.attempts);
  append_text_or_base64(out, "body", m.body);
  if (!m.attributes.empty()) {
    out += ",\"attributes\":{";
    bool first = true;
    for (const auto& a : m.attributes) {
      if (!first) out.push_back(',');
      first = false;
      sqs::append_json_string(out, valid_utf8(a.name) ? a.name : base64_encode(a.name));
      out += ":{";
      sqs::append_json_member(out, "DataType",
                              valid_utf8(a.data_type) ? a.data_type : base64_encode(a.data_type));
      out.push_back(',');
      if (a.binary() || !valid_utf8(a.value))
        sqs::append_json_member(out, "BinaryValue", base64_encode(a.value));
      else
        sqs::append_json_member(out, "StringValue", a.value);
      out.push_back('}');
    }
    out.push_back('}');
  }
  if (!m.group_id.empty()) append_text_or_base64(out, "group_id", m.group_id);
  if (!m.dedup_id.empty()) append_text_or_base64(out, "dedup_id", m.dedup_id);
  out += "}\n";
}

result<std::unique_ptr<ndjson_dead_letter_file>> ndjson_dead_letter_file::open(
    const std::string& path, clock& clk) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno_code();
  return std::unique_ptr<ndjson_dead_letter_file>(new ndjson_dead_letter_file(fd, path, clk));
}

ndjson_dead_letter_file::ndjson_dead_letter_file(int fd, std::string path, clock& clk)
    : fd_(fd), path_(std::move(path)), clock_(clk) {
  writer_ = std::thread([this] { run(); });
}

ndjson_dead_letter_file::~ndjson_dead_letter_file() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  ::close(fd_);
}

void ndjson_dead_letter_file::write(std::vector<dead_letter_record> records,
                                    std::function<void(error_code)> done) {
  std::string lines;
  auto now = clock_.wall();
  for (const auto& r : records) append_dead_letter_line(lines, r, now);
  {
    std::lock_guard lock(mu_);
    pending_ += lines;
    waiting_.push_back(std::move(done));
  }
  cv_.notify_one();
}

void ndjson_dead_letter_file::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty() && stopping_) return;
    std::string data = std::move(pending_);
    pending_.clear();
    auto callbacks = std::move(waiting_);
    waiting_.clear();
    lock.unlock();
    error_code ec;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ec = errno_code();
        break;
      }
      off += static_cast<size_t>(n);
    }
    if (!ec && ::fdatasync(fd_) != 0) ec = errno_code();
    for (auto& cb : callbacks) cb(ec);
    lock.lock();
  }
}

}  // namespace sqsrelay::pipeline
