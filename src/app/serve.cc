#include "app/serve.h"

#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/embedded_sink.h"
#include "app/io_pool.h"
#include "aws/sigv4.h"
#include "base/clock.h"
#include "base/random.h"
#include "http/server.h"
#include "pipeline/dead_letter.h"
#include "server/frontend.h"
#include "server/local_sender.h"
#include "server/service.h"
#include "sources/http_ingest/http_ingest.h"

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

struct endpoint_spec {
  std::string host;
  uint16_t port = 0;
};

bool parse_listen(std::string_view s, endpoint_spec& out, std::string& err) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) {
    err = fmt::format("--listen '{}': expected HOST:PORT", s);
    return false;
  }
  out.host = std::string(s.substr(0, colon));
  if (out.host.size() > 2 && out.host.front() == '[') out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host == "localhost") out.host = "127.0.0.1";
  unsigned long port = 0;
  try {
    port = std::stoul(std::string(s.substr(colon + 1)));
  } catch (...) {
    port = 70000;
  }
  if (port > 65535) {
    err = fmt::format("--listen '{}': the port must be a number from 0 to 65535", s);
    return false;
  }
  out.port = static_cast<uint16_t>(port);
  return true;
}

// Credentials as "ACCESS_KEY_ID:SECRET" items, newline- or comma-separated. Secrets are
// never logged; errors name the line, not its content.
bool load_credentials(const serve_options& o, aws::credential_store& store, std::string& err) {
  auto add_items = [&](std::string_view text, std::string_view where) {
    size_t line = 0;
    while (!text.empty()) {
      auto end = text.find_first_of(",\n");
      std::string_view item = text.substr(0, end);
      text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
      ++line;
      while (!item.empty() && (item.back() == '\r' || item.back() == ' ')) item.remove_suffix(1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      if (item.empty() || item.front() == '#') continue;
      auto colon = item.find(':');
      if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
        err = fmt::format("{} item {}: expected ACCESS_KEY_ID:SECRET", where, line);
        return false;
      }
      store.add(aws::credentials{std::string(item.substr(0, colon)),
                                 aws::secret_string(std::string(item.substr(colon + 1))), {}});
    }
    return true;
  };
  if (const char* env = std::getenv("SQSRELAY_CREDENTIALS"); env && *env)
    if (!add_items(env, "$SQSRELAY_CREDENTIALS")) return false;
  if (!o.credentials_file.empty()) {
    std::ifstream in(o.credentials_file);
    if (!in) {
      err = fmt::format("--credentials-file {}: cannot be read", o.credentials_file);
      return false;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!add_items(text, o.credentials_file)) return false;
  }
  return true;
}

// Ingest tokens: one per line (blank lines and '#' comments skipped). Never logged.
bool load_ingest_tokens(const serve_options& o, std::vector<std::string>& tokens,
                        std::string& err) {
  auto add_lines = [&](std::string_view text) {
    while (!text.empty()) {
      auto nl = text.find_first_of("\n,");
      std::string_view t = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
      while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
      if (!t.empty() && t.front() != '#') tokens.emplace_back(t);
    }
  };
  if (const char* env = std::getenv("SQSRELAY_INGEST_TOKENS"); env && *env) add_lines(env);
  if (!o.ingest_token_file.empty()) {
    std::ifstream in(o.ingest_token_file);
    if (!in) {
      err = fmt::format("--ingest-token-file {}: cannot be read", o.ingest_token_file);
      return false;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    add_lines(text);
  }
  return true;
}

void schedule_sweeps(asio::steady_timer& t, server::service& svc) {
  t.expires_after(std::chrono::seconds(1));
  t.async_wait([&t, &svc](boost::system::error_code ec) {
    if (ec) return;
    svc.expire_all();
    schedule_sweeps(t, svc);
  });
}

}  // namespace

int run_serve(const serve_options& o) {
  endpoint_spec ep;
  std::string err;
  if (!parse_listen(o.listen, ep, err)) {
    spdlog::error("{}", err);
    return 2;
  }
  aws::credential_store creds;
  if (!load_credentials(o, creds, err)) {
    spdlog::error("{}", err);
    return 2;
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (ec) {
    spdlog::error("--listen {}: '{}' is not an IP address", o.listen, ep.host);
    return 2;
  }
  if (!addr.is_loopback() && creds.empty()) {
    spdlog::error(
        "refusing to listen on {} without credentials: a non-loopback address needs SigV4 "
        "credentials (--credentials-file FILE or $SQSRELAY_CREDENTIALS with "
        "ACCESS_KEY_ID:SECRET items); use 127.0.0.1 for unauthenticated local use",
        o.listen);
    return 2;
  }

  server::frontend_options fo;
  fo.metrics_remote = o.metrics_remote;
  for (const auto& spec : o.faults) {
    auto rule = server::parse_fault_rule(spec, err);
    if (!rule) {
      spdlog::error("--fault '{}': {}", spec, err);
      return 2;
    }
    fo.faults.push_back(std::move(*rule));
  }
  std::shared_ptr<asio::ssl::context> tls;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    spdlog::error("--tls-cert and --tls-key go together");
    return 2;
  }
  if (!o.tls_cert.empty()) {
    auto ctx = http::make_tls_context(o.tls_cert, o.tls_key, &err);
    if (!ctx) {
      spdlog::error("{}", err);
      return 2;
    }
    tls = *ctx;
  }

  server::service_options so;
  so.data_dir = o.data_dir;
  so.in_memory = o.in_memory;
  so.account_id = o.account_id;
  so.region = o.region;
  if (tls) so.url_scheme = "https";
  so.sync_linger_gap = std::chrono::microseconds(o.linger_us);
  so.sync_linger_max = std::chrono::microseconds(o.linger_us * 10);
  so.write_behind = o.write_behind;
  so.preallocate = o.preallocate;
  random_source rng;
  auto svc = server::service::open(so, system_clock::instance(), rng, &err);
  if (!svc) {
    spdlog::error("cannot open the store: {}", err);
    return 1;
  }
  auto& rec = (*svc)->recovery();
  // Damage found by the replay is a warning (logged at the default level and counted in
  // /metrics): acknowledged data may be gone.
  const bool damaged = rec.corrupt_records > 0 || rec.truncated_bytes > 0;
  spdlog::log(damaged ? spdlog::level::warn : spdlog::level::info,
              "store: {} ({} queues, {} messages, {} records replayed, {} corrupt, {} bytes "
              "of torn tail truncated){}",
              o.in_memory ? "in memory" : o.data_dir, rec.queues, rec.messages, rec.records,
              rec.corrupt_records, rec.truncated_bytes,
              rec.corrupt_records > 0
                  ? ": the log was damaged; records in the damaged stretches are lost"
              : rec.truncated_bytes > 0
                  ? ": a torn tail was cut off (a write in progress when the process stopped or "
                    "failed, never acknowledged; or damage at the end of the log)"
                  : "");
  if (rec.unknown_queue_records > 0)
    spdlog::error("store: the log holds {} records of {} queue(s) that catalog.json does not "
                  "know (was it deleted or replaced by an older copy?); their messages are "
                  "not served, and new queues get ids above theirs",
                  rec.unknown_queue_records, rec.unknown_queue_ids);

  // The ingest listener: validated before anything listens, so bad options exit early.
  bool ingest_on = !o.ingest_listen.empty() && o.ingest_listen != "off";
  endpoint_spec iep;
  sources::ingest_options io;
  std::unique_ptr<pipeline::ndjson_dead_letter_file> dead_letters;
  if (ingest_on) {
    if (!parse_listen(o.ingest_listen, iep, err)) {
      spdlog::error("--ingest-listen: {}", err);
      return 2;
    }
    if (!load_ingest_tokens(o, io.tokens, err)) {
      spdlog::error("{}", err);
      return 2;
    }
    io.queue_route_defaults.on_invalid =
        o.ingest_dead_letter ? sources::invalid_policy::dead_letter : sources::invalid_policy::reject;
    io.max_body_bytes = o.body_limit;
    if (auto why = sources::http_ingest::check_bind(iep.host, io, false)) {
      spdlog::error("--ingest-listen {}: {}", o.ingest_listen, *why);
      return 2;
    }
    std::string dlf = o.dead_letter_file;
    if (dlf.empty() && o.in_memory) {
      // Nothing of an in-memory server outlives it; keep its dead letters out of the
      // (unused) data directory too.
      dlf = (std::filesystem::temp_directory_path() /
             fmt::format("sqsrelay-dead-letters-{}.ndjson", ::getpid()))
                .string();
    } else if (dlf.empty()) {
      std::error_code fec;
      std::filesystem::create_directories(o.data_dir, fec);
      dlf = (std::filesystem::path(o.data_dir) / "dead-letters.ndjson").string();
    }
    auto f = pipeline::ndjson_dead_letter_file::open(dlf);
    if (!f) {
      spdlog::error("dead-letter file {}: {}", dlf, f.error().message());
      return 1;
    }
    dead_letters = std::move(*f);
  }
  server::local_sender local(**svc, /*create_missing=*/true);
  std::unique_ptr<embedded_sink> sink;
  std::unique_ptr<sources::http_ingest> ingest;
  if (ingest_on) {
    sink = std::make_unique<embedded_sink>(local, *dead_letters);
    ingest = sources::http_ingest::make(io, *sink, err);
    if (!ingest) {
      spdlog::error("ingest: {}", err);
      return 2;
    }
    // The ingest stores into this server's message store: unhealthy when that has failed.
    ingest->set_health_check([s = svc->get()] {
      auto why = s->log().failure();
      return why ? "message store failed: " + why.message() : std::string();
    });
  }
  // Declared after everything their pending handlers may touch (the ingest objects, the
  // store): destroying a context destroys its unfinished coroutines, which must find those
  // still alive.
  io_pool pool(o.threads);
  asio::io_context& ioc = pool.first();
  fo.extra_metrics = [&ingest, &sink] {
    return ingest ? ingest->metrics_text() + sink->metrics_text() : std::string();
  };
  server::frontend fe(**svc, creds, fo);
  for (const auto& r : fe.faults().rules())
    spdlog::warn("fault injection: {}", server::format_fault_rule(r));
  http::server_options ho;
  ho.host = ep.host;
  ho.port = ep.port;
  ho.body_limit = o.body_limit;
  ho.tls = tls;
  http::server srv(
      pool.workers(), ho,
      [&fe](http::request r, http::peer_info p) { return fe.handle(std::move(r), p); },
      [&fe](int status, std::string_view reason) { return fe.transport_error(status, reason); });
  if (auto r = srv.start(); !r) {
    spdlog::error("cannot listen on {}: {}", o.listen, r.error().message());
    return 1;
  }
  std::unique_ptr<http::server> ingest_srv;
  if (ingest) {
    ingest_srv = std::make_unique<http::server>(
        pool.workers(), ingest->server_options(iep.host, iep.port),
        [&ingest](http::request r, http::peer_info p) {
          return ingest->handle(std::move(r), p);
        },
        [&ingest](int status, std::string_view reason) {
          return ingest->transport_error(status, reason);
        });
    if (auto r = ingest_srv->start(); !r) {
      if (o.ingest_listen_explicit) {
        spdlog::error("cannot listen on {} (ingest): {}", o.ingest_listen, r.error().message());
        return 1;
      }
      // The default address is a convenience: another `sqsrelay serve` (tests, a second
      // instance) may hold it. The SQS endpoint still starts; say so loudly.
      spdlog::warn("ingest listener not started: {}: {} (set --ingest-listen HOST:PORT, or "
                   "'off')",
                   o.ingest_listen, r.error().message());
      ingest_srv.reset();
    }
  }
  spdlog::info("sqsrelay serve: SQS endpoint {}://{}:{} (account {}, region {}, {}, {} "
               "threads)",
               tls ? "https" : "http", ep.host, srv.port(), o.account_id, o.region,
               creds.empty() ? "no authentication (loopback only)" : "SigV4 required", pool.size());
  if (ingest_srv)
    spdlog::info("sqsrelay serve: ingest endpoint http://{}:{}/queues/{{name}}/messages ({}; "
                 "dead letters: {})",
                 iep.host, ingest_srv->port(),
                 io.tokens.empty() ? "no token (loopback only)" : "token required",
                 dead_letters->path());

  asio::steady_timer sweeper(ioc);
  schedule_sweeps(sweeper, **svc);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  // Graceful stop: no new connections; requests in progress finish (their data is synced
  // before they are answered) until the deadline; then the store is synced and closed.
  auto in_progress = [&]() -> int64_t {
    return srv.stats().in_progress.load() + (ingest_srv ? ingest_srv->stats().in_progress.load() : 0);
  };
  signals.async_wait([&](boost::system::error_code, int sig) {
    spdlog::info("signal {}: stopping (up to {} s for requests in progress)", sig,
                 o.shutdown_seconds);
    srv.stop();
    if (ingest_srv) ingest_srv->stop();
    sweeper.cancel();
    pool.stop_when_idle(in_progress,
                      std::chrono::steady_clock::now() + std::chrono::seconds(o.shutdown_seconds));
  });
  pool.run();
  // Leaving the scope destroys, in reverse order: the listeners, the contexts (with any
  // unfinished request), the ingest objects, the dead-letter file (written and synced) and
  // last the store (synced and closed).
  spdlog::info("stopping: syncing and closing the store");
  return 0;
}

}  // namespace sqsrelay::app
