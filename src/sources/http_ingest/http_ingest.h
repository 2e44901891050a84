// The HTTP ingest source: turns POST bodies into batches for a route's queue and answers
// 200 {"accepted": N} only once the sink says they are durable (or delivered, for
// `ack = delivered` routes). Runs inside the project's HTTP server (http/server.h):
//
//   auto ingest = http_ingest::make(opts, sink, err);        // validates the options
//   http::server srv(workers, ingest->server_options(host, port),
//       [&](http::request r, http::peer_info p) { return ingest->handle(std::move(r), p); },
//       [&](int s, std::string_view why) { return ingest->transport_error(s, why); });
//
// Endpoints: POST /queues/{name}/messages, POST <route path>, GET /healthz. Security
// (token, allowlist, X-Forwarded-For from trusted proxies, in-flight bytes) is checked on
// the header before the body is read (server_options().check_header) and again in
// handle(). Thread-safe: handle() runs concurrently on every I/O thread; each request
// borrows a body_parser from a small pool.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/server.h"
#include "sources/http_ingest/access_policy.h"
#include "sources/http_ingest/body_parser.h"
#include "sources/http_ingest/ingest_types.h"
#include "sources/http_ingest/probe.h"

namespace sqsrelay::sources {

class http_ingest {
 public:
  // Validates and normalizes the options (CIDRs, route paths, duplicate routes, field
  // pointers, attribute names and types, FIFO routes without a group id field). Empty
  // with `err` set when they are wrong. `sink` must outlive the object.
  static std::unique_ptr<http_ingest> make(ingest_options opts, ingest_sink& sink,
                                           std::string& err);

  // The checks make() runs, for configuration loaders: normalizes `opts` in place (field
  // names become JSON Pointers) and returns the first problem, if any.
  static std::optional<std::string> validate(ingest_options& opts);

  // Refuses a listener on a non-loopback address when no token is configured, unless
  // `allow_insecure` (DESIGN.md §3.7). Empty when fine, else the message.
  static std::optional<std::string> check_bind(std::string_view host, const ingest_options& opts,
                                               bool allow_insecure);

  // The HTTP server options this source needs: body limit and the header check.
  http::server_options server_options(std::string host, uint16_t port);

  boost::asio::awaitable<http::response> handle(http::request req, http::peer_info peer);
  http::admission check_header(const http::request_header& h, const http::peer_info& peer);
  http::response transport_error(int status, std::string_view reason);

  // Prometheus text of the counters below.
  std::string metrics_text() const;
  // Prometheus text of several listeners (name, listener): one HELP/TYPE per family, a
  // `listener="<name>"` label on every sample.
  static std::string metrics_text(
      std::span<const std::pair<std::string, const http_ingest*>> listeners);
  const ingest_probe& probe() const { return probe_; }
  uint64_t inflight_bytes() const { return inflight_->load(); }
  const ingest_options& options() const { return opts_; }
  // /healthz answers 503 while unhealthy: set_healthy(false), or `check` (asked on every
  // /healthz; set before serving) names a reason, e.g. the store behind the ingest failed.
  // Healthy by default.
  void set_healthy(bool h) { healthy_.store(h); }
  void set_health_check(std::function<std::string()> check) { health_check_ = std::move(check); }

 private:
  http_ingest(ingest_options opts, ingest_sink& sink, access_policy policy);
  // Token and address checks; a response when denied.
  std::optional<http::response> authorize(const http::request_header& h,
                                          const http::peer_info& peer);
  const route_options* find_route(std::string_view path, std::string& queue) const;
  boost::asio::awaitable<http::response> ingest(http::request req, const route_options* route,
                                                std::string queue);
  http::response reply(int status, std::string body);
  http::response undelivered_reply(const route_options& route, size_t accepted, size_t dead,
                                   std::vector<element_error> errors,
                                   std::span<const undelivered_message> undelivered);
  std::unique_ptr<body_parser> borrow_parser();
  void give_back(std::unique_ptr<body_parser> p);

  ingest_options opts_;
  ingest_sink& sink_;
  access_policy policy_;
  std::unordered_map<std::string, size_t> routes_;  // path -> index in opts_.routes
  ingest_probe probe_;
  std::atomic<bool> healthy_{true};
  std::function<std::string()> health_check_;
  // Shared with the leases of requests in flight, which may outlive this object when the
  // server's sessions are destroyed after it (io_context teardown).
  std::shared_ptr<std::atomic<uint64_t>> inflight_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::mutex parsers_mu_;
  std::vector<std::unique_ptr<body_parser>> parsers_;  // guarded by parsers_mu_
};

}  // namespace sqsrelay::sources
