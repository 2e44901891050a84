// `sqsrelay queue create|list|url|attrs|set|purge|delete`: queue administration against any
// SQS endpoint (the embedded server by default).
#pragma once

#include <string>
#include <vector>

#include "app/client_flags.h"

namespace sqsrelay::app {

struct queue_options {
  client_flags client;
  std::string action;               // which sub-subcommand ran
  std::string queue;                // name or URL (create/url: a name)
  std::vector<std::string> attrs;   // K=V
  std::vector<std::string> tags;    // K=V
  std::vector<std::string> names;   // attrs: attribute names (default All)
  std::string prefix;               // list
};

CLI::App* add_queue_command(CLI::App& app, queue_options& o);
int run_queue(const queue_options& o);

}  // namespace sqsrelay::app
