// `sqsrelay serve`: the embedded SQS-compatible server as a process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sqsrelay::app {

struct serve_options {
  std::string listen = "127.0.0.1:9324";
  std::string data_dir = "./sqsrelay-data";
  bool in_memory = false;
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  std::string credentials_file;  // lines "ACCESS_KEY_ID:SECRET"; also $SQSRELAY_CREDENTIALS
  unsigned threads = 0;          // 0: one per core
  size_t body_limit = 8u << 20;
  std::vector<std::string> faults;  // fault specs, see server/faults.h
  std::string tls_cert, tls_key;    // both set: HTTPS
  // The HTTP ingest listener (POST /queues/{name}/messages), storing into the embedded
  // queues; empty or "off": none.
  std::string ingest_listen = "127.0.0.1:8080";
  bool ingest_listen_explicit = false;  // set on the command line: failing to bind is fatal
  std::string ingest_token_file;    // tokens, one per line; also $SQSRELAY_INGEST_TOKENS
  bool ingest_dead_letter = false;  // invalid elements: dead-letter them (default: 400)
  std::string dead_letter_file;     // default: DATA_DIR/dead-letters.ndjson
  unsigned shutdown_seconds = 10;   // SIGTERM: finish requests in progress within this
  bool metrics_remote = false;      // GET /metrics from non-loopback peers (no authentication)
  // Group commit: the WAL's sync thread waits while appends keep arriving, up to this gap
  // between them (and 10x it in all) before an fdatasync; 0: sync at once. Off by default:
  // on an idle 2-core machine with 16 clients it cost 15-20 % of throughput (it saves CPU
  // per message only when the CPU, not the disk, is the bottleneck).
  unsigned linger_us = 0;
  // WAL write-behind (wal::options::write_behind): records are written by the sync thread,
  // one write per group commit, instead of one write per request on the I/O threads.
  bool write_behind = true;
  // WAL segments written with zeros ahead of use (wal::options::preallocate), so that an
  // fdatasync flushes data only.
  bool preallocate = true;
};

// Runs until SIGINT/SIGTERM; returns the process exit code.
int run_serve(const serve_options& o);

}  // namespace sqsrelay::app
