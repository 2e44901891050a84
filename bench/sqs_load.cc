// sqs_load: a closed-loop load generator for SQS-compatible servers over the AWS JSON 1.0
// protocol (`POST /`, `X-Amz-Target: AmazonSQS.<Action>`).
//
// -c keep-alive connections each keep one request in flight. Request bytes (headers and
// body) are serialized once before the run; only DeleteMessageBatch bodies are built per
// request, from the receipt handles just received. Every request's latency goes into a
// log-linear histogram (< 1.6 % relative error); requests that start during the warm-up
// are executed but not recorded. The run ends after -n messages (send-batch: sent after
// the warm-up; receive-delete: received in all; get-attributes: requests), after
// --duration seconds of measurement, or (receive-delete) when a receive comes back empty.
// One JSON line of results goes to stdout; diagnostics go to stderr.
//
// Modes:
//   create-queue    CreateQueue --queue-name; prints the QueueUrl.
//   send-batch      SendMessageBatch of --batch entries of --body-bytes each; checks that
//                   the reply is 200, that Successful has one entry per message and that
//                   each MD5OfMessageBody matches.
//   receive-delete  ReceiveMessage (MaxNumberOfMessages=--batch) then DeleteMessageBatch of
//                   what was received; drains until -n messages or an empty receive.
//   get-attributes  GetQueueAttributes(All); -n counts requests; prints the last attributes.
//   post            POSTs --body-file to --path (any HTTP endpoint, e.g. sqsrelay's ingest);
//                   counts 200s. With --rate it is open-loop: request k is due at
//                   start + k / rate (connection k mod -c sends it) and its latency counts
//                   from when it was due, not from when it was sent, so a slow reply that
//                   delays the next requests is charged to them too (no coordinated
//                   omission, as wrk2 measures). -n counts requests.
//
// Peers that answer `Connection: close` (moto's Werkzeug server) get a new connection per
// request; the reconnects are counted and their cost is part of the measured latency.
//
// Threading: --threads io threads (default 1; pin the process with taskset). Each
// connection is a coroutine on its own strand and owns its statistics; they are merged
// after the io_context has stopped. The only shared mutable state is atomics.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/hash.h"

namespace sqsrelay::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using response = beast::http::response<beast::http::string_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------
// Latency histogram: 64 linear sub-buckets per power of two, values in nanoseconds.

class latency_histogram {
 public:
  void record(uint64_t ns) {
    buckets_[index_of(ns)] += 1;
    count_ += 1;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }
  void merge(const latency_histogram& o) {
    for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
  }
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at quantile q (0..1), reported as the middle of its bucket.
  uint64_t quantile(double q) const {
    if (!count_) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(max_, bucket_mid(i));
    }
    return max_;
  }

 private:
  static constexpr unsigned sub_bits = 6;
  static constexpr uint64_t sub = 1u << sub_bits;
  static size_t index_of(uint64_t v) {
    if (v < 2 * sub) return static_cast<size_t>(v);
    unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - sub_bits;
    return static_cast<size_t>((shift + 1) * sub + ((v >> shift) - sub));
  }
  static uint64_t bucket_mid(size_t i) {
    if (i < 2 * sub) return i;
    unsigned shift = static_cast<unsigned>(i / sub) - 1;
    uint64_t lo = (i % sub + sub) << shift;
    return lo + ((uint64_t{1} << shift) >> 1);
  }
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(sub * 60);
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

// ---------------------------------------------------------------------------------------
// Options and pre-built requests.

enum class mode { create_queue, send_batch, receive_delete, get_attributes, post };

struct options {
  std::string host = "127.0.0.1";
  uint16_t port = 9324;
  std::string host_header;  // default HOST:PORT
  std::string mode_name = "send-batch";
  mode m = mode::send_batch;
  std::string queue_url, queue_name = "bench";
  unsigned connections = 16;
  unsigned threads = 1;
  int64_t messages = 0;  // 0: unbounded (then --duration bounds the run)
  double duration_s = 0;
  double warmup_s = 1;
  unsigned batch = 10;
  size_t body_bytes = 200;
  unsigned variants = 16;  // distinct pre-built SendMessageBatch bodies
  unsigned visibility_timeout = 600;
  double timeout_s = 30;  // one request
  bool dummy_auth = true;
  bool stop_on_empty = true;
  std::string path = "/", body_file, content_type = "application/json";  // post
  double rate = 0;  // post: requests per second in all; 0 = closed loop
};

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
    } else {
      out += c;
    }
  }
  out += '"';
}

// The header block up to and including "Content-Length: "; the caller appends the length,
// a blank line and the body.
std::string header_prefix(const options& o, std::string_view action) {
  std::string h = "POST / HTTP/1.1\r\nHost: " + o.host_header +
                  "\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS." +
                  std::string(action) + "\r\n";
  if (o.dummy_auth)
    h += "X-Amz-Date: 20250101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 "
         "Credential=AKID/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, "
         "Signature=00\r\n";
  h += "Content-Length: ";
  return h;
}

void finish_request(std::string& out, std::string_view body) {
  out += std::to_string(body.size());
  out += "\r\n\r\n";
  out += body;
}

std::string http_request(const options& o, std::string_view action, std::string_view body) {
  std::string r = header_prefix(o, action);
  finish_request(r, body);
  return r;
}

std::string queue_url_field(const options& o) {
  std::string s = "{\"QueueUrl\":";
  append_json_string(s, o.queue_url);
  return s;
}

// One pre-built SendMessageBatch: the request bytes and the MD5 of each entry's body.
struct send_variant {
  std::string request;
  std::vector<std::string> md5s;
};

std::vector<send_variant> build_send_variants(const options& o) {
  static constexpr std::string_view alphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  uint64_t x = 0x9e3779b97f4a7c15ull;
  std::vector<send_variant> out(o.variants);
  for (auto& v : out) {
    std::string body = queue_url_field(o) + ",\"Entries\":[";
    for (unsigned i = 0; i < o.batch; ++i) {
      std::string msg(o.body_bytes, 'x');
      for (auto& c : msg) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        c = alphabet[x % alphabet.size()];
      }
      v.md5s.push_back(to_hex(md5(msg)));
      if (i) body += ',';
      body += "{\"Id\":\"" + std::to_string(i) + "\",\"MessageBody\":";
      append_json_string(body, msg);
      body += '}';
    }
    body += "]}";
    v.request = http_request(o, "SendMessageBatch", body);
  }
  return out;
}

struct prebuilt {
  std::vector<send_variant> sends;
  std::string receive, get_attributes, create_queue, post;
  std::string delete_prefix;  // headers up to "Content-Length: "
};

prebuilt build_requests(const options& o) {
  prebuilt p;
  if (o.m == mode::send_batch) p.sends = build_send_variants(o);
  p.receive =
      http_request(o, "ReceiveMessage",
                   queue_url_field(o) + ",\"MaxNumberOfMessages\":" + std::to_string(o.batch) +
                       ",\"VisibilityTimeout\":" + std::to_string(o.visibility_timeout) +
                       ",\"WaitTimeSeconds\":0}");
  p.get_attributes =
      http_request(o, "GetQueueAttributes", queue_url_field(o) + ",\"AttributeNames\":[\"All\"]}");
  std::string cq = "{\"QueueName\":";
  append_json_string(cq, o.queue_name);
  p.create_queue = http_request(o, "CreateQueue", cq + "}");
  p.delete_prefix = header_prefix(o, "DeleteMessageBatch");
  return p;
}

// The post mode's request; false if the body file cannot be read.
bool build_post(const options& o, prebuilt& p) {
  std::FILE* f = std::fopen(o.body_file.c_str(), "rb");
  if (!f) return false;
  std::string body;
  char chunk[65536];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) body.append(chunk, n);
  const bool ok = !std::ferror(f);
  std::fclose(f);
  p.post = "POST " + o.path + " HTTP/1.1\r\nHost: " + o.host_header +
           "\r\nContent-Type: " + o.content_type + "\r\nContent-Length: ";
  finish_request(p.post, body);
  return ok;
}

// ---------------------------------------------------------------------------------------
// Run state shared by all connections (atomics only) and per-connection statistics.

struct shared_state {
  steady::time_point start, warm_end, deadline = steady::time_point::max();
  bool count_bound = false;
  std::atomic<int64_t> remaining{0};  // messages (or requests) left to claim
  std::atomic<bool> stop{false};
  std::atomic<unsigned> active{0};
};

struct conn_stats {
  latency_histogram latency, receive_latency, delete_latency;
  uint64_t requests = 0, messages = 0;  // measured (started after the warm-up)
  uint64_t total_requests = 0, total_messages = 0;
  uint64_t errors = 0, non200 = 0, failed_entries = 0, short_batches = 0, md5_mismatch = 0;
  uint64_t bad_replies = 0, reconnects = 0, empty_receives = 0;
  uint64_t late_starts = 0;  // post --rate: sent more than 1 ms after they were due
  steady::time_point last_done{};
  std::string first_error;
  json::object attributes;
  std::string queue_url;

  void note_error(std::string_view what) {
    if (first_error.empty()) first_error = std::string(what.substr(0, 600));
  }
  void merge(const conn_stats& o) {
    latency.merge(o.latency);
    receive_latency.merge(o.receive_latency);
    delete_latency.merge(o.delete_latency);
    requests += o.requests, messages += o.messages;
    total_requests += o.total_requests, total_messages += o.total_messages;
    errors += o.errors, non200 += o.non200, failed_entries += o.failed_entries;
    short_batches += o.short_batches, md5_mismatch += o.md5_mismatch;
    bad_replies += o.bad_replies, reconnects += o.reconnects;
    empty_receives += o.empty_receives;
    late_starts += o.late_starts;
    last_done = std::max(last_done, o.last_done);
    if (first_error.empty()) first_error = o.first_error;
    if (attributes.empty()) attributes = o.attributes;
    if (queue_url.empty()) queue_url = o.queue_url;
  }
};

uint64_t ns_between(steady::time_point a, steady::time_point b) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

// Parses a reply body into `out`; small replies parse into a stack buffer.
bool parse_reply(std::string_view body, json::monotonic_resource& mr, json::value& out) {
  boost::system::error_code ec;
  out = json::parse(body, ec, &mr);
  return !ec && out.is_object();
}

std::string_view string_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

size_t array_size(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_array() ? v->get_array().size() : 0;
}

// ---------------------------------------------------------------------------------------
// One keep-alive connection with one request in flight.

class connection {
 public:
  connection(asio::any_io_executor ex, const options& o, const prebuilt& p, shared_state& s,
             tcp::endpoint ep)
      : sock_(ex), opts_(o), pre_(p), shared_(s), ep_(ep) {}

  conn_stats& stats() { return stats_; }
  // Closes the socket if a request has been in flight longer than `limit`; runs on the
  // connection's strand.
  void check_stuck(steady::time_point now, std::chrono::nanoseconds limit) {
    if (in_flight_ && now - sent_at_ > limit) {
      stats_.note_error("request timed out");
      boost::system::error_code ignored;
      sock_.close(ignored);
    }
  }

  asio::awaitable<void> run(unsigned index) {
    switch (opts_.m) {
      case mode::send_batch:
        co_await run_send(index);
        break;
      case mode::receive_delete:
        co_await run_receive_delete();
        break;
      case mode::get_attributes:
        co_await run_get_attributes();
        break;
      case mode::create_queue:
        co_await run_create_queue();
        break;
      case mode::post:
        co_await run_post(index);
        break;
    }
    boost::system::error_code ignored;
    sock_.close(ignored);
    shared_.active -= 1;
  }

 private:
  bool measuring(steady::time_point t) const { return t >= shared_.warm_end; }
  // Stops at the deadline, on a global stop, or when the server has stopped answering.
  bool should_stop(steady::time_point now) const {
    return shared_.stop.load(std::memory_order_relaxed) || now >= shared_.deadline ||
           consecutive_failures_ >= max_consecutive_failures;
  }
  // Claims `n` units of the -n budget; false when it is spent.
  bool claim(int64_t n) {
    if (!shared_.count_bound) return true;
    return shared_.remaining.fetch_sub(n, std::memory_order_relaxed) > 0;
  }

  asio::awaitable<bool> connect() {
    auto [ec] = co_await sock_.async_connect(ep_, use_tuple);
    if (ec) {
      stats_.note_error("connect: " + ec.message());
      boost::system::error_code ignored;
      sock_.close(ignored);
      co_return false;
    }
    boost::system::error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    buffer_.clear();
    // Beast reads max(512, capacity - size) bytes at a time and its parser consumes what it
    // reads, so without headroom every reply would take one recv per 512 bytes.
    buffer_.reserve(64u << 10);
    used_ = false;
    co_return true;
  }

  // Writes `request` and reads one response into `res`. A reused keep-alive connection that
  // fails before any reply is reopened and the request retried once. Returns false (and
  // counts an error) on transport failure.
  asio::awaitable<bool> exchange(std::string_view request, response& res) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!sock_.is_open()) {
        if (stats_.total_requests) stats_.reconnects += 1;
        if (!co_await connect()) break;
      }
      bool was_used = used_;
      sent_at_ = steady::now();
      in_flight_ = true;
      auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(request), use_tuple);
      beast::http::response_parser<beast::http::string_body> parser;
      parser.body_limit(64u << 20);
      boost::system::error_code rec = wec;
      if (!wec) {
        auto [ec, rn] = co_await beast::http::async_read(sock_, buffer_, parser, use_tuple);
        rec = ec;
      }
      in_flight_ = false;
      if (!rec) {
        used_ = true;
        consecutive_failures_ = 0;
        res = parser.release();
        if (!res.keep_alive()) {
          boost::system::error_code ignored;
          sock_.close(ignored);
        }
        co_return true;
      }
      boost::system::error_code ignored;
      sock_.close(ignored);
      if (!was_used) {
        stats_.note_error("transport: " + rec.message());
        break;
      }
    }
    stats_.errors += 1;
    consecutive_failures_ += 1;
    co_return false;
  }

  // Common bookkeeping for a completed request; returns false if it was not a 200.
  bool finish(const response& res, steady::time_point t0, steady::time_point t1,
              latency_histogram* extra) {
    stats_.total_requests += 1;
    if (measuring(t0)) {
      stats_.requests += 1;
      stats_.latency.record(ns_between(t0, t1));
      if (extra) extra->record(ns_between(t0, t1));
      stats_.last_done = std::max(stats_.last_done, t1);
    }
    if (res.result_int() != 200) {
      stats_.non200 += 1;
      stats_.note_error(std::to_string(res.result_int()) + " " + res.body());
      return false;
    }
    return true;
  }

  asio::awaitable<void> run_send(unsigned index) {
    size_t variant = index % pre_.sends.size();
    response res;
    for (;;) {
      auto t0 = steady::now();
      if (should_stop(t0) || (measuring(t0) && !claim(opts_.batch))) break;
      const send_variant& v = pre_.sends[variant];
      variant = (variant + 1) % pre_.sends.size();
      if (!co_await exchange(v.request, res)) continue;
      auto t1 = steady::now();
      if (!finish(res, t0, t1, nullptr)) continue;
      size_t ok = check_send_reply(res.body(), v);
      stats_.total_messages += ok;
      if (measuring(t0)) stats_.messages += ok;
    }
  }

  // Returns the number of entries reported Successful; counts failures and mismatches.
  size_t check_send_reply(std::string_view body, const send_variant& v) {
    std::array<unsigned char, 8192> buf;
    json::monotonic_resource mr(buf.data(), buf.size());
    json::value doc;
    if (!parse_reply(body, mr, doc)) {
      stats_.bad_replies += 1;
      stats_.note_error(std::string("unparseable SendMessageBatch reply: ") + std::string(body));
      return 0;
    }
    const auto& o = doc.get_object();
    size_t failed = array_size(o, "Failed");
    stats_.failed_entries += failed;
    if (failed) stats_.note_error(std::string("Failed entries: ") + std::string(body));
    auto* succ = o.if_contains("Successful");
    size_t ok = succ && succ->is_array() ? succ->get_array().size() : 0;
    if (ok != opts_.batch) stats_.short_batches += 1;
    if (!succ || !succ->is_array()) return 0;
    for (auto& e : succ->get_array()) {
      if (!e.is_object()) continue;
      std::string_view id = string_field(e.get_object(), "Id");
      std::string_view md5 = string_field(e.get_object(), "MD5OfMessageBody");
      size_t i = 0;
      for (char c : id) i = i * 10 + static_cast<size_t>(c - '0');
      if (id.empty() || i >= v.md5s.size() || md5 != v.md5s[i]) stats_.md5_mismatch += 1;
    }
    return ok;
  }

  asio::awaitable<void> run_receive_delete() {
    response res;
    std::string del;
    for (;;) {
      auto t0 = steady::now();
      if (should_stop(t0)) break;
      if (shared_.count_bound && shared_.remaining.load(std::memory_order_relaxed) <= 0) break;
      if (!co_await exchange(pre_.receive, res)) continue;
      auto t1 = steady::now();
      if (!finish(res, t0, t1, &stats_.receive_latency)) continue;
      size_t n = build_delete(res.body(), del);
      if (n == 0) {
        stats_.empty_receives += 1;
        if (opts_.stop_on_empty) break;
        continue;
      }
      if (!co_await exchange(del, res)) continue;
      auto t2 = steady::now();
      if (!finish(res, t1, t2, &stats_.delete_latency)) continue;
      size_t ok = check_delete_reply(res.body(), n);
      shared_.remaining.fetch_sub(static_cast<int64_t>(ok), std::memory_order_relaxed);
      stats_.total_messages += ok;
      if (measuring(t0)) stats_.messages += ok;
    }
  }

  // Builds the DeleteMessageBatch request for the received messages into `out`; returns
  // how many messages were received.
  size_t build_delete(std::string_view body, std::string& out) {
    std::array<unsigned char, 32768> buf;
    json::monotonic_resource mr(buf.data(), buf.size());
    json::value doc;
    if (!parse_reply(body, mr, doc)) {
      stats_.bad_replies += 1;
      stats_.note_error(std::string("unparseable ReceiveMessage reply: ") + std::string(body));
      return 0;
    }
    auto* msgs = doc.get_object().if_contains("Messages");
    if (!msgs || !msgs->is_array() || msgs->get_array().empty()) return 0;
    std::string b = queue_url_field(opts_) + ",\"Entries\":[";
    size_t n = 0;
    for (auto& m : msgs->get_array()) {
      if (!m.is_object()) continue;
      if (n) b += ',';
      b += "{\"Id\":\"" + std::to_string(n) + "\",\"ReceiptHandle\":";
      append_json_string(b, string_field(m.get_object(), "ReceiptHandle"));
      b += '}';
      ++n;
    }
    b += "]}";
    out = pre_.delete_prefix;
    finish_request(out, b);
    return n;
  }

  size_t check_delete_reply(std::string_view body, size_t expected) {
    std::array<unsigned char, 8192> buf;
    json::monotonic_resource mr(buf.data(), buf.size());
    json::value doc;
    if (!parse_reply(body, mr, doc)) {
      stats_.bad_replies += 1;
      stats_.note_error(std::string("unparseable DeleteMessageBatch reply: ") + std::string(body));
      return 0;
    }
    const auto& o = doc.get_object();
    size_t failed = array_size(o, "Failed");
    size_t ok = array_size(o, "Successful");
    stats_.failed_entries += failed;
    if (failed) stats_.note_error(std::string("Failed deletes: ") + std::string(body));
    if (ok != expected) stats_.short_batches += 1;
    return ok;
  }

  asio::awaitable<void> run_get_attributes() {
    response res;
    for (;;) {
      auto t0 = steady::now();
      if (should_stop(t0) || !claim(1)) break;
      if (!co_await exchange(pre_.get_attributes, res)) continue;
      if (!finish(res, t0, steady::now(), nullptr)) continue;
      std::array<unsigned char, 8192> buf;
      json::monotonic_resource mr(buf.data(), buf.size());
      json::value doc;
      if (!parse_reply(res.body(), mr, doc)) {
        stats_.bad_replies += 1;
        continue;
      }
      if (auto* a = doc.get_object().if_contains("Attributes"); a && a->is_object())
        stats_.attributes = json::object(a->get_object(), json::storage_ptr());
    }
  }

  // Closed loop without --rate; otherwise this connection's share of the open-loop schedule
  // (requests index, index + c, index + 2c, ...), each timed from when it was due.
  asio::awaitable<void> run_post(unsigned index) {
    response res;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (uint64_t k = index;; k += opts_.connections) {
      auto due = steady::now();
      if (opts_.rate > 0) {
        due = shared_.start + std::chrono::duration_cast<steady::duration>(
                                  std::chrono::duration<double>(static_cast<double>(k) /
                                                                opts_.rate));
        if (should_stop(due)) break;
        if (due > steady::now()) {
          timer.expires_at(due);
          co_await timer.async_wait(use_tuple);
        } else if (steady::now() - due > std::chrono::milliseconds(1)) {
          stats_.late_starts += 1;
        }
      }
      if (should_stop(due) || (measuring(due) && !claim(1))) break;
      if (!co_await exchange(pre_.post, res)) continue;
      if (!finish(res, due, steady::now(), nullptr)) continue;
      stats_.total_messages += 1;
      if (measuring(due)) stats_.messages += 1;
    }
  }

  asio::awaitable<void> run_create_queue() {
    response res;
    auto t0 = steady::now();
    if (!co_await exchange(pre_.create_queue, res)) co_return;
    if (!finish(res, t0, steady::now(), nullptr)) co_return;
    std::array<unsigned char, 4096> buf;
    json::monotonic_resource mr(buf.data(), buf.size());
    json::value doc;
    if (!parse_reply(res.body(), mr, doc)) {
      stats_.bad_replies += 1;
      stats_.note_error(std::string("unparseable CreateQueue reply: ") + res.body());
      co_return;
    }
    stats_.queue_url = std::string(string_field(doc.get_object(), "QueueUrl"));
  }

  tcp::socket sock_;
  beast::flat_buffer buffer_;
  const options& opts_;
  const prebuilt& pre_;
  shared_state& shared_;
  tcp::endpoint ep_;
  conn_stats stats_;
  static constexpr unsigned max_consecutive_failures = 20;
  unsigned consecutive_failures_ = 0;
  bool used_ = false;
  bool in_flight_ = false;
  steady::time_point sent_at_{};
};

// Every 100 ms: stops the run at the deadline and closes connections whose request has
// been in flight longer than --timeout.
asio::awaitable<void> watchdog(std::vector<std::unique_ptr<connection>>* conns,
                               std::vector<asio::strand<asio::io_context::executor_type>>* strands,
                               shared_state* s, std::chrono::nanoseconds limit) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (s->active.load() > 0) {
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(use_tuple);
    auto now = steady::now();
    for (size_t i = 0; i < conns->size(); ++i) {
      connection* c = (*conns)[i].get();
      asio::post((*strands)[i], [c, now, limit] { c->check_stuck(now, limit); });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Output.

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

json::object latency_json(const latency_histogram& h) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return {{"count", h.count()},          {"mean", h.mean() / 1000.0},
          {"p50", us(h.quantile(0.50))}, {"p90", us(h.quantile(0.90))},
          {"p99", us(h.quantile(0.99))}, {"p999", us(h.quantile(0.999))},
          {"max", us(h.max())}};
}

json::object result_json(const options& o, const shared_state& s, const conn_stats& t,
                         double wall_s, double cpu_s) {
  double window = t.last_done > s.warm_end
                      ? std::chrono::duration<double>(t.last_done - s.warm_end).count()
                      : 0.0;
  json::object r{{"mode", o.mode_name},
                 {"target", o.host + ":" + std::to_string(o.port)},
                 {"connections", o.connections},
                 {"threads", o.threads},
                 {"batch", o.batch},
                 {"body_bytes", o.body_bytes},
                 {"warmup_s", o.warmup_s},
                 {"window_s", window},
                 {"wall_s", wall_s},
                 {"requests", t.requests},
                 {"messages", t.messages},
                 {"total_requests", t.total_requests},
                 {"total_messages", t.total_messages},
                 {"msgs_per_s", window > 0 ? t.messages / window : 0.0},
                 {"requests_per_s", window > 0 ? t.requests / window : 0.0},
                 {"errors", t.errors},
                 {"non200", t.non200},
                 {"bad_replies", t.bad_replies},
                 {"failed_entries", t.failed_entries},
                 {"short_batches", t.short_batches},
                 {"md5_mismatch", t.md5_mismatch},
                 {"reconnects", t.reconnects},
                 {"empty_receives", t.empty_receives},
                 {"latency_us", latency_json(t.latency)},
                 {"client_cpu_s", cpu_s},
                 {"client_cpu_util", wall_s > 0 ? cpu_s / wall_s : 0.0}};
  if (o.m == mode::receive_delete) {
    r["receive_latency_us"] = latency_json(t.receive_latency);
    r["delete_latency_us"] = latency_json(t.delete_latency);
  }
  if (o.m == mode::get_attributes) r["attributes"] = t.attributes;
  if (o.m == mode::post) {
    r["rate"] = o.rate;
    r["late_starts"] = t.late_starts;
  }
  if (o.m == mode::create_queue) r["queue_url"] = t.queue_url;
  if (!t.first_error.empty()) r["first_error"] = t.first_error;
  return r;
}

bool ok_result(const conn_stats& t, const options& o) {
  if (o.m == mode::create_queue) return !t.queue_url.empty();
  return t.errors == 0 && t.non200 == 0 && t.bad_replies == 0 && t.total_requests > 0;
}

int run(options o) {
  prebuilt pre = build_requests(o);
  if (o.m == mode::post && !build_post(o, pre)) {
    std::fprintf(stderr, "sqs_load: cannot read --body-file %s\n", o.body_file.c_str());
    return 2;
  }
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(o.host, ec), o.port);
  if (ec) {
    std::fprintf(stderr, "sqs_load: --host %s is not an IP address\n", o.host.c_str());
    return 2;
  }
  asio::io_context ioc(static_cast<int>(o.threads));
  shared_state s;
  s.count_bound = o.messages > 0;
  s.remaining = o.messages;
  s.start = steady::now();
  s.warm_end = s.start + std::chrono::duration_cast<steady::duration>(
                             std::chrono::duration<double>(o.warmup_s));
  if (o.duration_s > 0)
    s.deadline = s.warm_end + std::chrono::duration_cast<steady::duration>(
                                  std::chrono::duration<double>(o.duration_s));
  std::vector<std::unique_ptr<connection>> conns;
  std::vector<asio::strand<asio::io_context::executor_type>> strands;
  for (unsigned i = 0; i < o.connections; ++i) {
    strands.push_back(asio::make_strand(ioc.get_executor()));
    conns.push_back(std::make_unique<connection>(strands.back(), o, pre, s, ep));
  }
  s.active = o.connections;
  for (unsigned i = 0; i < o.connections; ++i)
    asio::co_spawn(strands[i], conns[i]->run(i), asio::detached);
  auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o.timeout_s));
  asio::co_spawn(ioc, watchdog(&conns, &strands, &s, limit), asio::detached);
  double cpu0 = cpu_seconds();
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < o.threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  double wall = std::chrono::duration<double>(steady::now() - s.start).count();
  conn_stats total;
  for (auto& c : conns) total.merge(c->stats());
  auto r = result_json(o, s, total, wall, cpu_seconds() - cpu0);
  std::printf("%s\n", json::serialize(r).c_str());
  std::fflush(stdout);
  return ok_result(total, o) ? 0 : 1;
}

}  // namespace
}  // namespace sqsrelay::bench

int main(int argc, char** argv) {
  using sqsrelay::bench::mode;
  sqsrelay::bench::options o;
  CLI::App app{"sqs_load: closed-loop load generator for SQS-compatible servers (JSON protocol)"};
  app.add_option("--host", o.host, "Server IP address")->capture_default_str();
  app.add_option("-p,--port", o.port, "Server port")->required();
  app.add_option("--host-header", o.host_header, "Host header (default HOST:PORT)");
  app.add_option("-m,--mode", o.mode_name,
                 "create-queue, send-batch, receive-delete, get-attributes, post")
      ->capture_default_str();
  app.add_option("-q,--queue-url", o.queue_url, "QueueUrl to send to / receive from");
  app.add_option("--queue-name", o.queue_name, "create-queue: the name")->capture_default_str();
  app.add_option("-c,--connections", o.connections, "Connections, one request in flight each")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "I/O threads")->capture_default_str();
  app.add_option("-n,--messages", o.messages,
                 "Stop after this many messages: send-batch counts those sent after the "
                 "warm-up, receive-delete all received, get-attributes requests; 0 = no bound")
      ->capture_default_str();
  app.add_option("-d,--duration", o.duration_s, "Stop after this many measured seconds")
      ->capture_default_str();
  app.add_option("-w,--warmup", o.warmup_s, "Seconds at the start not recorded")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "Entries per SendMessageBatch / MaxNumberOfMessages (1-10)")
      ->capture_default_str();
  app.add_option("--body-bytes", o.body_bytes, "Message body size")->capture_default_str();
  app.add_option("--variants", o.variants, "Distinct pre-built send requests")
      ->capture_default_str();
  app.add_option("--visibility-timeout", o.visibility_timeout, "ReceiveMessage VisibilityTimeout")
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "Seconds one request may take")->capture_default_str();
  app.add_option("--path", o.path, "post: request target")->capture_default_str();
  app.add_option("--body-file", o.body_file, "post: the request body");
  app.add_option("--content-type", o.content_type, "post: Content-Type")->capture_default_str();
  app.add_option("--rate", o.rate, "post: open-loop requests per second in all (0: closed loop)")
      ->capture_default_str();
  app.add_flag("!--no-auth", o.dummy_auth, "Do not send the dummy Authorization header");
  app.add_flag("!--no-stop-on-empty", o.stop_on_empty,
               "receive-delete: keep polling after an empty receive");
  CLI11_PARSE(app, argc, argv);
  if (o.mode_name == "create-queue") {
    o.m = mode::create_queue;
    o.connections = 1;
    o.warmup_s = 0;
  } else if (o.mode_name == "send-batch") {
    o.m = mode::send_batch;
  } else if (o.mode_name == "receive-delete") {
    o.m = mode::receive_delete;
  } else if (o.mode_name == "get-attributes") {
    o.m = mode::get_attributes;
  } else if (o.mode_name == "post") {
    o.m = mode::post;
  } else {
    std::fprintf(stderr, "sqs_load: unknown --mode %s\n", o.mode_name.c_str());
    return 2;
  }
  if (o.host_header.empty()) o.host_header = o.host + ":" + std::to_string(o.port);
  if (o.m == mode::post && (o.body_file.empty() || o.rate < 0)) {
    std::fprintf(stderr, "sqs_load: post needs --body-file and a --rate >= 0\n");
    return 2;
  }
  if (o.m == mode::post && o.messages == 0 && o.duration_s == 0) {
    std::fprintf(stderr, "sqs_load: post needs -n or --duration\n");
    return 2;
  }
  if (o.m != mode::create_queue && o.m != mode::post && o.queue_url.empty()) {
    std::fprintf(stderr, "sqs_load: --queue-url is required for --mode %s\n", o.mode_name.c_str());
    return 2;
  }
  if (o.batch < 1 || o.batch > 10 || o.connections < 1 || o.threads < 1 || o.variants < 1) {
    std::fprintf(stderr, "sqs_load: --batch must be 1-10; -c, --threads, --variants >= 1\n");
    return 2;
  }
  if (o.m == mode::get_attributes && o.messages == 0 && o.duration_s == 0) o.messages = 1;
  if (o.m == mode::send_batch && o.messages == 0 && o.duration_s == 0) {
    std::fprintf(stderr, "sqs_load: send-batch needs -n or --duration\n");
    return 2;
  }
  return sqsrelay::bench::run(std::move(o));
}
