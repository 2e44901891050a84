// Flags shared by the commands that talk to an SQS endpoint (`receive`, `queue`), and the
// little runner they use: build a session, run one coroutine to completion, return its exit
// code. Exit codes: 0 success, 1 the operation failed (SQS or network error), 2 unusable
// arguments or configuration.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "sqs/session.h"

namespace sqsrelay::app {

struct client_flags {
  std::string endpoint_url;
  std::string region;
  std::string profile;
  std::string ca_bundle;
  bool no_verify_ssl = false;
  double connect_timeout_s = 5;
  double read_timeout_s = 30;
};

inline void add_client_flags(CLI::App* cmd, client_flags& f) {
  cmd->add_option("--endpoint-url", f.endpoint_url,
                  "SQS endpoint (default: $AWS_ENDPOINT_URL_SQS, $AWS_ENDPOINT_URL, the config "
                  "file, the queue URL, the region's AWS endpoint, else the embedded server "
                  "http://127.0.0.1:9324)");
  cmd->add_option("--region", f.region, "Signing region (default: $AWS_REGION, config, queue URL)");
  cmd->add_option("--profile", f.profile, "Profile of the shared config/credentials files");
  cmd->add_option("--ca-bundle", f.ca_bundle, "PEM file of CAs to trust for https endpoints");
  cmd->add_flag("--no-verify-ssl", f.no_verify_ssl,
                "Do not verify TLS certificates (testing only)");
  // A zero or negative timeout would fail every request (or none would ever time out).
  cmd->add_option("--connect-timeout", f.connect_timeout_s, "Seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--read-timeout", f.read_timeout_s, "Seconds per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

inline sqs::session_options session_options_from(const client_flags& f, std::string queue) {
  sqs::session_options o;
  o.endpoint.endpoint_url = f.endpoint_url;
  o.endpoint.region = f.region;
  o.endpoint.profile = f.profile;
  o.endpoint.ca_bundle = f.ca_bundle;
  o.endpoint.queue = std::move(queue);
  o.verify_tls = !f.no_verify_ssl;
  o.max_connections = 8;
  o.connect_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.connect_timeout_s * 1000));
  o.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.read_timeout_s * 1000));
  return o;
}

// Opens a session for `queue` and runs `body(session)` on a fresh io_context.
inline int run_with_session(const client_flags& f, std::string queue,
                            std::function<boost::asio::awaitable<int>(sqs::session&)> body) {
  // stdout carries the command's output (URLs, JSON, NDJSON); logs and errors go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sqsrelay"));
  boost::asio::io_context ioc{1};
  auto s = sqs::session::open(ioc.get_executor(), session_options_from(f, std::move(queue)));
  if (!s) {
    spdlog::error("{}", s.error());
    return 2;
  }
  std::optional<int> rc;
  boost::asio::co_spawn(ioc, body(**s), [&](std::exception_ptr e, int r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("internal error: {}", ex.what());
      }
      rc = 1;
      return;
    }
    rc = r;
  });
  ioc.run();
  return rc.value_or(1);
}

// Logs an SQS client error as the command's failure and returns exit code 1.
inline int report(const sqs::client_error& e) {
  spdlog::error("{}", e.message);
  return e.kind == sqs::error_kind::invalid ? 2 : 1;
}

}  // namespace sqsrelay::app
