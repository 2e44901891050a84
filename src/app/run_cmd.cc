#include "app/run_cmd.h"

#include <fstream>
#include <functional>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/io_pool.h"
#include "app/relay.h"
#include "config/relay_config.h"
#include "http/server.h"
#include "sources/http_ingest/http_ingest.h"

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

// "embedded" in relay.toml: the embedded server of a `sqsrelay serve` on its default address.
constexpr const char* embedded_url = "http://127.0.0.1:9324";

// Sends each batch to the spool sink of its route's endpoint.
class routing_sink final : public sources::ingest_sink {
 public:
  std::unordered_map<std::string, sources::ingest_sink*> by_route;
  sources::ingest_sink* fallback = nullptr;  // the built-in /queues/{name}/messages route

  asio::awaitable<sources::submit_result> async_submit(sources::ingest_target target,
                                                       sources::ingest_batch batch) override {
    auto it = by_route.find(target.route);
    sources::ingest_sink* s = it != by_route.end() ? it->second : fallback;
    co_return co_await s->async_submit(std::move(target), std::move(batch));
  }
};

// The first ACCESS_KEY_ID:SECRET line of a credentials file (the embedded server's format).
bool read_key_file(const std::string& path, std::string& akid, std::string& secret,
                   std::string& err) {
  std::ifstream in(path);
  if (!in) {
    err = fmt::format("credentials_file {}: cannot be read", path);
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) break;
    akid = line.substr(0, colon);
    secret = line.substr(colon + 1);
    return true;
  }
  err = fmt::format("credentials_file {}: expected a line ACCESS_KEY_ID:SECRET", path);
  return false;
}

// One exposition: each ingest family once, with a `listener` label per [[sources.http]].
std::string metrics_response_text(const relay& r,
                                  const std::vector<std::unique_ptr<sources::http_ingest>>& in,
                                  const std::vector<config::http_source_config>& configs) {
  std::vector<std::pair<std::string, const sources::http_ingest*>> listeners;
  for (size_t i = 0; i < in.size(); ++i) listeners.emplace_back(configs[i].name, in[i].get());
  return r.metrics_text() + sources::http_ingest::metrics_text(listeners);
}

}  // namespace

CLI::App* add_run_command(CLI::App& app, run_options& o) {
  auto* run = app.add_subcommand(
      "run", "Run the pipelines of a relay.toml: HTTP ingest -> durable spool -> SQS");
  run->add_option("-c,--config", o.config_file, "relay.toml (see docs/configuration.md)")
      ->required();
  run->add_option("--threads", o.threads, "I/O threads for the listeners (0: one per core)")
      ->capture_default_str();
  run->add_option("--shutdown-timeout", o.shutdown_seconds,
                  "Seconds SIGTERM waits for requests and sends in progress")
      ->capture_default_str();
  run->footer("Configuration reference:\n\n" + config::help_text());
  return run;
}

int run_relay(const run_options& o) {
  config::config_error cerr;
  auto cfg = config::load_file(o.config_file, cerr);
  if (!cfg) {
    spdlog::error("{}", cerr.to_string());
    return 2;
  }
  std::string err;
  // Listeners are checked before anything starts, so a bad one exits at once.
  std::vector<config::listen_address> listens;
  for (const auto& s : cfg->http_sources) {
    auto a = config::parse_listen(s.listen, err);
    if (!a) {
      spdlog::error("{}: sources.http '{}': listen: {}", cfg->file, s.name, err);
      return 2;
    }
    if (auto why = sources::http_ingest::check_bind(a->host, s, s.allow_insecure)) {
      spdlog::error("{}: sources.http '{}': {}", cfg->file, s.name, *why);
      return 2;
    }
    listens.push_back(*a);
  }
  std::optional<config::listen_address> metrics_listen;
  if (!cfg->metrics.listen.empty()) {
    metrics_listen = config::parse_listen(cfg->metrics.listen, err);
    if (!metrics_listen) {
      spdlog::error("{}: metrics.listen: {}", cfg->file, err);
      return 2;
    }
  }

  relay_options ro;
  ro.ack_delivered_timeout = cfg->sender.ack_delivered_timeout;
  ro.spool.dir = cfg->spool.dir;
  ro.spool.budget_bytes = cfg->spool.disk_budget;
  ro.spool.segment_bytes = cfg->spool.segment_bytes;
  for (const auto& e : cfg->endpoints) {
    relay_endpoint ep;
    ep.name = e.name;
    ep.connection.endpoint_url = e.url == config::embedded_endpoint ? embedded_url : e.url;
    ep.connection.region = e.region;
    ep.connection.profile = e.profile;
    if (!e.credentials_file.empty() &&
        !read_key_file(e.credentials_file, ep.connection.access_key_id,
                       ep.connection.secret_access_key, err)) {
      spdlog::error("{}: endpoints.{}: {}", cfg->file, e.name, err);
      return 2;
    }
    ep.sender.linger = cfg->sender.linger;
    ep.sender.window.max = cfg->sender.max_in_flight;
    ep.sender.missing_queue_grace = cfg->sender.missing_queue_grace;
    ep.connection.max_connections = std::max<size_t>(cfg->sender.max_in_flight, 1);
    ro.endpoints.push_back(std::move(ep));
  }
  auto r = relay::open(std::move(ro), err);
  if (!r) {
    spdlog::error("{}", err);
    return 1;
  }

  std::vector<std::unique_ptr<routing_sink>> sinks;
  std::vector<std::unique_ptr<sources::http_ingest>> ingests;
  for (const auto& s : cfg->http_sources) {
    auto sink = std::make_unique<routing_sink>();
    sink->fallback = r->sink(s.default_endpoint);
    for (const auto& rc : s.route_configs) sink->by_route[rc.path] = r->sink(rc.endpoint);
    auto ingest = sources::http_ingest::make(s, *sink, err);
    if (!ingest) {
      spdlog::error("{}: sources.http '{}': {}", cfg->file, s.name, err);
      return 2;
    }
    // A 200 needs the spool: unhealthy once it has failed.
    ingest->set_health_check([rp = r.get()] {
      return rp->spool_stats().failed ? std::string("spool failed") : std::string();
    });
    sinks.push_back(std::move(sink));
    ingests.push_back(std::move(ingest));
  }

  io_pool pool(o.threads);
  asio::io_context& ioc = pool.first();
  std::vector<std::unique_ptr<http::server>> servers;
  for (size_t i = 0; i < ingests.size(); ++i) {
    auto* in = ingests[i].get();
    auto srv = std::make_unique<http::server>(
        pool.workers(), in->server_options(listens[i].host, listens[i].port),
        [in](http::request req, http::peer_info p) { return in->handle(std::move(req), p); },
        [in](int status, std::string_view reason) { return in->transport_error(status, reason); });
    if (auto st = srv->start(); !st) {
      spdlog::error("cannot listen on {} ({}): {}", cfg->http_sources[i].listen,
                    cfg->http_sources[i].name, st.error().message());
      return 1;
    }
    spdlog::info("sqsrelay run: ingest '{}' on http://{}:{}", cfg->http_sources[i].name,
                 listens[i].host, srv->port());
    servers.push_back(std::move(srv));
  }
  std::unique_ptr<http::server> metrics_srv;
  if (metrics_listen) {
    http::server_options mo;
    mo.host = metrics_listen->host;
    mo.port = metrics_listen->port;
    mo.body_limit = 4096;
    relay* rp = r.get();
    auto* ip = &ingests;
    const auto* sp = &cfg->http_sources;
    metrics_srv = std::make_unique<http::server>(
        pool.workers(), mo,
        [rp, ip, sp](http::request req, http::peer_info) -> asio::awaitable<http::response> {
          http::response res{boost::beast::http::status::ok, 11};
          std::string_view target = req.target();
          if (target == "/metrics") {
            res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4");
            res.body() = metrics_response_text(*rp, *ip, *sp);
          } else if (target == "/healthz" || target == "/health") {
            bool failed = rp->spool_stats().failed;
            res.result(failed ? boost::beast::http::status::service_unavailable
                              : boost::beast::http::status::ok);
            res.set(boost::beast::http::field::content_type, "application/json");
            res.body() = failed ? R"({"status":"spool failed"})" : R"({"status":"ok"})";
          } else {
            res.result(boost::beast::http::status::not_found);
            res.body() = "GET /metrics or /healthz\n";
          }
          co_return res;
        },
        [](int status, std::string_view reason) {
          http::response res{static_cast<boost::beast::http::status>(status), 11};
          res.body() = std::string(reason) + "\n";
          return res;
        });
    if (auto st = metrics_srv->start(); !st) {
      spdlog::error("cannot listen on {} (metrics): {}", cfg->metrics.listen,
                    st.error().message());
      return 1;
    }
    spdlog::info("sqsrelay run: metrics on http://{}:{}/metrics", metrics_listen->host,
                 metrics_srv->port());
  }

  // Graceful stop: no new requests; those in progress finish (each answered only once its
  // data is synced) until the deadline; then the relay sends what it holds until the same
  // deadline and persists the delivery position. Undelivered data stays in the spool.
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  auto in_progress = [&]() -> int64_t {
    int64_t n = 0;
    for (auto& s : servers) n += s->stats().in_progress.load();
    return n;
  };
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  // ack = delivered requests may wait for SQS longer than the shutdown deadline (it may be
  // down): 1 s before the deadline they are answered 503 + Retry-After rather than cut off.
  asio::steady_timer release_acks(ioc);
  signals.async_wait([&](boost::system::error_code, int sig) {
    spdlog::info("signal {}: stopping (up to {} s)", sig, o.shutdown_seconds);
    *deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.shutdown_seconds);
    for (auto& s : servers) s->stop();
    if (metrics_srv) metrics_srv->stop();
    release_acks.expires_at(*deadline - std::min<std::chrono::steady_clock::duration>(
                                            std::chrono::seconds(1),
                                            std::chrono::seconds(o.shutdown_seconds) / 2));
    release_acks.async_wait([&](boost::system::error_code ec) {
      if (!ec) r->release_ack_waiters();
    });
    pool.stop_when_idle(in_progress, *deadline);
  });
  pool.run();
  auto left = *deadline - std::chrono::steady_clock::now();
  r->stop(std::max<std::chrono::steady_clock::duration>(left, std::chrono::seconds(1)));
  auto st = r->spool_stats();
  spdlog::info("stopped: {} records spooled and not yet delivered stay in {}",
               st.durable_seq > st.delivered_seq ? st.durable_seq - st.delivered_seq : 0,
               cfg->spool.dir);
  // Listeners and contexts go before the ingest objects, sinks and relay they refer to.
  servers.clear();
  metrics_srv.reset();
  return 0;
}

}  // namespace sqsrelay::app
