// `sqsrelay run -c relay.toml`: the configured pipelines. HTTP ingest listeners hand
// batches to the durable spool (their 200 waits for its fdatasync, or with
// ack = delivered for SQS's answer); the relay sends what is spooled to each route's
// endpoint (Amazon SQS or a `sqsrelay serve`); Prometheus metrics on their own listener.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace sqsrelay::app {

struct run_options {
  std::string config_file;
  unsigned threads = 0;            // I/O threads for the listeners; 0: one per core
  unsigned shutdown_seconds = 30;  // SIGTERM: requests in progress and sends finish within
};

CLI::App* add_run_command(CLI::App& app, run_options& o);
int run_relay(const run_options& o);

}  // namespace sqsrelay::app
