// A small HTTP/1.1 server on Boost.Beast: one coroutine per connection, running on its
// own strand; keep-alive; request bodies bounded (413 beyond the limit); idle and
// slow-client timeouts on the stream.
//
// Threading: one io_context per thread (the caller runs each on its own thread). The
// acceptor lives on the first; each accepted connection is bound to one io_context, round
// robin, so a connection's coroutine and everything posted to its executor run on one
// thread without a strand. The handler may run concurrently for different connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http.hpp>

#include "base/result.h"

namespace sqsrelay::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

struct peer_info {
  boost::asio::ip::tcp::endpoint remote;
};

// Coroutine parameters by value (STYLE.md rule 10). A response with status `unknown` (0)
// makes the server close the connection without answering.
using handler = std::function<boost::asio::awaitable<response>(request, peer_info)>;
// Builds the response for a request that could not be read (too large, malformed).
using error_responder = std::function<response(int status, std::string_view reason)>;

using request_header = boost::beast::http::request_header<>;
// What a header check decides before the body is read: `reject` is answered (and the
// connection closed) without reading the body; otherwise `lease` is held until the
// response to this request is written (e.g. a reservation of in-flight bytes).
struct admission {
  std::optional<response> reject;
  std::shared_ptr<void> lease;
};
using header_check = std::function<admission(const request_header&, const peer_info&)>;

struct server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  size_t body_limit = 8u << 20;
  size_t header_limit = 16u << 10;
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds request_timeout{30};  // to read one request once it has started
  // When set, every connection is TLS (HTTPS) with this context; see make_tls_context().
  std::shared_ptr<boost::asio::ssl::context> tls;
  header_check check_header;  // optional
};

// A TLS server context from PEM files (certificate chain and private key); TLS 1.2+.
// Errors name the file that could not be used.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                                    const std::string& key_file,
                                                                    std::string* error);

struct server_stats {
  std::atomic<uint64_t> connections{0}, requests{0}, bad_requests{0}, too_large{0},
      tls_failures{0}, refused{0}, accept_errors{0};
  // Requests read and not yet answered (graceful shutdown waits for 0).
  std::atomic<int64_t> in_progress{0};
};

class server {
 public:
  // `workers` are single-threaded io_contexts; the acceptor runs on the first.
  server(std::vector<boost::asio::io_context*> workers, server_options o, handler h,
         error_responder e);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and starts accepting. Fails with the bind error (address in use, ...).
  result<void> start();
  uint16_t port() const { return port_; }
  void stop();
  const server_stats& stats() const { return *stats_; }

 private:
  std::vector<boost::asio::io_context*> workers_;
  server_options opts_;
  handler handler_;
  error_responder error_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::shared_ptr<server_stats> stats_ = std::make_shared<server_stats>();
  std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
  uint16_t port_ = 0;
};

}  // namespace sqsrelay::http
