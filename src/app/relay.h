// The durable relay of `sqsrelay run`: sources hand batches to a spool sink, which appends
// them to the spool (group-committed; the source's 200 waits for the fdatasync, or with
// ack = delivered for SQS's answer); one reader thread feeds what is durable to a sender per
// endpoint; each message's outcome (delivered, or dead-lettered with its reason) marks its
// spool record delivered, so the spool's delivery position moves and fully delivered
// segments are deleted. SQS down: senders retry with backoff, their bounded queues fill,
// the reader blocks, the spool grows to its disk budget, then sources answer 503 +
// Retry-After. Nothing acknowledged is lost; after a crash, records not yet marked (or
// marked but not yet persisted) are sent again: at least once.
//
// Threads: the spool's own threads; one reader thread; one I/O thread running every
// endpoint's HTTP client and sender (single-threaded executor, as the sender requires).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "pipeline/dead_letter.h"
#include "pipeline/sender.h"
#include "pipeline/sqs_transport.h"
#include "sources/http_ingest/ingest_types.h"
#include "spool/spool.h"

namespace sqsrelay::app {

struct relay_endpoint {
  std::string name;  // what routes refer to
  pipeline::connection_options connection;
  pipeline::sender_options sender;
};

struct relay_options {
  spool::options spool;
  std::vector<relay_endpoint> endpoints;
  std::string dead_letter_file;  // NDJSON; default: SPOOL_DIR/dead-letters.ndjson
  size_t read_batch = 4096;      // records per spool read
  std::chrono::seconds ack_delivered_timeout{30};  // then 503: the data stays spooled
  std::chrono::seconds retry_after{1};             // Retry-After when the spool is full
};

struct relay_stats {
  std::atomic<uint64_t> spooled{0}, delivered{0}, dead_lettered{0}, abandoned{0},
      undecodable{0}, spool_full{0}, spool_errors{0}, ack_timeouts{0},
      ack_undelivered{0}, ack_released{0};
};

class relay {
 public:
  static std::unique_ptr<relay> open(relay_options o, std::string& err);
  ~relay();  // stop(10 s) unless stopped
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  // The sink that spools batches for `endpoint`; nullptr for an unknown name.
  sources::ingest_sink* sink(std::string_view endpoint);

  // Shutdown: requests of ack = delivered routes stop waiting for SQS and answer 503 +
  // Retry-After (their data stays spooled and is delivered after the restart), and new ones
  // answer so at once, instead of being cut off when the listeners' deadline passes.
  void release_ack_waiters();

  // Stops reading the spool, lets the senders finish what they hold until `timeout`, then
  // persists the delivery position. Whatever was not delivered stays in the spool.
  void stop(std::chrono::steady_clock::duration timeout);

  std::string metrics_text() const;
  spool::stats spool_stats() const { return spool_->get_stats(); }
  const relay_stats& stats() const { return stats_; }

 private:
  class spool_sink;
  struct ack_tracker;
  struct endpoint_state {
    std::string name;
    std::unique_ptr<pipeline::sqs_connection> connection;
    std::unique_ptr<pipeline::sender> sender;
    std::unique_ptr<spool_sink> sink;
  };

  relay() = default;
  void read_loop();
  void deliver(uint64_t seq, std::string_view data);
  void finished(uint64_t seq, bool ack_waiter, const pipeline::outcome& o);

  relay_options opts_;
  std::unique_ptr<spool::spool> spool_;
  std::unique_ptr<pipeline::ndjson_dead_letter_file> dead_letters_;
  pipeline::owned_io_context io_{1};  // see destroy_handlers() in stop()
  std::thread io_thread_;
  std::vector<std::unique_ptr<endpoint_state>> endpoints_;
  std::unique_ptr<ack_tracker> acks_;
  std::thread reader_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  relay_stats stats_;
};

}  // namespace sqsrelay::app
