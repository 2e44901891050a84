#include "http/client.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <deque>
#include <optional>
#include <stdexcept>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace sqsrelay::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class client_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqsrelay.http.client"; }
  std::string message(int ev) const override {
    switch (static_cast<client_errc>(ev)) {
      case client_errc::invalid_url: return "invalid URL";
      case client_errc::resolve_failed: return "DNS lookup failed";
      case client_errc::resolve_timeout: return "DNS lookup timed out";
      case client_errc::connect_failed: return "connect failed";
      case client_errc::connect_timeout: return "connect timed out";
      case client_errc::tls_handshake_failed: return "TLS handshake failed";
      case client_errc::certificate_verify_failed: return "TLS certificate verification failed";
      case client_errc::tls_setup_failed: return "TLS setup failed";
      case client_errc::request_timeout: return "request timed out";
      case client_errc::pool_timeout: return "timed out waiting for a free connection";
      case client_errc::connection_closed: return "connection closed by the peer";
      case client_errc::write_failed: return "write failed";
      case client_errc::read_failed: return "read failed";
      case client_errc::bad_response: return "malformed HTTP response";
      case client_errc::response_too_large: return "response body too large";
    }
    return "unknown http client error";
  }
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Parses a response straight into an `incoming`: Beast's response_parser<string_body> would
// allocate a fields node per header and a fresh body string per response.
class response_reader final : public beast::http::basic_parser<false> {
 public:
  response_reader(incoming& res, size_t body_limit_bytes) : res_(res) {
    res_.clear();
    body_limit(body_limit_bytes);
  }

 private:
  void on_request_impl(beast::http::verb, beast::string_view, beast::string_view, int,
                       error_code& ec) override {
    ec = beast::http::error::bad_method;  // unreachable for a response parser
  }
  void on_response_impl(int code, beast::string_view, int, error_code&) override {
    res_.status = code;
  }
  void on_field_impl(beast::http::field, beast::string_view name, beast::string_view value,
                     error_code&) override {
    res_.add_header({name.data(), name.size()}, {value.data(), value.size()});
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<uint64_t>& n, error_code&) override {
    // Beast has already refused a Content-Length over the body limit.
    if (n) res_.body.reserve(static_cast<size_t>(*n));
  }
  size_t on_body_impl(beast::string_view b, error_code&) override {
    res_.body.append(b.data(), b.size());
    return b.size();
  }
  void on_chunk_header_impl(uint64_t, beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(uint64_t, beast::string_view b, error_code&) override {
    res_.body.append(b.data(), b.size());
    return b.size();
  }
  void on_finish_impl(error_code&) override {}

  incoming& res_;
};

struct connection {
  explicit connection(const asio::any_io_executor& ex) : tcp(ex) {}
  beast::tcp_stream tcp;
  std::unique_ptr<ssl::stream<beast::tcp_stream&>> tls;  // set for https origins
  beast::flat_buffer buf;  // read buffer, kept across requests
  std::string head;        // serialized request head (plus the body for TLS), reused
  steady::time_point idle_since{};
  bool reused = false;
};

struct host_pool {
  origin o;
  std::string host_header;
  std::string label;  // "host:port" for messages
  std::string port_text;
  bool ip_literal = false;
  std::vector<std::unique_ptr<connection>> idle;  // most recently used at the back
  size_t open = 0;                                // idle + busy + connecting
  std::deque<asio::steady_timer*> waiters;        // requests waiting for a slot, FIFO
};

// True when an idle connection can carry another request: no FIN, no stray bytes. One
// non-blocking peek; cheaper than a failed request and a retry.
bool looks_alive(connection& c) {
  if (c.buf.size() != 0) return false;
  char b;
  ssize_t n = ::recv(c.tcp.socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  return false;
}

bool is_closed_error(const error_code& ec) {
  return ec == asio::error::eof || ec == beast::http::error::end_of_stream ||
         ec == beast::http::error::partial_message || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

std::string millis(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000)
                               : fmt::format("{} ms", d.count());
}

client_error make_error(client_errc code, error_code cause, std::string message, bool sent) {
  return client_error{code, cause, std::move(message), sent};
}

// Outcome of one request on one connection.
struct exchange_outcome {
  std::optional<client_error> error;
  bool got_response_bytes = false;
};

}  // namespace

const boost::system::error_category& client_category() {
  static const client_category_impl c;
  return c;
}

void throw_exception_from_error(const client_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

std::string origin::host_header() const {
  bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::string origin::to_string() const { return (tls ? "https://" : "http://") + host_header(); }

result<origin> parse_origin(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return make_error_code(client_errc::invalid_url);
  origin o;
  auto scheme = u->scheme();
  if (iequals(scheme, "https")) {
    o.tls = true;
  } else if (!iequals(scheme, "http")) {
    return make_error_code(client_errc::invalid_url);
  }
  if (!u->has_authority()) return make_error_code(client_errc::invalid_url);
  // Host and port come from the authority's text: Boost.URL 1.81 ends a host that starts like
  // an IPv4 address early ("10.1.2.3.sslip.io:4566" parses as host 10.1.2.3 with the rest as
  // path), and its port_number() wraps ports above 65535.
  std::string_view auth = url.substr(url.find("//") + 2);
  auth = auth.substr(0, auth.find_first_of("/?#"));
  if (auto at = auth.rfind('@'); at != std::string_view::npos) auth.remove_prefix(at + 1);
  std::string_view host, port;
  bool has_port = false;
  if (!auth.empty() && auth.front() == '[') {
    const size_t close = auth.find(']');
    if (close == std::string_view::npos) return make_error_code(client_errc::invalid_url);
    host = auth.substr(1, close - 1);
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error_code(client_errc::invalid_url);
      has_port = true;
      port = after.substr(1);
    }
  } else {
    const size_t colon = auth.rfind(':');
    host = auth.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = auth.substr(colon + 1);
    }
  }
  if (host.empty()) return make_error_code(client_errc::invalid_url);
  o.host = std::string(host);
  for (auto& ch : o.host)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  o.port = o.tls ? 443 : 80;
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535)
      return make_error_code(client_errc::invalid_url);
    o.port = static_cast<uint16_t>(value);
  }
  return o;
}

void outgoing::reset(std::string_view m, std::string_view t) {
  method = m;
  target.assign(t);
  body.clear();
  nheaders_ = 0;
  timeout = std::chrono::milliseconds{0};
}

void outgoing::add_header(std::string_view name, std::string_view value) {
  if (nheaders_ == headers_.size()) headers_.emplace_back();
  headers_[nheaders_].first.assign(name);
  headers_[nheaders_].second.assign(value);
  ++nheaders_;
}

std::string_view incoming::header(std::string_view name) const {
  for (size_t i = 0; i < nheaders_; ++i)
    if (iequals(headers_[i].first, name)) return headers_[i].second;
  return {};
}

void incoming::clear() {
  status = 0;
  body.clear();
  keep_alive = true;
  nheaders_ = 0;
}

void incoming::add_header(std::string_view name, std::string_view value) {
  if (nheaders_ == headers_.size()) headers_.emplace_back();
  headers_[nheaders_].first.assign(name);
  headers_[nheaders_].second.assign(value);
  ++nheaders_;
}

struct client::impl {
  impl(asio::any_io_executor e, client_options o) : ex(std::move(e)), opts(std::move(o)) {}

  asio::awaitable<client_result<std::unique_ptr<connection>>> acquire(host_pool& p,
                                                                      steady::time_point deadline);
  asio::awaitable<client_result<std::unique_ptr<connection>>> connect(host_pool& p,
                                                                      steady::time_point deadline);
  asio::awaitable<std::optional<client_error>> handshake(host_pool& p, connection& c,
                                                         std::chrono::milliseconds limit);
  asio::awaitable<exchange_outcome> exchange(host_pool& p, connection& c, const outgoing& req,
                                             incoming& res, steady::time_point deadline,
                                             std::chrono::milliseconds timeout);
  void release(host_pool& p, std::unique_ptr<connection> c, bool keep);
  void wake_one(host_pool& p);

  asio::any_io_executor ex;
  client_options opts;
  client_stats stats;
  std::unique_ptr<ssl::context> tls_ctx;
  std::vector<std::unique_ptr<host_pool>> pools;
};

void client::impl::wake_one(host_pool& p) {
  if (p.waiters.empty()) return;
  asio::steady_timer* t = p.waiters.front();
  p.waiters.pop_front();
  t->cancel();
}

void client::impl::release(host_pool& p, std::unique_ptr<connection> c, bool keep) {
  if (keep && c->buf.size() == 0) {
    c->idle_since = steady::now();
    p.idle.push_back(std::move(c));
  } else {
    boost::system::error_code ignored;
    c->tcp.socket().close(ignored);
    --p.open;
  }
  wake_one(p);
}

asio::awaitable<client_result<std::unique_ptr<connection>>> client::impl::acquire(
    host_pool& p, steady::time_point deadline) {
  for (;;) {
    while (!p.idle.empty()) {
      std::unique_ptr<connection> c = std::move(p.idle.back());
      p.idle.pop_back();
      if (steady::now() - c->idle_since <= opts.idle_timeout && looks_alive(*c)) {
        c->reused = true;
        stats.connections_reused.fetch_add(1, std::memory_order_relaxed);
        co_return c;
      }
      stats.stale_dropped.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      c->tcp.socket().close(ignored);
      --p.open;  // the slot is ours to reuse right away
    }
    if (p.open < opts.max_connections_per_origin) {
      ++p.open;
      auto r = co_await connect(p, deadline);
      if (!r) {
        --p.open;
        wake_one(p);
      }
      co_return r;
    }
    stats.pool_waits.fetch_add(1, std::memory_order_relaxed);
    asio::steady_timer t(ex, deadline);
    p.waiters.push_back(&t);
    auto [ec] = co_await t.async_wait(use_tuple);
    if (!ec) {  // the deadline passed
      auto it = std::find(p.waiters.begin(), p.waiters.end(), &t);
      if (it != p.waiters.end()) {
        p.waiters.erase(it);
      } else {
        wake_one(p);  // a release chose us just as we timed out: pass it on
      }
      co_return make_error(client_errc::pool_timeout, {},
                           fmt::format("no free connection to {} (all {} busy) before the "
                                       "request timeout",
                                       p.label, opts.max_connections_per_origin),
                           false);
    }
  }
}

asio::awaitable<client_result<std::unique_ptr<connection>>> client::impl::connect(
    host_pool& p, steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  auto limit = std::max(std::chrono::milliseconds(1), std::min(opts.connect_timeout, left));
  auto c = std::make_unique<connection>(ex);
  c->buf.reserve(16u << 10);
  error_code ec;
  if (p.ip_literal) {
    tcp::endpoint ep(asio::ip::make_address(p.o.host), p.o.port);
    c->tcp.expires_after(limit);
    std::tie(ec) = co_await c->tcp.async_connect(ep, use_tuple);
  } else {
    // Asio's resolver has no timeout of its own: a timer cancels it. The timer's handler
    // holds only a weak reference, so it is safe whenever it runs.
    auto resolver = std::make_shared<tcp::resolver>(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(limit);
    std::weak_ptr<tcp::resolver> weak = resolver;
    timer.async_wait([weak](error_code e) {
      if (!e)
        if (auto r = weak.lock()) r->cancel();
    });
    auto [rec, results] = co_await resolver->async_resolve(p.o.host, p.port_text, use_tuple);
    bool timed_out = rec == asio::error::operation_aborted && steady::now() >= timer.expiry();
    timer.cancel();
    if (rec) {
      co_return make_error(
          timed_out ? client_errc::resolve_timeout : client_errc::resolve_failed, rec,
          timed_out ? fmt::format("DNS lookup of {} timed out after {}", p.o.host, millis(limit))
                    : fmt::format("DNS lookup of {} failed: {}", p.o.host, rec.message()),
          false);
    }
    c->tcp.expires_after(limit);
    tcp::endpoint chosen;
    std::tie(ec, chosen) = co_await c->tcp.async_connect(results, use_tuple);
  }
  if (ec == beast::error::timeout) {
    stats.timeouts.fetch_add(1, std::memory_order_relaxed);
    co_return make_error(client_errc::connect_timeout, ec,
                         fmt::format("connect to {} timed out after {}", p.label, millis(limit)),
                         false);
  }
  if (ec) {
    co_return make_error(client_errc::connect_failed, ec,
                         fmt::format("connect to {} failed: {}", p.label, ec.message()), false);
  }
  boost::system::error_code ignored;
  c->tcp.socket().set_option(tcp::no_delay(true), ignored);
  if (p.o.tls) {
    if (auto err = co_await handshake(p, *c, limit)) co_return std::move(*err);
  }
  stats.connections_opened.fetch_add(1, std::memory_order_relaxed);
  co_return c;
}

asio::awaitable<std::optional<client_error>> client::impl::handshake(
    host_pool& p, connection& c, std::chrono::milliseconds limit) {
  c.tls = std::make_unique<ssl::stream<beast::tcp_stream&>>(c.tcp, *tls_ctx);
  SSL* s = c.tls->native_handle();
  // SNI, for names only. SSL_set_tlsext_host_name is a macro with an old-style cast.
  if (!p.ip_literal)
    SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(p.o.host.c_str()));
  if (opts.verify_tls) {
    c.tls->set_verify_mode(ssl::verify_peer);
    // OpenSSL checks the name (or IP) against the certificate's SANs during the handshake,
    // and reports a mismatch as X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH.
    int ok = p.ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), p.o.host.c_str())
                          : SSL_set1_host(s, p.o.host.c_str());
    if (ok != 1) {
      co_return make_error(client_errc::tls_setup_failed, {},
                           fmt::format("TLS to {}: cannot set the expected host name", p.label),
                           false);
    }
  } else {
    c.tls->set_verify_mode(ssl::verify_none);
  }
  c.tcp.expires_after(limit);
  auto [ec] = co_await c.tls->async_handshake(ssl::stream_base::client, use_tuple);
  if (!ec) co_return std::nullopt;
  long verify = SSL_get_verify_result(s);
  if (opts.verify_tls && verify != X509_V_OK) {
    co_return make_error(
        client_errc::certificate_verify_failed, ec,
        fmt::format("TLS certificate verification failed for {}: {}{}", p.label,
                    X509_verify_cert_error_string(verify),
                    opts.ca_file.empty() ? " (trusted CAs: the system's default paths)"
                                         : " (trusted CAs: " + opts.ca_file + ")"),
        false);
  }
  if (ec == beast::error::timeout) {
    stats.timeouts.fetch_add(1, std::memory_order_relaxed);
    co_return make_error(client_errc::connect_timeout, ec,
                         fmt::format("TLS handshake with {} timed out after {}", p.label,
                                     millis(limit)),
                         false);
  }
  co_return make_error(client_errc::tls_handshake_failed, ec,
                       fmt::format("TLS handshake with {} failed: {}", p.label, ec.message()),
                       false);
}

namespace {

// The request head, by hand into a reused string: Beast's serializer allocates and costs
// far more than these few appends.
void write_head(std::string& head, const host_pool& p, const outgoing& req) {
  head.clear();
  head.append(req.method);
  head += ' ';
  head += req.target;
  head += " HTTP/1.1\r\nHost: ";
  head += p.host_header;
  head += "\r\n";
  for (size_t i = 0; i < req.header_count(); ++i) {
    const auto& [n, v] = req.header(i);
    head += n;
    head += ": ";
    head += v;
    head += "\r\n";
  }
  head += "Content-Length: ";
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, req.body.size());
  head.append(digits, end);
  head += "\r\n\r\n";
}

template <class Stream, class Buffers>
asio::awaitable<error_code> write_all(Stream& s, Buffers bufs) {
  auto [ec, n] = co_await asio::async_write(s, bufs, use_tuple);
  co_return ec;
}

template <class Stream>
asio::awaitable<error_code> read_response(Stream& s, beast::flat_buffer& buf,
                                          response_reader& parser) {
  auto [ec, n] = co_await beast::http::async_read(s, buf, parser, use_tuple);
  co_return ec;
}

}  // namespace

asio::awaitable<exchange_outcome> client::impl::exchange(host_pool& p, connection& c,
                                                         const outgoing& req, incoming& res,
                                                         steady::time_point deadline,
                                                         std::chrono::milliseconds timeout) {
  exchange_outcome out;
  write_head(c.head, p, req);
  c.tcp.expires_at(deadline);
  error_code ec;
  if (c.tls) {
    // One buffer: asio's SSL stream writes one record per buffer of a sequence.
    c.head += req.body;
    ec = co_await write_all(*c.tls, asio::buffer(c.head));
  } else {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(c.head), asio::buffer(req.body)};
    ec = co_await write_all(c.tcp, bufs);
  }
  if (!ec) {
    response_reader parser(res, opts.max_response_body);
    // No co_await inside a ternary (GCC 12 miscompiles it).
    if (c.tls) {
      ec = co_await read_response(*c.tls, c.buf, parser);
    } else {
      ec = co_await read_response(c.tcp, c.buf, parser);
    }
    out.got_response_bytes = parser.got_some();
    if (!ec) {
      res.keep_alive = parser.keep_alive();
      co_return out;
    }
  }
  if (ec == beast::error::timeout) {
    stats.timeouts.fetch_add(1, std::memory_order_relaxed);
    out.error = make_error(client_errc::request_timeout, ec,
                           fmt::format("{} {} to {}: no complete response within {}", req.method,
                                       req.target, p.label, millis(timeout)),
                           true);
  } else if (is_closed_error(ec)) {
    out.error = make_error(client_errc::connection_closed, ec,
                           fmt::format("{} {} to {}: the connection was closed before the "
                                       "response was complete ({})",
                                       req.method, req.target, p.label, ec.message()),
                           true);
  } else if (ec == beast::http::error::body_limit) {
    out.error = make_error(client_errc::response_too_large, ec,
                           fmt::format("{} {} to {}: response body over {} bytes", req.method,
                                       req.target, p.label, opts.max_response_body),
                           true);
  } else if (ec.category() == make_error_code(beast::http::error::bad_version).category()) {
    out.error = make_error(client_errc::bad_response, ec,
                           fmt::format("{} {} to {}: malformed HTTP response: {}", req.method,
                                       req.target, p.label, ec.message()),
                           true);
  } else {
    out.error = make_error(client_errc::read_failed, ec,
                           fmt::format("{} {} to {}: {}", req.method, req.target, p.label,
                                       ec.message()),
                           true);
  }
  co_return out;
}

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::~client() = default;

client_result<std::unique_ptr<client>> client::create(asio::any_io_executor ex, client_options o) {
  auto m = std::make_unique<impl>(std::move(ex), std::move(o));
  m->tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  m->tls_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                              ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                              ssl::context::no_tlsv1_1,
                          ec);
  if (m->opts.ca_file.empty()) {
    m->tls_ctx->set_default_verify_paths(ec);
    if (ec) {
      return make_error(client_errc::tls_setup_failed, ec,
                        fmt::format("TLS: cannot use the system's CA paths: {}", ec.message()),
                        false);
    }
  } else {
    m->tls_ctx->load_verify_file(m->opts.ca_file, ec);
    if (ec) {
      return make_error(client_errc::tls_setup_failed, ec,
                        fmt::format("TLS: cannot load the CA file {}: {}", m->opts.ca_file,
                                    ec.message()),
                        false);
    }
  }
  return std::unique_ptr<client>(new client(std::move(m)));
}

origin_id client::add_origin(const origin& o) {
  auto& pools = impl_->pools;
  for (size_t i = 0; i < pools.size(); ++i) {
    const origin& x = pools[i]->o;
    if (x.tls == o.tls && x.host == o.host && x.port == o.port) return i;
  }
  auto p = std::make_unique<host_pool>();
  p->o = o;
  p->host_header = o.host_header();
  p->port_text = std::to_string(o.port);
  bool v6 = o.host.find(':') != std::string::npos;
  p->label = v6 ? fmt::format("[{}]:{}", o.host, o.port) : fmt::format("{}:{}", o.host, o.port);
  boost::system::error_code ec;
  asio::ip::make_address(o.host, ec);
  p->ip_literal = !ec;
  pools.push_back(std::move(p));
  return pools.size() - 1;
}

const origin& client::origin_of(origin_id id) const { return impl_->pools.at(id)->o; }

asio::awaitable<client_result<void>> client::execute(origin_id id, const outgoing* req,
                                                     incoming* res) {
  impl& m = *impl_;
  host_pool& p = *m.pools.at(id);
  auto timeout = req->timeout.count() > 0 ? req->timeout : m.opts.request_timeout;
  auto deadline = steady::now() + timeout;
  m.stats.requests.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    auto got = co_await m.acquire(p, deadline);
    if (!got) {
      m.stats.errors.fetch_add(1, std::memory_order_relaxed);
      co_return got.error();
    }
    std::unique_ptr<connection> c = std::move(*got);
    bool reused = c->reused;
    exchange_outcome out = co_await m.exchange(p, *c, *req, *res, deadline, timeout);
    if (!out.error) {
      bool keep = res->keep_alive;
      m.release(p, std::move(c), keep);
      co_return client_result<void>{};
    }
    m.release(p, std::move(c), false);
    // A pooled connection the server had closed while it idled (and the peek missed it):
    // the request never reached a live connection, so one retry on a fresh one.
    bool stale = reused && !out.got_response_bytes &&
                 out.error->code == client_errc::connection_closed;
    if (stale && attempt == 0 && m.opts.retry_stale_once) {
      m.stats.stale_retries.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    m.stats.errors.fetch_add(1, std::memory_order_relaxed);
    co_return std::move(*out.error);
  }
}

void client::close_idle() {
  for (auto& p : impl_->pools) {
    for (auto& c : p->idle) {
      boost::system::error_code ignored;
      c->tcp.socket().close(ignored);
      --p->open;
    }
    p->idle.clear();
  }
}

const client_stats& client::stats() const { return impl_->stats; }
const client_options& client::options() const { return impl_->opts; }
asio::any_io_executor client::get_executor() const { return impl_->ex; }

}  // namespace sqsrelay::http
