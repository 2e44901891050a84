#include "http/server.h"

#include <array>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/chunked.h"

namespace sqsrelay::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// Whether a Transfer-Encoding field names a coding other than chunked.
bool has_other_coding(const beast::http::request_header<>& h) {
  auto [first, last] = h.equal_range(beast::http::field::transfer_encoding);
  for (auto f = first; f != last; ++f)
    for (auto t : beast::http::token_list{f->value()})
      if (!beast::iequals(t, "chunked")) return true;
  return false;
}

// Counts a request in server_stats::in_progress from its armed moment to the guard's end.
class in_progress_guard {
 public:
  in_progress_guard() = default;
  in_progress_guard(const in_progress_guard&) = delete;
  in_progress_guard& operator=(const in_progress_guard&) = delete;
  ~in_progress_guard() {
    if (counter_) *counter_ -= 1;
  }
  void arm(std::atomic<int64_t>& counter) {
    counter_ = &counter;
    counter += 1;
  }

 private:
  std::atomic<int64_t>* counter_ = nullptr;
};


struct session_env {
  std::vector<asio::io_context*> workers;
  server_options opts;
  handler h;
  error_responder err;
  std::shared_ptr<server_stats> stats;
  std::shared_ptr<std::atomic<bool>> stopping;
  std::shared_ptr<asio::ssl::context> tls;  // null: plain HTTP
};

// Serializes the status line and header block by hand and writes it with the body as two
// buffers in one gather write: Beast's http::async_write costs ~25k instructions a response
// in composed-operation machinery, several times the rest of a request's handling.
std::string header_block(const response& res, size_t body_size) {
  std::string head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  head += std::to_string(res.result_int());
  head += ' ';
  auto reason = res.reason();
  head.append(reason.data(), reason.size());
  head += "\r\n";
  for (const auto& f : res) {
    if (f.name() == beast::http::field::content_length ||
        f.name() == beast::http::field::connection)
      continue;
    auto n = f.name_string();
    auto v = f.value();
    head.append(n.data(), n.size());
    head += ": ";
    head.append(v.data(), v.size());
    head += "\r\n";
  }
  head += "Content-Length: ";
  head += std::to_string(body_size);
  head += res.keep_alive() ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  return head;
}

template <class Stream>
asio::awaitable<void> write_response(Stream& stream, response& res) {
  std::string head = header_block(res, res.body().size());
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(res.body())};
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  co_await asio::async_write(stream, bufs, asio::as_tuple(asio::use_awaitable));
}

// One connection: read a request, hand it to the handler, write the response; repeat
// while the client keeps the connection alive. `Stream` is a beast::tcp_stream or a
// beast::ssl_stream over one (already handshaken).
template <class Stream>
asio::awaitable<void> serve_requests(Stream& stream, peer_info peer,
                                     std::shared_ptr<session_env> env) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  // Beast reads max(512, free capacity) bytes at a time and the parser consumes each read,
  // so an unreserved buffer stays at 512 bytes: ~6 recvmsg calls per 2.5 KB request.
  buffer.reserve(64u << 10);
  for (;;) {
    beast::http::request_parser<beast::http::string_body> parser;
    parser.body_limit(env->opts.body_limit);
    parser.header_limit(static_cast<uint32_t>(env->opts.header_limit));
    // Between requests the idle timeout applies; from a request's first byte on, the
    // request timeout covers its header and body (a client trickling its header is cut
    // like one trickling its body).
    if (buffer.size() == 0) {
      tcp_layer.expires_after(env->opts.idle_timeout);
      auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(64u << 10),
                                                       asio::as_tuple(asio::use_awaitable));
      if (rec) break;  // closed, reset or idle: nothing to answer
      buffer.commit(rn);
    }
    tcp_layer.expires_after(env->opts.request_timeout);
    auto [ec, n] = co_await beast::http::async_read_header(stream, buffer, parser,
                                                           asio::as_tuple(asio::use_awaitable));
    // From a complete header on, the request counts as in progress: a graceful stop waits
    // for its body and its answer.
    in_progress_guard busy;
    if (!ec) busy.arm(env->stats->in_progress);
    // A transfer coding other than chunked (last) leaves a request's length unknown; RFC 9112
    // §6.3 has the server refuse it rather than guess where the next request starts.
    if (!ec && !parser.chunked() &&
        parser.get().find(beast::http::field::transfer_encoding) != parser.get().end()) {
      env->stats->bad_requests += 1;
      response res = env->err(400, "unsupported Transfer-Encoding: only chunked (last) is");
      res.keep_alive(false);
      co_await write_response(stream, res);
      break;
    }
    // A coding besides chunked (gzip, ...) would be undone by nobody: the handler would take
    // compressed bytes for the body. RFC 9112 §6.1: 501 for a coding the server does not know.
    if (!ec && parser.chunked() && has_other_coding(parser.get())) {
      env->stats->bad_requests += 1;
      response res = env->err(501, "unsupported Transfer-Encoding: only chunked is");
      res.keep_alive(false);
      co_await write_response(stream, res);
      break;
    }
    // The owner's header check (auth, allowlist, in-flight budget) runs before the body is
    // read, so a refused request never costs its body's memory; its lease lives until the
    // response is written.
    std::shared_ptr<void> lease;
    if (!ec && env->opts.check_header) {
      admission adm = env->opts.check_header(parser.get(), peer);
      if (adm.reject) {
        env->stats->refused += 1;
        response res = std::move(*adm.reject);
        res.keep_alive(false);  // the unread body makes the connection unusable
        co_await write_response(stream, res);
        break;
      }
      lease = std::move(adm.lease);
    }
    // Clients that sent "Expect: 100-continue" (curl does for bodies over 1 KB) wait for
    // this interim answer before sending the body; without it they stall about a second.
    if (!ec && beast::iequals(parser.get()[beast::http::field::expect], "100-continue")) {
      static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
      auto buf = asio::buffer(interim.data(), interim.size());
      tcp_layer.expires_after(env->opts.request_timeout);
      auto [wec, wn] = co_await asio::async_write(stream, buf, asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    // A chunked body is decoded here (chunked.h says why not by Beast); the handler then
    // sees it like any other, with a Content-Length.
    std::string chunked_body;
    bool chunked = !ec && parser.chunked();
    if (chunked) {
      chunked_decoder dec(env->opts.body_limit);
      tcp_layer.expires_after(env->opts.request_timeout);
      for (;;) {
        auto data = buffer.data();
        size_t used = dec.feed({static_cast<const char*>(data.data()), data.size()}, chunked_body);
        buffer.consume(used);
        if (dec.state() != chunked_decoder::status::need_more) break;
        auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(64u << 10),
                                                         asio::as_tuple(asio::use_awaitable));
        if (rec) {
          ec = rec == asio::error::eof ? beast::http::error::partial_message : rec;
          break;
        }
        buffer.commit(rn);
      }
      if (!ec && dec.state() == chunked_decoder::status::too_large)
        ec = beast::http::error::body_limit;
      if (!ec && dec.state() == chunked_decoder::status::malformed) {
        env->stats->bad_requests += 1;
        response res = env->err(400, fmt::format("bad chunked body: {}", dec.error()));
        res.keep_alive(false);
        co_await write_response(stream, res);
        break;
      }
    } else if (!ec) {
      tcp_layer.expires_after(env->opts.request_timeout);
      std::tie(ec, n) = co_await beast::http::async_read(stream, buffer, parser,
                                                          asio::as_tuple(asio::use_awaitable));
    }
    if (ec == beast::http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == beast::error::timeout ||
        ec == asio::ssl::error::stream_truncated)
      break;
    if (ec) {
      bool large = ec == beast::http::error::body_limit;
      (large ? env->stats->too_large : env->stats->bad_requests) += 1;
      response res = env->err(large ? 413 : 400, ec.message());
      res.keep_alive(false);
      co_await write_response(stream, res);
      break;
    }
    env->stats->requests += 1;
    request req = parser.release();
    // The headers stay as received (a SigV4 signature may cover Transfer-Encoding).
    if (chunked) req.body() = std::move(chunked_body);
    bool keep = req.keep_alive();
    response res = co_await env->h(std::move(req), peer);
    // status::unknown asks for the connection to be dropped without an answer (the
    // server's fault injection uses it to imitate a lost connection).
    if (res.result() == beast::http::status::unknown) {
      boost::system::error_code ignored;
      tcp_layer.socket().close(ignored);
      co_return;
    }
    res.keep_alive(keep && !env->stopping->load());
    co_await write_response(stream, res);
    if (!res.keep_alive()) break;
  }
}

asio::awaitable<void> run_session(tcp::socket socket, std::shared_ptr<session_env> env) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  peer_info peer{socket.remote_endpoint(ignored)};
  if (!env->tls) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve_requests(stream, peer, env);
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *env->tls);
  beast::get_lowest_layer(stream).expires_after(env->opts.request_timeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                              asio::as_tuple(asio::use_awaitable));
  if (ec) {
    env->stats->tls_failures += 1;
    spdlog::debug("http: TLS handshake with {} failed: {}", peer.remote.address().to_string(),
                  ec.message());
    co_return;
  }
  co_await serve_requests(stream, peer, env);
  if (!beast::get_lowest_layer(stream).socket().is_open()) co_return;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  auto [sec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
  (void)sec;  // the peer may just close: nothing left to protect
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<session_env> env) {
  auto last_warning = std::chrono::steady_clock::time_point{};
  for (size_t next = 0;; ++next) {
    auto ex = env->workers[next % env->workers.size()]->get_executor();
    auto [ec, socket] =
        co_await acceptor.async_accept(ex, asio::as_tuple(asio::use_awaitable));
    if (env->stopping->load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // E.g. EMFILE: keep serving the connections we have. accept() fails at once while the
      // condition lasts, so pause before the next try (the backlog holds the connections
      // waiting) and say so at most every 10 s, not once per try.
      uint64_t n = env->stats->accept_errors.fetch_add(1) + 1;
      auto now = std::chrono::steady_clock::now();
      if (now - last_warning >= std::chrono::seconds(10)) {
        spdlog::warn("http: accept failed: {} ({} accept errors so far; pausing accepts for "
                     "100 ms after each)",
                     ec.message(), n);
        last_warning = now;
      }
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      if (env->stopping->load()) co_return;
      continue;
    }
    env->stats->connections += 1;
    asio::co_spawn(ex, run_session(std::move(socket), env), asio::detached);
  }
}

}  // namespace

result<std::shared_ptr<asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                             const std::string& key_file,
                                                             std::string* error) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    if (error) *error = fmt::format("TLS certificate {}: {}", cert_file, ec.message());
    return ec;
  }
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    if (error) *error = fmt::format("TLS private key {}: {}", key_file, ec.message());
    return ec;
  }
  return ctx;
}

server::server(std::vector<asio::io_context*> workers, server_options o, handler h,
               error_responder e)
    : workers_(std::move(workers)),
      opts_(std::move(o)),
      handler_(std::move(h)),
      error_(std::move(e)) {}

server::~server() { stop(); }

result<void> server::start() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return ec;
  tcp::endpoint ep(addr, opts_.port);
  acceptor_ = std::make_unique<tcp::acceptor>(*workers_.front());
  if (acceptor_->open(ep.protocol(), ec); ec) return ec;
  if (acceptor_->set_option(tcp::acceptor::reuse_address(true), ec); ec) return ec;
  if (acceptor_->bind(ep, ec); ec) return ec;
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec); ec) return ec;
  port_ = acceptor_->local_endpoint().port();
  auto env = std::make_shared<session_env>(
      session_env{workers_, opts_, handler_, error_, stats_, stopping_, opts_.tls});
  asio::co_spawn(acceptor_->get_executor(), accept_loop(*acceptor_, env), asio::detached);
  return {};
}

void server::stop() {
  stopping_->store(true);
  if (acceptor_) {
    boost::system::error_code ec;
    acceptor_->close(ec);
  }
}

}  // namespace sqsrelay::http
