// An HTTP/1.1 client: a keep-alive connection pool per origin on Boost.Asio/Beast, with TLS
// (OpenSSL through boost::asio::ssl), for the SQS client and the credential providers.
//
// API (coroutines on one executor):
//
//   auto c = http::client::create(ex, opts);            // result<unique_ptr<client>>
//   auto host = (*c)->add_origin(*http::parse_origin("https://sqs.eu-west-1.amazonaws.com"));
//   http::outgoing req;  http::incoming res;            // reusable buffers
//   req.reset("POST", "/");  req.add_header("Content-Type", "...");  req.body = ...;
//   auto r = co_await (*c)->execute(host, &req, &res);  // client_result<void>
//
// Pooling: each origin (scheme, host, port) has up to `max_connections_per_origin`
// connections, each carrying one request at a time. A request takes the most recently used
// idle connection, else opens a new one if under the cap, else waits (FIFO) for one to be
// released, up to its timeout. Before reuse an idle connection is checked without blocking
// (a peeked read: the peer's FIN or any unexpected byte marks it stale) and dropped when it
// has idled longer than `idle_timeout`; a request that fails on a reused connection before
// any response byte arrives (the server closed it meanwhile) is retried once on a fresh one
// when `retry_stale_once` (as urllib3/botocore do), and counted.
//
// TLS: peer certificate verification against `ca_file` when given, else the system's default
// paths; the host name (or IP address) checked by OpenSSL (SSL_set1_host), SNI sent for names.
// A failed verification reports OpenSSL's reason ("self-signed certificate", "hostname
// mismatch") and the host.
//
// Allocation: request heads are serialized into a per-connection string and responses are
// parsed by a custom Beast parser straight into the caller's `incoming` (whose strings keep
// their capacity), so a steady stream of requests allocates nothing in this layer beyond
// the coroutine frames (recycled by Asio).
//
// Thread-safety: none. Every member function, and every coroutine it returns, must run on the
// client's executor (a single-threaded io_context, or a strand). Destroying the client
// closes its connections; no request may be in flight then.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "base/result.h"

namespace sqsrelay::http {

enum class client_errc {
  invalid_url = 1,            // not http(s)://host[:port][/path]
  resolve_failed,             // DNS lookup failed
  resolve_timeout,            // DNS lookup took longer than connect_timeout
  connect_failed,             // TCP connect refused / unreachable
  connect_timeout,            // TCP connect (or the TLS handshake) took too long
  tls_handshake_failed,       // TLS failed for a reason other than verification
  certificate_verify_failed,  // the peer's certificate or host name did not verify
  tls_setup_failed,           // the CA file could not be loaded, or OpenSSL setup failed
  request_timeout,            // no complete response within the request timeout
  pool_timeout,               // no connection became free within the request timeout
  connection_closed,          // the peer closed or reset the connection before answering
  write_failed,               // other socket error while sending
  read_failed,                // other socket error while receiving
  bad_response,               // not a valid HTTP/1.1 response
  response_too_large,         // body over max_response_body
};
const boost::system::error_category& client_category();
inline error_code make_error_code(client_errc e) { return {static_cast<int>(e), client_category()}; }

// A failure with its context: `message` names the operation and host ("connect to
// 127.0.0.1:9324: Connection refused"); `cause` is the underlying Asio/OpenSSL error, if any.
struct client_error {
  error_code code;
  error_code cause;
  std::string message;
  // True when request bytes may have reached the server: the outcome is unknown (the request
  // may have taken effect). False when it certainly did not (connect, TLS, pool wait).
  bool request_sent = false;
};
// Lets boost::system::result<T, client_error>::value() throw (only tests call it).
[[noreturn]] void throw_exception_from_error(const client_error& e,
                                             const boost::source_location& loc);

template <class T>
using client_result = boost::system::result<T, client_error>;

// Where requests go: scheme, host and port of a URL.
struct origin {
  bool tls = false;
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 0;
  // "host" or "host:port" (non-default port; IPv6 in brackets): the Host header, and what
  // SigV4 signs.
  std::string host_header() const;
  // "https://host:port", for messages.
  std::string to_string() const;
};
// Parses "http[s]://host[:port][/anything]"; the path, query and fragment are ignored.
result<origin> parse_origin(std::string_view url);

// A request, reusable: reset() keeps every buffer's capacity.
struct outgoing {
  std::string_view method = "POST";  // must outlive the request: use literals
  std::string target = "/";
  std::string body;
  // 0: the client's request_timeout. Long polls set it above their wait time.
  std::chrono::milliseconds timeout{0};

  void reset(std::string_view m, std::string_view t);
  // Host, Content-Length and Connection are written by the client; don't add them.
  void add_header(std::string_view name, std::string_view value);
  size_t header_count() const { return nheaders_; }
  const std::pair<std::string, std::string>& header(size_t i) const { return headers_[i]; }
  // Drops the headers added after the first `n` (a retried request is signed again).
  void keep_headers(size_t n) { nheaders_ = std::min(n, nheaders_); }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  size_t nheaders_ = 0;
};

// A response, reusable the same way.
struct incoming {
  int status = 0;
  std::string body;
  bool keep_alive = true;

  // The first header of that name (ASCII case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
  void clear();
  void add_header(std::string_view name, std::string_view value);
  size_t header_count() const { return nheaders_; }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  size_t nheaders_ = 0;
};

struct client_options {
  size_t max_connections_per_origin = 64;
  std::chrono::milliseconds connect_timeout{5000};  // DNS + TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{30000};  // pool wait + write + full response
  std::chrono::milliseconds idle_timeout{20000};  // an idle connection older is not reused
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system's default paths
  bool verify_tls = true;  // false only for tests and explicit --no-verify-ssl
  size_t max_response_body = 64u << 20;
  bool retry_stale_once = true;
};

// Counters; relaxed atomics so a metrics thread may read them.
struct client_stats {
  std::atomic<uint64_t> requests{0}, connections_opened{0}, connections_reused{0},
      stale_dropped{0}, stale_retries{0}, errors{0}, timeouts{0}, pool_waits{0};
};

// An origin registered with the client: an index, cheap to copy, valid for the client's life.
using origin_id = size_t;

class client {
 public:
  // Fails with tls_setup_failed when the CA file cannot be loaded.
  static client_result<std::unique_ptr<client>> create(boost::asio::any_io_executor ex,
                                                       client_options o);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Registers an origin (or finds it: the same scheme/host/port gives the same id).
  origin_id add_origin(const origin& o);
  const origin& origin_of(origin_id id) const;

  // Sends `*req` to the origin and fills `*res`. Both must stay alive and untouched until the
  // returned awaitable completes. Any HTTP status is a success at this layer.
  boost::asio::awaitable<client_result<void>> execute(origin_id id, const outgoing* req,
                                                      incoming* res);

  // Closes every idle connection (e.g. after a fork or before shutdown).
  void close_idle();
  const client_stats& stats() const;
  const client_options& options() const;
  boost::asio::any_io_executor get_executor() const;

  struct impl;

 private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace sqsrelay::http

template <>
struct boost::system::is_error_code_enum<sqsrelay::http::client_errc> : std::true_type {};
