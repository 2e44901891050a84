// `sqsrelay receive`: print a queue's messages as NDJSON, optionally deleting them.
#pragma once

#include <string>

#include "app/client_flags.h"

namespace sqsrelay::app {

struct receive_options {
  client_flags client;
  std::string queue;
  bool delete_after = false;
  int max = 10;              // messages to print in total (0: until the queue is empty)
  int wait = 0;              // WaitTimeSeconds of each ReceiveMessage (0..20)
  int visibility = -1;       // VisibilityTimeout (-1: the queue's)
  bool keep_going = false;   // --follow: keep polling when the queue is empty
};

CLI::App* add_receive_command(CLI::App& app, receive_options& o);
int run_receive(const receive_options& o);

}  // namespace sqsrelay::app
