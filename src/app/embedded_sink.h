// The ingest sink of `sqsrelay serve`: ingested messages go straight into the embedded
// server's queues (server::local_sender), in process. The embedded store is a
// group-committed WAL, so the 200 an ingest client gets means "fdatasync'd" exactly as
// with the spool; there is no second copy to make. Both ack modes are the same here: once
// stored, the message is in its queue (delivered).
//
// Invalid elements of `dead_letter` routes, and messages the queue itself refuses (e.g. a
// queue with a MaximumMessageSize below the route's), go to the dead-letter file, synced
// before the 200.
#pragma once

#include <atomic>
#include <cstdint>

#include "pipeline/dead_letter.h"
#include "server/local_sender.h"
#include "sources/http_ingest/ingest_types.h"

namespace sqsrelay::app {

struct embedded_sink_stats {
  std::atomic<uint64_t> batches{0}, stored{0}, dead_lettered{0}, failures{0};
};

class embedded_sink final : public sources::ingest_sink {
 public:
  embedded_sink(server::local_sender& sender, pipeline::dead_letter_sink& dead_letters)
      : sender_(sender), dead_letters_(dead_letters) {}

  boost::asio::awaitable<sources::submit_result> async_submit(
      sources::ingest_target target, sources::ingest_batch batch) override;

  const embedded_sink_stats& stats() const { return stats_; }
  std::string metrics_text() const;

 private:
  server::local_sender& sender_;
  pipeline::dead_letter_sink& dead_letters_;
  embedded_sink_stats stats_;
};

}  // namespace sqsrelay::app
