// The `relay.toml` model for `sqsrelay run -c relay.toml`: sources (HTTP ingest listeners
// with their routes; room for other kinds), transforms (none available yet), endpoints
// (the embedded server or any SQS endpoint), spool, sender and metrics settings.
//
// Public API (namespace sqsrelay::config):
//   load_file(path, err) / load_string(text, name, err) -> std::optional<relay_config>
//   help_text()               the option reference as plain text (for --help)
//   configuration_markdown()  the option reference as docs/configuration.md
// Every option is declared once (relay_config.cc) with its default (the member initializers
// below), description and bounds. Errors carry file, line, column and key path.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/option_table.h"
#include "sources/http_ingest/ingest_types.h"

namespace sqsrelay::config {

// "embedded" is the embedded server of a `sqsrelay serve` at its default address
// (http://127.0.0.1:9324); anything else is an SQS endpoint URL, e.g.
// https://sqs.eu-west-1.amazonaws.com.
inline constexpr std::string_view embedded_endpoint = "embedded";

struct endpoint_config {
  std::string name;  // the key in [endpoints.<name>]
  std::string url = std::string(embedded_endpoint);
  std::string region = "us-east-1";
  std::string profile;           // AWS credentials profile; empty: the default chain
  std::string credentials_file;  // file of ACCESS_KEY_ID:SECRET, for the embedded server
  uint32_t line = 0;
};

// One route of an HTTP ingest listener: path -> queue on an endpoint.
struct route_config : sources::route_options {
  std::string endpoint = std::string(embedded_endpoint);
  uint32_t line = 0;
};

struct http_source_config : sources::ingest_options {
  std::string name;  // defaults to "http-<index>"
  std::string listen = "127.0.0.1:8080";
  bool allow_insecure = false;  // allow a non-loopback listener without a token
  std::string tokens_file;      // one token per line (added to `tokens`)
  std::string tokens_env;       // an environment variable with comma-separated tokens
  std::string default_endpoint = std::string(embedded_endpoint);  // for /queues/{name}/messages
  std::vector<route_config> route_configs;  // also copied into ingest_options::routes
  uint32_t line = 0;
};

struct spool_config {
  std::string dir = "./sqsrelay-spool";
  uint64_t disk_budget = 10ull << 30;
  uint64_t segment_bytes = 64ull << 20;
};

struct sender_config {
  std::chrono::milliseconds linger{5};
  uint32_t max_in_flight = 64;
  std::chrono::seconds missing_queue_grace{300};
  std::chrono::seconds ack_delivered_timeout{30};
};

struct metrics_config {
  std::string listen = "127.0.0.1:9090";  // empty: no metrics listener
  bool allow_remote = false;              // a non-loopback listen address needs this
};

struct relay_config {
  std::string file;
  std::vector<http_source_config> http_sources;
  std::vector<endpoint_config> endpoints;  // always includes "embedded"
  spool_config spool;
  sender_config sender;
  metrics_config metrics;

  const endpoint_config* endpoint(std::string_view name) const;
};

struct listen_address {
  std::string host;  // an IP address ("localhost" becomes 127.0.0.1; brackets removed)
  uint16_t port = 0;
};
// "HOST:PORT", "[v6]:PORT".
std::optional<listen_address> parse_listen(std::string_view s, std::string& err);

std::optional<relay_config> load_file(const std::string& path, config_error& err);
// `name` stands for the file in error messages.
std::optional<relay_config> load_string(std::string_view text, std::string name, config_error& err);

std::string help_text();
std::string configuration_markdown();

}  // namespace sqsrelay::config
