// `sqsrelay send`: stream a file or stdin into a queue through the batching sender.
#pragma once

#include <string>
#include <vector>

#include "app/client_flags.h"

namespace sqsrelay::app {

struct send_options {
  client_flags client;  // endpoint, region, profile, CA bundle: resolved as receive and queue do
  std::string queue;
  std::string input = "-";
  std::string format = "auto";
  std::vector<std::string> attr_fields;
  std::string group_field;
  std::string dedup_field;
  std::string group_id;  // one group id for every message
  std::string dead_letter_file;
  std::string dead_letter_queue;
  double linger_ms = 5;
  unsigned max_in_flight = 256;
  unsigned max_attempts = 0;
  double backoff_base_ms = 25;
  double backoff_cap_ms = 5000;
  double drain_timeout_s = 300;
  bool no_progress = false;
  bool progress = false;
  bool summary_json = false;
};

// Registers the subcommand and its options (bound to `o`).
CLI::App* add_send_command(CLI::App& app, send_options& o);
// Runs it; returns the process exit code (0: everything delivered; 1: something was not;
// 2: unusable arguments or setup).
int run_send(const send_options& o);

}  // namespace sqsrelay::app
