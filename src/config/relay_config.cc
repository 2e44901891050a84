#include "config/relay_config.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "sources/http_ingest/access_policy.h"
#include "sources/http_ingest/http_ingest.h"

namespace sqsrelay::config {

namespace {

using sources::ack_mode;
using sources::body_format;
using sources::field_attribute;
using sources::ingest_options;
using sources::invalid_policy;
using sources::route_options;
using sources::string_elements;
using namespace std::chrono_literals;

// Makes an option of a base struct usable on a derived one.
template <class D, class B>
option<D> lift(option<B> o) {
  return {o.key,
          o.kind,
          o.help,
          [set = o.set](D& d, const toml::node& n) { return set(static_cast<B&>(d), n); },
          [show = o.show](const D& d) { return show(static_cast<const B&>(d)); },
          o.choices};
}

template <class D, class B>
void append_lifted(option_list<D>& out, const option_list<B>& in) {
  for (const auto& o : in) out.push_back(lift<D, B>(o));
}

// ---- The option tables: every relay.toml key, declared once. ----

const option_list<route_options>& route_body_options() {
  static const option_list<route_options> l = {
      choice_option<route_options, body_format>(
          "format", &route_options::format,
          {{"auto", body_format::auto_detect},
           {"json", body_format::json},
           {"ndjson", body_format::ndjson}},
          "How bodies are split into messages: auto (by Content-Type, then content), json "
          "(array = one message per element, else one message), ndjson (one per line)."),
      string_option<route_options>(
          "records_field", &route_options::records_field,
          "When the body is a JSON object: the field holding the array of messages (JSON "
          "Pointer like \"/data/items\", or one top-level key)."),
      string_option<route_options>(
          "group_id_field", &route_options::group_id_field,
          "Field of each message whose value is the FIFO MessageGroupId (required for .fifo "
          "queues)."),
      string_option<route_options>("dedup_id_field", &route_options::dedup_id_field,
                                   "Field of each message whose value is the "
                                   "MessageDeduplicationId."),
      choice_option<route_options, invalid_policy>(
          "on_invalid", &route_options::on_invalid,
          {{"reject", invalid_policy::reject}, {"dead_letter", invalid_policy::dead_letter}},
          "Invalid elements: reject the whole request (400), or store the valid ones, "
          "dead-letter the invalid ones and answer 200 with a per-index report."),
      choice_option<route_options, ack_mode>(
          "ack", &route_options::ack,
          {{"durable", ack_mode::durable}, {"delivered", ack_mode::delivered}},
          "When the 200 is sent: once the messages are synced to the spool (durable), or "
          "once SQS accepted them (delivered)."),
      choice_option<route_options, string_elements>(
          "string_elements", &route_options::strings,
          {{"value", string_elements::value}, {"json", string_elements::json}},
          "Body of a JSON string element: its unescaped value, or its JSON text with quotes."),
      bytes_option<route_options>("max_message_bytes", &route_options::max_message_bytes, 1,
                                  1048576,
                                  "Largest message (body + attributes, as SQS counts) accepted."),
  };
  return l;
}

const option_list<route_config>& route_option_list() {
  static const option_list<route_config> l = [] {
    option_list<route_config> r = {
        string_option<route_config>("path", &route_config::path,
                                    "URL path clients POST to, e.g. \"/flespi\" (required)."),
        string_option<route_config>("queue", &route_config::queue, "Target queue name (required)."),
        string_option<route_config>("endpoint", &route_config::endpoint,
                                    "Name of the endpoint ([endpoints.<name>]) holding the "
                                    "queue (default: the listener's default_endpoint)."),
    };
    append_lifted(r, route_body_options());
    return r;
  }();
  return l;
}

const option_list<field_attribute>& attribute_option_list() {
  static const option_list<field_attribute> l = {
      string_option<field_attribute>("field", &field_attribute::field,
                                     "JSON Pointer (\"/position/speed\") or top-level key "
                                     "(\"position.speed\") of each message (required)."),
      string_option<field_attribute>("name", &field_attribute::name,
                                     "Message attribute name (required)."),
      string_option<field_attribute>("type", &field_attribute::data_type,
                                     "SQS data type: String or Number, optionally with a "
                                     "label (\"Number.float\")."),
      bool_option<field_attribute>("required", &field_attribute::required,
                                   "A message without the field is invalid (else the "
                                   "attribute is left out)."),
  };
  return l;
}

const option_list<http_source_config>& http_option_list() {
  static const option_list<http_source_config> l = [] {
    option_list<http_source_config> r = {
        string_option<http_source_config>("name", &http_source_config::name,
                                          "Name in logs and metrics (default http-<index>)."),
        string_option<http_source_config>("listen", &http_source_config::listen,
                                          "HOST:PORT to listen on. A non-loopback address "
                                          "needs a token (or allow_insecure)."),
        bool_option<http_source_config>("allow_insecure", &http_source_config::allow_insecure,
                                        "Allow a non-loopback listener without any token."),
        string_option<http_source_config>("default_endpoint", &http_source_config::default_endpoint,
                                          "Endpoint of the built-in /queues/{name}/messages "
                                          "route."),
        string_option<http_source_config>("tokens_file", &http_source_config::tokens_file,
                                          "File with one accepted token per line."),
        string_option<http_source_config>("tokens_env", &http_source_config::tokens_env,
                                          "Environment variable holding comma-separated "
                                          "tokens."),
    };
    option_list<ingest_options> base = {
        string_option<ingest_options>("token_header", &ingest_options::token_header,
                                      "Header carrying the token (a \"Bearer \" prefix is "
                                      "accepted)."),
        list_option<ingest_options>("tokens", &ingest_options::tokens,
                                    "Accepted tokens (prefer tokens_file or tokens_env; "
                                    "several allow rotation). Empty: no token required."),
        list_option<ingest_options>("allow_cidrs", &ingest_options::allow_cidrs,
                                    "Client addresses allowed (IPv4/IPv6 CIDR). Empty: all."),
        list_option<ingest_options>("trusted_proxies", &ingest_options::trusted_proxies,
                                    "Peers whose X-Forwarded-For is honoured (CIDR)."),
        bool_option<ingest_options>("queue_route", &ingest_options::queue_route,
                                    "Serve POST /queues/{name}/messages besides the routes."),
        bytes_option<ingest_options>("max_body_bytes", &ingest_options::max_body_bytes, 1,
                                     1ull << 30, "Largest request body (413 beyond)."),
        int_option<ingest_options>("json_max_depth", &ingest_options::json_max_depth, 2, 10000,
                                   "Deepest JSON nesting of a body or NDJSON line (400 beyond)."),
        int_option<ingest_options>("max_messages", &ingest_options::max_messages, 1, 10000000,
                                   "Most messages (array elements, NDJSON lines) in one request "
                                   "(413 beyond); bounds the memory a request of tiny elements "
                                   "takes."),
        bytes_option<ingest_options>("max_inflight_bytes", &ingest_options::max_inflight_bytes, 1,
                                     1ull << 40,
                                     "Request bytes handled at once by this listener (503 "
                                     "beyond); bounds memory."),
        duration_option<ingest_options>("retry_after", &ingest_options::retry_after, 1s, 3600s,
                                        "Retry-After sent with the listener's own 503s."),
    };
    append_lifted(r, base);
    return r;
  }();
  return l;
}

const option_list<endpoint_config>& endpoint_option_list() {
  static const option_list<endpoint_config> l = {
      string_option<endpoint_config>("url", &endpoint_config::url,
                                     "\"embedded\" (the embedded server of a `sqsrelay serve` "
                                     "at its default address, http://127.0.0.1:9324) or an SQS "
                                     "endpoint URL (https://sqs.eu-west-1.amazonaws.com)."),
      string_option<endpoint_config>("region", &endpoint_config::region,
                                     "Region for SigV4 signing."),
      string_option<endpoint_config>("profile", &endpoint_config::profile,
                                     "AWS credentials profile; empty: the default provider "
                                     "chain."),
      string_option<endpoint_config>("credentials_file", &endpoint_config::credentials_file,
                                     "File of ACCESS_KEY_ID:SECRET lines (instead of a "
                                     "profile)."),
  };
  return l;
}

const option_list<spool_config>& spool_option_list() {
  static const option_list<spool_config> l = {
      string_option<spool_config>("dir", &spool_config::dir,
                                  "Directory of the durable spool (created if missing)."),
      bytes_option<spool_config>("disk_budget", &spool_config::disk_budget, 1ull << 20, 1ull << 50,
                                 "Disk the spool may use (at least 1MiB); when reached, "
                                 "sources answer 503 with Retry-After."),
      bytes_option<spool_config>("segment_size", &spool_config::segment_bytes, 1ull << 20,
                                 4ull << 30,
                                 "Size of one spool segment file (at least 1MiB, at most "
                                 "disk_budget). Unset: 64MiB, or disk_budget/4 when smaller; "
                                 "the spool uses at most disk_budget/4 so that delivered "
                                 "segments can always be freed."),
  };
  return l;
}

const option_list<sender_config>& sender_option_list() {
  static const option_list<sender_config> l = {
      duration_option<sender_config>("linger", &sender_config::linger, 0ms, 10000ms,
                                     "How long a batch waits for more messages before it is "
                                     "sent short of 10 entries."),
      int_option<sender_config>("max_in_flight", &sender_config::max_in_flight, 1, 4096,
                                "Most SendMessageBatch calls in flight per endpoint."),
      duration_option<sender_config>("missing_queue_grace", &sender_config::missing_queue_grace,
                                     0ms, std::chrono::milliseconds(7 * 24h),
                                     "How long messages for a queue that does not exist "
                                     "(QueueDoesNotExist) are retried with backoff before they "
                                     "are dead-lettered; 0s: at once."),
      duration_option<sender_config>(
          "ack_delivered_timeout", &sender_config::ack_delivered_timeout, 1s,
          std::chrono::seconds(3600),
          "How long a request on an ack = \"delivered\" route waits for SQS before it is "
          "answered 503 + Retry-After (its messages stay spooled and are still delivered)."),
  };
  return l;
}

const option_list<metrics_config>& metrics_option_list() {
  static const option_list<metrics_config> l = {
      string_option<metrics_config>("listen", &metrics_config::listen,
                                    "HOST:PORT serving Prometheus text at /metrics; empty: "
                                    "off. Loopback unless allow_remote."),
      bool_option<metrics_config>("allow_remote", &metrics_config::allow_remote,
                                  "Allow a non-loopback metrics listener (it needs no token)."),
  };
  return l;
}

// ---- Reading ----

struct key_path {
  std::string text;
  key_path child(std::string_view k) const {
    return {text.empty() ? std::string(k) : text + "." + std::string(k)};
  }
  key_path index(size_t i) const { return {text + "[" + std::to_string(i) + "]"}; }
};

class reader {
 public:
  reader(std::string file, config_error& err) : file_(std::move(file)), err_(err) {}

  bool fail(const toml::source_region& at, const key_path& key, std::string message) {
    err_.file = file_;
    err_.line = at.begin.line;
    err_.column = at.begin.column;
    err_.key = key.text;
    err_.message = std::move(message);
    return false;
  }

  // Reads the keys of `t` into `out`; keys in `subtables` are left to the caller.
  template <class S>
  bool read(const toml::table& t, const key_path& path, const option_list<S>& opts, S& out,
            std::initializer_list<std::string_view> subtables = {}) {
    for (const auto& [k, v] : t) {
      std::string_view key = k.str();
      if (std::find(subtables.begin(), subtables.end(), key) != subtables.end()) continue;
      auto it = std::find_if(opts.begin(), opts.end(), [&](const auto& o) { return o.key == key; });
      if (it == opts.end()) {
        std::string known;
        for (const auto& o : opts) known += (known.empty() ? "" : ", ") + std::string(o.key);
        for (auto s : subtables) known += ", " + std::string(s);
        return fail(k.source(), path.child(key),
                    fmt::format("unknown key '{}' (known here: {})", key, known));
      }
      if (auto e = it->set(out, v)) return fail(v.source(), path.child(key), *e);
    }
    return true;
  }

  // An array of tables at `t[key]`, or nothing; anything else is an error.
  const toml::array* tables(const toml::table& t, std::string_view key, const key_path& path) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    const auto* arr = n->as_array();
    if (!arr || (!arr->empty() && !arr->is_array_of_tables())) {
      fail(n->source(), path.child(key),
           fmt::format("must be an array of tables ([[{}]])", path.child(key).text));
      failed_ = true;
      return nullptr;
    }
    return arr;
  }
  const toml::table* table(const toml::table& t, std::string_view key, const key_path& path) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      fail(n->source(), path.child(key),
           fmt::format("must be a table ([{}])", path.child(key).text));
      failed_ = true;
      return nullptr;
    }
    return n->as_table();
  }
  bool failed() const { return failed_; }

 private:
  std::string file_;
  config_error& err_;
  bool failed_ = false;
};

bool read_routes(reader& r, const toml::table& t, const key_path& path, http_source_config& s) {
  const auto* routes = r.tables(t, "routes", path);
  if (r.failed()) return false;
  if (routes) {
    for (size_t i = 0; i < routes->size(); ++i) {
      const auto& rt = *(*routes)[i].as_table();
      auto rp = path.child("routes").index(i);
      route_config rc;
      rc.line = rt.source().begin.line;
      if (!r.read(rt, rp, route_option_list(), rc, {"attributes"})) return false;
      const auto* attrs = r.tables(rt, "attributes", rp);
      if (r.failed()) return false;
      for (size_t j = 0; attrs && j < attrs->size(); ++j) {
        field_attribute a;
        a.data_type = "String";
        if (!r.read(*(*attrs)[j].as_table(), rp.child("attributes").index(j),
                    attribute_option_list(), a))
          return false;
        if (a.field.empty() || a.name.empty())
          return r.fail((*attrs)[j].source(), rp.child("attributes").index(j),
                        "an attribute needs both field and name");
        rc.attributes.push_back(std::move(a));
      }
      if (rc.path.empty() || rc.queue.empty())
        return r.fail(rt.source(), rp, "a route needs both path and queue");
      s.route_configs.push_back(std::move(rc));
    }
  }
  if (const auto* d = r.table(t, "queue_route_options", path)) {
    if (!r.read(*d, path.child("queue_route_options"), route_body_options(),
                s.queue_route_defaults))
      return false;
  }
  return !r.failed();
}

std::optional<std::string> load_tokens(http_source_config& s) {
  auto add = [&s](std::string_view text) {
    while (!text.empty()) {
      auto end = text.find_first_of(",\n");
      std::string_view item = text.substr(0, end);
      text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
      while (!item.empty() && (item.back() == '\r' || item.back() == ' ')) item.remove_suffix(1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      if (!item.empty() && item.front() != '#') s.tokens.emplace_back(item);
    }
  };
  if (!s.tokens_file.empty()) {
    std::ifstream in(s.tokens_file);
    if (!in) return fmt::format("tokens_file '{}' cannot be read", s.tokens_file);
    std::stringstream text;
    text << in.rdbuf();
    add(text.str());
  }
  if (!s.tokens_env.empty()) {
    const char* v = std::getenv(s.tokens_env.c_str());
    if (!v || !*v) return fmt::format("tokens_env: ${} is not set", s.tokens_env);
    add(v);
  }
  return std::nullopt;
}

bool valid_endpoint_url(std::string_view u) {
  if (u == embedded_endpoint) return true;
  for (std::string_view scheme : {"http://", "https://"})
    if (u.starts_with(scheme) && u.size() > scheme.size() &&
        u.find_first_of(" \t") == std::string_view::npos)
      return true;
  return false;
}

}  // namespace

std::string config_error::to_string() const {
  std::string where = line ? fmt::format("{}:{}:{}", file, line, column) : file;
  return key.empty() ? fmt::format("{}: {}", where, message)
                     : fmt::format("{}: {}: {}", where, key, message);
}

std::optional<listen_address> parse_listen(std::string_view s, std::string& err) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) {
    err = fmt::format("'{}': expected HOST:PORT", s);
    return std::nullopt;
  }
  listen_address a;
  a.host = std::string(s.substr(0, colon));
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  if (a.host == "localhost") a.host = "127.0.0.1";
  boost::system::error_code ec;
  boost::asio::ip::make_address(a.host, ec);
  if (ec) {
    err = fmt::format("'{}': '{}' is not an IP address", s, a.host);
    return std::nullopt;
  }
  auto digits = s.substr(colon + 1);
  unsigned port = 0;
  auto [end, pec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || pec != std::errc() || end != digits.data() + digits.size() ||
      port > 65535) {
    err = fmt::format("'{}': the port must be a number from 0 to 65535", s);
    return std::nullopt;
  }
  a.port = static_cast<uint16_t>(port);
  return a;
}

const endpoint_config* relay_config::endpoint(std::string_view name) const {
  for (const auto& e : endpoints)
    if (e.name == name) return &e;
  return nullptr;
}

std::optional<relay_config> load_string(std::string_view text, std::string name,
                                        config_error& err) {
  toml::table root;
  // toml++ reports syntax errors by exception; converted here, at the library boundary.
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    err.file = name;
    err.line = e.source().begin.line;
    err.column = e.source().begin.column;
    err.key.clear();
    err.message = std::string(e.description());
    return std::nullopt;
  }
  reader r(name, err);
  relay_config c;
  c.file = name;
  key_path top;
  for (const auto& [k, v] : root) {
    static constexpr std::string_view known[] = {"sources", "transforms", "endpoints",
                                                 "spool",   "sender",     "metrics"};
    if (std::find(std::begin(known), std::end(known), k.str()) == std::end(known)) {
      r.fail(k.source(), top.child(k.str()),
             fmt::format("unknown section '{}' (known: sources, transforms, endpoints, spool, "
                         "sender, metrics)",
                         k.str()));
      return std::nullopt;
    }
  }
  if (const auto* t = r.table(root, "spool", top);
      t && !r.read(*t, top.child("spool"), spool_option_list(), c.spool))
    return std::nullopt;
  if (const auto* t = r.table(root, "sender", top);
      t && !r.read(*t, top.child("sender"), sender_option_list(), c.sender))
    return std::nullopt;
  const toml::table* metrics_table = r.table(root, "metrics", top);
  if (metrics_table &&
      !r.read(*metrics_table, top.child("metrics"), metrics_option_list(), c.metrics))
    return std::nullopt;
  if (r.failed()) return std::nullopt;
  // Metrics name queues and endpoints and need no token: loopback unless opted out.
  if (!c.metrics.listen.empty()) {
    std::string e;
    auto where = [&] {
      const toml::node* n = metrics_table ? metrics_table->get("listen") : nullptr;
      return n ? n->source() : toml::source_region{};
    };
    auto m = parse_listen(c.metrics.listen, e);
    if (!m) {
      r.fail(where(), top.child("metrics").child("listen"), e);
      return std::nullopt;
    }
    boost::system::error_code ec;
    if (!boost::asio::ip::make_address(m->host, ec).is_loopback() && !c.metrics.allow_remote) {
      r.fail(where(), top.child("metrics").child("listen"),
             fmt::format("refusing to serve metrics on {}: a non-loopback metrics listener "
                         "needs allow_remote = true (metrics need no token)",
                         m->host));
      return std::nullopt;
    }
  }

  // Endpoints: [endpoints.<name>]; "embedded" always exists.
  endpoint_config embedded;
  embedded.name = std::string(embedded_endpoint);
  c.endpoints.push_back(embedded);
  if (const auto* eps = r.table(root, "endpoints", top)) {
    for (const auto& [k, v] : *eps) {
      auto path = top.child("endpoints").child(k.str());
      const auto* et = v.as_table();
      if (!et) {
        r.fail(v.source(), path, fmt::format("must be a table ([endpoints.{}])", k.str()));
        return std::nullopt;
      }
      endpoint_config e;
      e.name = std::string(k.str());
      e.line = et->source().begin.line;
      if (!r.read(*et, path, endpoint_option_list(), e)) return std::nullopt;
      if (!valid_endpoint_url(e.url)) {
        r.fail((*et)["url"].node() ? (*et)["url"].node()->source() : et->source(),
               path.child("url"),
               fmt::format("'{}' is neither \"embedded\" nor an http:// or https:// URL", e.url));
        return std::nullopt;
      }
      if (e.region.empty()) {
        r.fail(et->source(), path.child("region"), "must not be empty");
        return std::nullopt;
      }
      if (e.name == embedded_endpoint)
        c.endpoints.front() = std::move(e);
      else
        c.endpoints.push_back(std::move(e));
    }
  }
  if (r.failed()) return std::nullopt;

  if (const auto* tr = root.get("transforms")) {
    const auto* arr = tr->as_array();
    if (!arr || (!arr->empty() && !arr->is_array_of_tables())) {
      r.fail(tr->source(), top.child("transforms"), "must be an array of tables ([[transforms]])");
      return std::nullopt;
    }
    if (!arr->empty()) {
      const auto& t0 = *(*arr)[0].as_table();
      auto type = t0["type"].value<std::string>();
      r.fail(t0.source(), top.child("transforms").index(0),
             fmt::format("transform type '{}' is not available in this build (none are yet)",
                         type.value_or("")));
      return std::nullopt;
    }
  }

  if (const auto* src = r.table(root, "sources", top)) {
    for (const auto& [k, v] : *src) {
      if (k.str() != "http") {
        r.fail(
            k.source(), top.child("sources").child(k.str()),
            fmt::format("source kind '{}' is not available in this build (known: http)", k.str()));
        return std::nullopt;
      }
    }
    const auto* http = r.tables(*src, "http", top.child("sources"));
    for (size_t i = 0; http && i < http->size(); ++i) {
      const auto& ht = *(*http)[i].as_table();
      auto path = top.child("sources").child("http").index(i);
      http_source_config s;
      s.line = ht.source().begin.line;
      if (!r.read(ht, path, http_option_list(), s, {"routes", "queue_route_options"}) ||
          !read_routes(r, ht, path, s))
        return std::nullopt;
      if (s.name.empty()) s.name = fmt::format("http-{}", i);
      c.http_sources.push_back(std::move(s));
    }
  }
  if (r.failed()) return std::nullopt;

  // Cross-checks, each pointing at the line of what is wrong: the key's own line when the
  // file has it (else the table's), found again in the parsed document.
  auto key_at = [](const toml::table* t, std::string_view key, toml::source_region fallback) {
    const toml::node* n = t ? t->get(key) : nullptr;
    return n ? n->source() : fallback;
  };
  // For free-text errors: the first key of the table named in the message.
  auto locate = [&](const toml::table* t, const key_path& path, std::string_view message,
                    toml::source_region fallback) -> std::pair<toml::source_region, key_path> {
    if (t)
      for (const auto& [k, v] : *t)
        if (message.find(k.str()) != std::string_view::npos) return {v.source(), path.child(k.str())};
    return {fallback, path};
  };
  const toml::array* http_tables = root["sources"]["http"].as_array();
  std::set<std::string> names, listens;
  for (size_t i = 0; i < c.http_sources.size(); ++i) {
    auto& s = c.http_sources[i];
    key_path path = top.child("sources").child("http").index(i);
    const toml::table* ht =
        http_tables && i < http_tables->size() ? (*http_tables)[i].as_table() : nullptr;
    toml::source_region at;
    at.begin.line = s.line;
    at.begin.column = 1;
    if (!names.insert(s.name).second) {
      r.fail(key_at(ht, "name", at), path.child("name"),
             fmt::format("source name '{}' is used twice", s.name));
      return std::nullopt;
    }
    std::string e;
    auto listen = parse_listen(s.listen, e);
    if (!listen) {
      r.fail(key_at(ht, "listen", at), path.child("listen"), e);
      return std::nullopt;
    }
    if (!listens.insert(s.listen).second) {
      r.fail(key_at(ht, "listen", at), path.child("listen"),
             fmt::format("'{}' is used by two sources", s.listen));
      return std::nullopt;
    }
    if (auto te = load_tokens(s)) {
      std::string_view key = te->starts_with("tokens_env") ? "tokens_env" : "tokens_file";
      r.fail(key_at(ht, key, at), path.child(key), *te);
      return std::nullopt;
    }
    for (std::string_view key : {"allow_cidrs", "trusted_proxies"}) {
      const auto& list = key == "allow_cidrs" ? s.allow_cidrs : s.trusted_proxies;
      const toml::array* arr = ht ? (*ht)[key].as_array() : nullptr;
      for (size_t k = 0; k < list.size(); ++k) {
        std::string ce;
        if (sources::parse_cidr(list[k], ce)) continue;
        auto where = arr && k < arr->size() ? (*arr)[k].source() : key_at(ht, key, at);
        r.fail(where, path.child(key).index(k), ce);
        return std::nullopt;
      }
    }
    if (auto be = sources::http_ingest::check_bind(listen->host, s, s.allow_insecure)) {
      r.fail(key_at(ht, "listen", at), path.child("listen"), *be);
      return std::nullopt;
    }
    if (!c.endpoint(s.default_endpoint)) {
      r.fail(key_at(ht, "default_endpoint", at), path.child("default_endpoint"),
             fmt::format("no endpoint named '{}'", s.default_endpoint));
      return std::nullopt;
    }
    auto fail_listener = [&](const std::string& ve) {
      const toml::table* qro = ht ? (*ht)["queue_route_options"].as_table() : nullptr;
      auto [where, key] = locate(qro, path.child("queue_route_options"), ve, at);
      if (key.text == path.child("queue_route_options").text)
        std::tie(where, key) = locate(ht, path, ve, at);
      r.fail(where, key, ve);
    };
    http_source_config bare = s;  // the listener's own options first, then each route
    bare.routes.clear();
    if (auto ve = sources::http_ingest::validate(bare)) {
      fail_listener(*ve);
      return std::nullopt;
    }
    const toml::array* route_tables = ht ? (*ht)["routes"].as_array() : nullptr;
    std::set<std::string> paths;
    for (size_t j = 0; j < s.route_configs.size(); ++j) {
      const toml::table* rt =
          route_tables && j < route_tables->size() ? (*route_tables)[j].as_table() : nullptr;
      // A route without its own endpoint uses its listener's default_endpoint.
      if (rt && !rt->contains("endpoint")) s.route_configs[j].endpoint = s.default_endpoint;
      const auto& rc = s.route_configs[j];
      toml::source_region rat;
      rat.begin.line = rc.line;
      rat.begin.column = 1;
      auto rp = path.child("routes").index(j);
      if (!paths.insert(rc.path).second) {
        r.fail(key_at(rt, "path", rat), rp.child("path"),
               fmt::format("route '{}' is declared twice", rc.path));
        return std::nullopt;
      }
      if (!c.endpoint(rc.endpoint)) {
        r.fail(key_at(rt, "endpoint", rat), rp.child("endpoint"),
               fmt::format("no endpoint named '{}'", rc.endpoint));
        return std::nullopt;
      }
      // This route alone through the listener's checks: an error is then this route's.
      http_source_config one = s;
      one.routes = {rc};
      if (auto ve = sources::http_ingest::validate(one)) {
        auto [where, key] = locate(rt, rp, *ve, rat);
        r.fail(where, key, *ve);
        return std::nullopt;
      }
      s.routes.push_back(rc);
    }
    if (auto ve = sources::http_ingest::validate(s)) {
      fail_listener(*ve);
      return std::nullopt;
    }
    // validate() normalized the routes' field names; keep route_configs in step.
    for (size_t j = 0; j < s.route_configs.size(); ++j)
      static_cast<route_options&>(s.route_configs[j]) = s.routes[j];
  }
  // An unset segment_size follows a small budget down (the spool keeps segments at most a
  // quarter of the budget, so that delivered ones can always be freed); a set one must fit.
  const auto* sp = root.get("spool");
  const bool segment_set = sp && sp->as_table() && sp->as_table()->contains("segment_size");
  if (!segment_set) c.spool.segment_bytes = std::min(c.spool.segment_bytes, c.spool.disk_budget / 4);
  if (c.spool.segment_bytes > c.spool.disk_budget) {
    toml::source_region at;
    if (sp) at = key_at(sp->as_table(), segment_set ? "segment_size" : "disk_budget", sp->source());
    r.fail(at, top.child("spool").child("segment_size"),
           "must not be larger than spool.disk_budget");
    return std::nullopt;
  }
  return c;
}

std::optional<relay_config> load_file(const std::string& path, config_error& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = config_error{path, 0, 0, {}, "cannot be read"};
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_string(text.str(), path, err);
}

// ---- Help and docs, from the same tables ----

namespace {

struct doc_row {
  std::string key, kind, default_value, help;
};
struct doc_section {
  std::string header, help;
  std::vector<doc_row> rows;
};

template <class S>
std::vector<doc_row> rows_of(const option_list<S>& opts, const S& defaults = S{}) {
  std::vector<doc_row> out;
  for (const auto& o : opts) {
    std::string kind(kind_name(o.kind));
    if (o.kind == value_kind::choice) kind = o.choices;
    out.push_back({std::string(o.key), kind, o.show(defaults), std::string(o.help)});
  }
  return out;
}

std::vector<doc_section> doc_sections() {
  field_attribute attr_defaults;
  attr_defaults.data_type = "String";
  return {
      {"[[sources.http]]",
       "An HTTP ingest listener (docs/ingest.md). Repeat the table for more listeners.",
       rows_of(http_option_list())},
      {"[[sources.http.routes]]",
       "A route of the listener above: POSTs to `path` go to `queue` on `endpoint`.",
       rows_of(route_option_list())},
      {"[[sources.http.routes.attributes]]",
       "A message attribute taken from a field of each message (at most 10 per route).",
       rows_of(attribute_option_list(), attr_defaults)},
      {"[sources.http.queue_route_options]",
       "Options of the built-in POST /queues/{name}/messages route (same meaning as in a "
       "route).",
       rows_of(route_body_options())},
      {"[endpoints.<name>]",
       "An SQS endpoint routes can name. `embedded` always exists (a `sqsrelay serve` on http://127.0.0.1:9324) "
       "unless redefined.",
       rows_of(endpoint_option_list())},
      {"[spool]", "The durable spool between sources and the sender.",
       rows_of(spool_option_list())},
      {"[sender]", "Batching and concurrency towards the endpoints.",
       rows_of(sender_option_list())},
      {"[metrics]", "The Prometheus metrics listener.", rows_of(metrics_option_list())},
  };
}

std::string escape_cell(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|')
      out += "\\|";
    else
      out += ch;
  }
  return out;
}

}  // namespace

std::string help_text() {
  std::string out = "relay.toml options (key  type  default: description):\n";
  for (const auto& s : doc_sections()) {
    out += "\n" + s.header + "  " + s.help + "\n";
    for (const auto& r : s.rows)
      out += fmt::format("  {:<20} {:<12} {}: {}\n", r.key, r.kind, r.default_value, r.help);
  }
  out += "\n[[transforms]]  Reserved; no transform types are available in this build.\n";
  return out;
}

std::string configuration_markdown() {
  std::string out =
      "# Configuration reference (`relay.toml`)\n\n"
      "<!-- Generated by `sqsrelay-config-docs` from the option tables in\n"
      "     src/config/relay_config.cc; edit those, then regenerate. A test checks this file\n"
      "     is up to date. -->\n\n"
      "`sqsrelay run -c relay.toml` reads this file. Unknown keys, wrong types, values out of\n"
      "range, duplicate routes and references to undefined endpoints are errors that name the\n"
      "file, line, column and key, e.g.\n"
      "`relay.toml:12:1: sources.http[0].routes[1].path: route '/flespi' is declared twice`.\n\n"
      "Sizes are integers (bytes) or strings with a unit (`\"64MiB\"`, `\"10GB\"`); durations\n"
      "are strings with a unit (`\"250ms\"`, `\"2s\"`, `\"1m\"`, `\"1h\"`).\n\n"
      "```toml\n"
      "[spool]\n"
      "dir = \"/var/lib/sqsrelay/spool\"\n"
      "disk_budget = \"20GiB\"\n\n"
      "[endpoints.aws]\n"
      "url = \"https://sqs.eu-west-1.amazonaws.com\"\n"
      "region = \"eu-west-1\"\n"
      "profile = \"ingest\"\n\n"
      "[[sources.http]]\n"
      "listen = \"0.0.0.0:8080\"\n"
      "tokens_env = \"SQSRELAY_INGEST_TOKENS\"\n"
      "token_header = \"X-Ingest-Token\"\n"
      "default_endpoint = \"aws\"\n\n"
      "[[sources.http.routes]]\n"
      "path = \"/flespi\"\n"
      "queue = \"telemetry\"\n"
      "endpoint = \"aws\"\n"
      "on_invalid = \"dead_letter\"\n\n"
      "[[sources.http.routes.attributes]]\n"
      "field = \"ident\"\n"
      "name = \"ident\"\n"
      "required = true\n"
      "```\n";
  for (const auto& s : doc_sections()) {
    out += "\n## `" + s.header + "`\n\n" + s.help + "\n\n";
    out += "| key | type | default | description |\n| --- | --- | --- | --- |\n";
    for (const auto& r : s.rows)
      out += fmt::format("| `{}` | {} | `{}` | {} |\n", r.key, escape_cell(r.kind),
                         escape_cell(r.default_value), escape_cell(r.help));
  }
  out +=
      "\n## `[[transforms]]`\n\nReserved for transforms between sources and the spool; none "
      "are available in this build, so the array must be absent or empty.\n";
  return out;
}

}  // namespace sqsrelay::config
