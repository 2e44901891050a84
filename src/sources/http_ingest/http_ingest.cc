#include "sources/http_ingest/http_ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "sqs/json_text.h"

namespace sqsrelay::sources {

namespace beast_http = boost::beast::http;

namespace {

constexpr std::string_view builtin_route = "/queues/{name}/messages";
constexpr size_t max_listed_errors = 100;

// SQS queue names: 1..80 of [A-Za-z0-9_-], FIFO queues ending in ".fifo".
bool valid_queue_name(std::string_view q) {
  std::string_view base = q.ends_with(".fifo") ? q.substr(0, q.size() - 5) : q;
  if (q.empty() || q.size() > 80 || base.empty()) return false;
  return std::all_of(base.begin(), base.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void append_errors(std::string& out, std::span<const element_error> errors) {
  out += "\"errors\":[";
  size_t n = std::min(errors.size(), max_listed_errors);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = errors[i];
    if (i) out += ',';
    fmt::format_to(std::back_inserter(out), "{{\"index\":{},\"offset\":{},", e.index, e.offset);
    sqs::append_json_member(out, "reason", e.reason);
    out += ',';
    sqs::append_json_member(out, "message", e.detail);
    out += '}';
  }
  out += ']';
  if (errors.size() > n)
    fmt::format_to(std::back_inserter(out), ",\"errors_total\":{}", errors.size());
}

std::string error_body(std::string_view code, std::string_view message) {
  std::string b = "{";
  sqs::append_json_member(b, "error", code);
  b += ',';
  sqs::append_json_member(b, "message", message);
  b += '}';
  return b;
}

std::optional<std::string> validate_route(route_options& r, bool builtin) {
  auto where = builtin ? std::string("the /queues/{name}/messages route")
                       : fmt::format("route '{}'", r.path);
  if (!builtin) {
    if (r.path.empty() || r.path.front() != '/' || r.path.find('?') != std::string::npos)
      return fmt::format("{}: the path must start with '/' and have no query", where);
    if (r.path == "/healthz") return fmt::format("{}: /healthz is reserved", where);
    if (!valid_queue_name(r.queue))
      return fmt::format(
          "{}: '{}' is not a valid queue name (1 to 80 letters, digits, '-' "
          "or '_', optionally ending in .fifo)",
          where, r.queue);
    if (r.queue.ends_with(".fifo") && r.group_id_field.empty())
      return fmt::format("{}: FIFO queue '{}' needs group_id_field", where, r.queue);
  }
  if (r.max_message_bytes == 0 || r.max_message_bytes > sqs::max_batch_bytes)
    return fmt::format("{}: max_message_bytes must be from 1 to {}", where, sqs::max_batch_bytes);
  if (r.attributes.size() > sqs::max_message_attributes)
    return fmt::format("{}: at most {} attributes", where, sqs::max_message_attributes);
  for (size_t i = 0; i < r.attributes.size(); ++i) {
    auto& a = r.attributes[i];
    if (a.field.empty()) return fmt::format("{}: attribute '{}' has no field", where, a.name);
    a.field = field_pointer(a.field);
    std::string_view base = std::string_view(a.data_type).substr(0, a.data_type.find('.'));
    if (base != "String" && base != "Number")
      return fmt::format(
          "{}: attribute '{}': type must be String or Number (with an optional "
          ".label), not '{}'",
          where, a.name, a.data_type);
    sqs::attribute_view probe{a.name, a.data_type, base == "Number" ? "1" : "x", false};
    if (auto err = sqs::validate_attributes(std::span(&probe, 1)))
      return fmt::format("{}: attribute '{}': {}", where, a.name, err->message);
    for (size_t j = 0; j < i; ++j)
      if (r.attributes[j].name == a.name)
        return fmt::format("{}: attribute '{}' is declared twice", where, a.name);
  }
  r.group_id_field = field_pointer(r.group_id_field);
  r.dedup_id_field = field_pointer(r.dedup_id_field);
  r.records_field = field_pointer(r.records_field);
  return std::nullopt;
}

uint64_t content_length(const http::request_header& h) {
  auto v = h[beast_http::field::content_length];
  uint64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

std::optional<std::string> http_ingest::validate(ingest_options& opts) {
  std::string err;
  if (!access_policy::make(opts.tokens, opts.allow_cidrs, opts.trusted_proxies, err)) return err;
  if (opts.token_header.empty()) return "token_header must not be empty";
  if (opts.json_max_depth < 2 || opts.json_max_depth > 10000)
    return "json_max_depth must be from 2 to 10000";
  if (opts.max_body_bytes == 0 || opts.max_inflight_bytes < opts.max_body_bytes)
    return "max_inflight_bytes must be at least max_body_bytes (and max_body_bytes above 0)";
  if (auto e = validate_route(opts.queue_route_defaults, true)) return e;
  std::unordered_map<std::string_view, size_t> paths;
  for (size_t i = 0; i < opts.routes.size(); ++i) {
    if (auto e = validate_route(opts.routes[i], false)) return e;
    if (!paths.emplace(opts.routes[i].path, i).second)
      return fmt::format("route '{}' is declared twice", opts.routes[i].path);
  }
  return std::nullopt;
}

std::unique_ptr<http_ingest> http_ingest::make(ingest_options opts, ingest_sink& sink,
                                               std::string& err) {
  if (auto e = validate(opts)) {
    err = std::move(*e);
    return nullptr;
  }
  auto policy = access_policy::make(opts.tokens, opts.allow_cidrs, opts.trusted_proxies, err);
  auto p = std::unique_ptr<http_ingest>(new http_ingest(std::move(opts), sink, std::move(*policy)));
  for (size_t i = 0; i < p->opts_.routes.size(); ++i)
    p->routes_.emplace(p->opts_.routes[i].path, i);
  return p;
}

std::optional<std::string> http_ingest::check_bind(std::string_view host,
                                                   const ingest_options& opts,
                                                   bool allow_insecure) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return fmt::format("'{}' is not an IP address", host);
  if (addr.is_loopback() || !opts.tokens.empty() || allow_insecure) return std::nullopt;
  return fmt::format(
      "refusing to accept ingest on {} without a token: a non-loopback listener needs at "
      "least one ingest token (or the explicit allow-insecure setting)",
      host);
}

http_ingest::http_ingest(ingest_options opts, ingest_sink& sink, access_policy policy)
    : opts_(std::move(opts)), sink_(sink), policy_(std::move(policy)) {}

http::server_options http_ingest::server_options(std::string host, uint16_t port) {
  http::server_options so;
  so.host = std::move(host);
  so.port = port;
  so.body_limit = opts_.max_body_bytes;
  so.check_header = [this](const http::request_header& h, const http::peer_info& p) {
    return check_header(h, p);
  };
  return so;
}

http::response http_ingest::reply(int status, std::string body) {
  http::response res{static_cast<beast_http::status>(status), 11};
  res.set(beast_http::field::content_type, "application/json");
  res.body() = std::move(body);
  probe_.response(status);
  return res;
}

http::response http_ingest::transport_error(int status, std::string_view reason) {
  std::string_view code = status == 413   ? "too_large"
                          : status == 411 ? "length_required"
                          : status == 501 ? "not_implemented"
                                          : "bad_request";
  return reply(status, error_body(code, reason));
}

std::optional<http::response> http_ingest::authorize(const http::request_header& h,
                                                     const http::peer_info& peer) {
  std::string xff;
  // Beast has no enumerator for it; several such headers are one list, in order.
  for (auto [it, end] = h.equal_range("X-Forwarded-For"); it != end; ++it) {
    if (!xff.empty()) xff += ',';
    xff.append(it->value().data(), it->value().size());
  }
  auto client = policy_.client_address(peer.remote.address(), xff);
  if (!client) {
    probe_.denied(ingest_probe::auth_failure::forwarded_for);
    return reply(400, error_body("bad_forwarded_for", "malformed X-Forwarded-For header"));
  }
  if (!policy_.allowed(*client)) {
    probe_.denied(ingest_probe::auth_failure::address);
    return reply(403, error_body("forbidden", "this client address is not allowed"));
  }
  if (path_of(h.target()) == "/healthz" || !policy_.token_required()) return std::nullopt;
  if (!policy_.token_ok(h[opts_.token_header])) {
    probe_.denied(ingest_probe::auth_failure::token);
    auto res = reply(401, error_body("unauthorized", fmt::format("missing or wrong token in "
                                                                 "the {} header",
                                                                 opts_.token_header)));
    res.set(beast_http::field::www_authenticate, "Bearer");
    return res;
  }
  return std::nullopt;
}

http::admission http_ingest::check_header(const http::request_header& h,
                                          const http::peer_info& peer) {
  http::admission a;
  if (auto denied = authorize(h, peer)) {
    a.reject = std::move(*denied);
    return a;
  }
  // A chunked body's size is unknown until read: it holds the most it may grow to. Every
  // Transfer-Encoding field counts (the server refuses any coding but a final chunked).
  bool chunked = false;
  auto [first, last] = h.equal_range(beast_http::field::transfer_encoding);
  for (auto f = first; f != last; ++f)
    for (auto t : beast_http::token_list{f->value()})
      chunked = chunked || boost::beast::iequals(t, "chunked");
  uint64_t n = chunked ? opts_.max_body_bytes : content_length(h);
  if (n > opts_.max_body_bytes) {
    a.reject = reply(413, error_body("too_large", fmt::format("the body is {} bytes; the limit "
                                                              "is {}",
                                                              n, opts_.max_body_bytes)));
    return a;
  }
  if (n == 0) return a;
  uint64_t before = inflight_->fetch_add(n);
  if (before + n > opts_.max_inflight_bytes) {
    inflight_->fetch_sub(n);
    probe_.inflight_rejected();
    a.reject = reply(503, error_body("overloaded", "too many request bytes in flight; retry"));
    a.reject->set(beast_http::field::retry_after, std::to_string(opts_.retry_after.count()));
    return a;
  }
  auto counter = inflight_;
  a.lease = std::shared_ptr<void>(counter.get(), [counter, n](void*) { counter->fetch_sub(n); });
  return a;
}

const route_options* http_ingest::find_route(std::string_view path, std::string& queue) const {
  if (auto it = routes_.find(std::string(path)); it != routes_.end()) {
    queue = opts_.routes[it->second].queue;
    return &opts_.routes[it->second];
  }
  constexpr std::string_view prefix = "/queues/", suffix = "/messages";
  if (!opts_.queue_route || !path.starts_with(prefix) || !path.ends_with(suffix) ||
      path.size() <= prefix.size() + suffix.size())
    return nullptr;
  queue = std::string(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
  return &opts_.queue_route_defaults;
}

std::unique_ptr<body_parser> http_ingest::borrow_parser() {
  {
    std::lock_guard lock(parsers_mu_);
    if (!parsers_.empty()) {
      auto p = std::move(parsers_.back());
      parsers_.pop_back();
      return p;
    }
  }
  return std::make_unique<body_parser>(opts_.json_max_depth, opts_.max_messages);
}

void http_ingest::give_back(std::unique_ptr<body_parser> p) {
  std::lock_guard lock(parsers_mu_);
  if (parsers_.size() < 64) parsers_.push_back(std::move(p));
}

boost::asio::awaitable<http::response> http_ingest::handle(http::request req,
                                                           http::peer_info peer) {
  probe_.request(req.body().size());
  if (auto denied = authorize(req, peer)) co_return std::move(*denied);
  std::string_view path = path_of(req.target());
  bool get = req.method() == beast_http::verb::get || req.method() == beast_http::verb::head;
  if (path == "/healthz") {
    if (!get) {
      auto res = reply(405, error_body("method_not_allowed", "use GET or HEAD"));
      res.set(beast_http::field::allow, "GET, HEAD");
      co_return res;
    }
    std::string why = health_check_ ? health_check_() : std::string();
    bool ok = healthy_.load() && why.empty();
    std::string body = ok ? R"({"status":"ok"})" : R"({"status":"unavailable"})";
    if (!why.empty()) {
      body = R"({"status":"unavailable","reason":)";
      sqs::append_json_string(body, why);
      body += '}';
    }
    auto res = reply(ok ? 200 : 503, std::move(body));
    // HEAD: the status alone. A body after a HEAD answer would be read as the start of the
    // next response on a keep-alive connection.
    if (req.method() == beast_http::verb::head) res.body().clear();
    co_return res;
  }
  std::string queue;
  const route_options* route = find_route(path, queue);
  if (!route) {
    co_return reply(
        404, error_body("not_found", fmt::format("no ingest route at '{}'; POST to "
                                                 "/queues/{{name}}/messages or a configured route",
                                                 path)));
  }
  if (req.method() != beast_http::verb::post) {
    auto res = reply(405, error_body("method_not_allowed", "use POST"));
    res.set(beast_http::field::allow, "POST");
    co_return res;
  }
  // Compressed bodies are not decoded: say so, rather than "invalid JSON" about the bytes.
  if (auto ce = req[beast_http::field::content_encoding];
      !ce.empty() && !boost::beast::iequals(ce, "identity")) {
    probe_.invalid("unsupported_encoding");
    co_return reply(415, error_body("unsupported_encoding",
                                    fmt::format("Content-Encoding '{}' is not supported; send "
                                                "the body uncompressed",
                                                std::string_view(ce.data(), ce.size()))));
  }
  if (route == &opts_.queue_route_defaults) {
    if (!valid_queue_name(queue))
      co_return reply(
          404, error_body("not_found", fmt::format("'{}' is not a valid queue name", queue)));
    if (queue.ends_with(".fifo") && route->group_id_field.empty())
      co_return reply(400, error_body("fifo_needs_route",
                                      "FIFO queues need a configured route with group_id_field"));
  }
  co_return co_await ingest(std::move(req), route, std::move(queue));
}

boost::asio::awaitable<http::response> http_ingest::ingest(http::request req,
                                                           const route_options* route,
                                                           std::string queue) {
  std::string_view content_type = req[beast_http::field::content_type];
  auto parser = borrow_parser();
  parse_outcome out = parser->parse(*route, content_type, req.body());
  give_back(std::move(parser));
  if (out.request_error) {
    probe_.invalid(out.reason);
    std::string b = error_body(out.reason, out.detail);
    b.pop_back();
    fmt::format_to(std::back_inserter(b), ",\"offset\":{}}}", out.offset);
    // Too many messages is a size limit, like the body's: 413, and retrying cannot help.
    co_return reply(out.reason == "too_many_messages" ? 413 : 400, std::move(b));
  }
  for (const auto& e : out.errors) probe_.invalid(e.reason);
  if (!out.errors.empty() && route->on_invalid == invalid_policy::reject) {
    std::string b = error_body("invalid_elements", out.errors.front().detail);
    b.pop_back();
    b += ',';
    append_errors(b, out.errors);
    b += '}';
    co_return reply(400, std::move(b));
  }
  size_t accepted = out.batch.messages().size();
  size_t dead = out.batch.dead_letters().size();
  std::string body = fmt::format("{{\"accepted\":{}", accepted);
  if (dead) {
    fmt::format_to(std::back_inserter(body), ",\"dead_lettered\":{},", dead);
    append_errors(body, out.errors);
  }
  body += '}';
  if (accepted + dead == 0) co_return reply(200, std::move(body));

  ingest_target target{std::move(queue),
                       route->path.empty() ? std::string(builtin_route) : route->path, route->ack};
  req = {};  // the batch holds what it needs; free the body before waiting on the sink
  submit_result r = co_await sink_.async_submit(std::move(target), std::move(out.batch));
  switch (r.status) {
    case submit_result::kind::accepted:
      if (!r.undelivered.empty())
        co_return undelivered_reply(*route, accepted, dead, std::move(out.errors), r.undelivered);
      probe_.accepted(accepted);
      probe_.dead_lettered(dead);
      co_return reply(200, std::move(body));
    case submit_result::kind::retry_after: {
      probe_.sink_retry();
      auto res = reply(503, error_body("unavailable", r.reason));
      // The listener's retry_after is the floor: the sink's own hint (1 s for a full spool)
      // must not make configured clients retry faster than the operator asked.
      res.set(beast_http::field::retry_after,
              std::to_string(std::max<int64_t>({1, r.retry.count(), opts_.retry_after.count()})));
      co_return res;
    }
    case submit_result::kind::refused: {
      probe_.sink_refused();
      int status = r.http_status >= 400 && r.http_status < 500 ? r.http_status : 400;
      co_return reply(status, error_body("refused", r.reason));
    }
    case submit_result::kind::error:
      break;
  }
  probe_.sink_error();
  co_return reply(500, error_body("sink_error", r.reason));
}

// ack = delivered, and SQS did not take every message (the sink dead-lettered them). A route
// with on_invalid = reject answers 502: the client keeps the whole request and may send it
// again (at least once: the delivered ones come twice). on_invalid = dead_letter answers
// 200 with them in the per-index report, like invalid elements: the client drops the request.
http::response http_ingest::undelivered_reply(const route_options& route, size_t accepted,
                                              size_t dead, std::vector<element_error> errors,
                                              std::span<const undelivered_message> undelivered) {
  probe_.undelivered(undelivered.size());
  for (const auto& u : undelivered) {
    errors.push_back({u.index, u.offset, "not_delivered",
                      fmt::format("element {} at byte {}: not delivered, dead-lettered: {}: {}",
                                  u.index, u.offset, u.code, u.detail)});
  }
  std::stable_sort(errors.begin(), errors.end(),
                   [](const auto& a, const auto& b) { return a.index < b.index; });
  const size_t delivered = accepted - undelivered.size();
  if (route.on_invalid == invalid_policy::reject) {
    std::string b = error_body("not_delivered", fmt::format("{} of {} messages were not "
                                                            "delivered to SQS; first: {}",
                                                            undelivered.size(), accepted,
                                                            errors.front().detail));
    b.pop_back();
    fmt::format_to(std::back_inserter(b), ",\"delivered\":{},\"dead_lettered\":{},", delivered,
                   undelivered.size());
    append_errors(b, errors);
    b += '}';
    return reply(502, std::move(b));
  }
  probe_.accepted(delivered);
  probe_.dead_lettered(dead);
  std::string b = fmt::format("{{\"accepted\":{},\"dead_lettered\":{},", delivered,
                              dead + undelivered.size());
  append_errors(b, errors);
  b += '}';
  return reply(200, std::move(b));
}

std::string http_ingest::metrics_text() const {
  std::string out;
  probe_.render(out, inflight_->load());
  return out;
}

std::string http_ingest::metrics_text(
    std::span<const std::pair<std::string, const http_ingest*>> listeners) {
  std::vector<ingest_probe::labeled> l;
  l.reserve(listeners.size());
  for (const auto& [name, ingest] : listeners)
    l.push_back({name, &ingest->probe_, ingest->inflight_->load()});
  std::string out;
  ingest_probe::render(out, l);
  return out;
}

}  // namespace sqsrelay::sources
