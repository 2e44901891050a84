// The embedded SQS server's state: the queue registry, the catalog of queue metadata and
// the message WAL, with recovery on open.
//
// Thread-safety: all methods are thread-safe. `mu_` guards the registry maps and catalog
// writes; each queue guards its own messages. Lock order: service -> queue -> WAL.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "server/queue.h"
#include "sqs/errors.h"
#include "wal/log.h"

namespace sqsrelay::server {

struct service_options {
  std::filesystem::path data_dir = "sqsrelay-data";
  bool in_memory = false;
  bool sync = true;  // false: never fdatasync (benchmarks of the non-durable path only)
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  uint64_t segment_bytes = 64ull << 20;
  std::string url_scheme = "http";  // "https" when the listener serves TLS
  // Group-commit linger of the WAL (wal::options::sync_linger_gap/_max).
  std::chrono::microseconds sync_linger_gap{100};
  std::chrono::microseconds sync_linger_max{1000};
  // WAL write-behind (wal::options::write_behind): a disk write error then fails the store
  // until restart, like an fdatasync error, instead of failing one request.
  bool write_behind = true;
  // WAL segments preallocated ahead of use (wal::options::preallocate).
  bool preallocate = true;
};

struct recovery_report {
  uint64_t queues = 0, messages = 0, records = 0, corrupt_records = 0, truncated_bytes = 0;
  // Records of queue ids the catalog never handed out (catalog.json lost or replaced by an
  // older copy): their messages cannot be served. New queues get ids above them.
  uint64_t unknown_queue_records = 0;
  uint64_t unknown_queue_ids = 0;
};

class service {
 public:
  static result<std::unique_ptr<service>> open(const service_options& o, const clock& clk,
                                               random_source& rng, std::string* error);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  const service_options& options() const { return opts_; }
  const recovery_report& recovery() const { return recovery_; }
  const clock& clk() const { return clk_; }
  random_source& rng() { return rng_; }
  wal::log& log() { return *log_; }

  std::string queue_arn(std::string_view name) const;
  // The queue URL clients see: http://HOST/ACCOUNT/NAME, HOST from the request.
  std::string queue_url(std::string_view host, std::string_view name) const;
  // The queue named by a QueueUrl (any host; the last path segment is the name).
  std::shared_ptr<queue> find_by_url(std::string_view url) const;
  std::shared_ptr<queue> find(std::string_view name) const;
  std::shared_ptr<queue> find_by_arn(std::string_view arn) const;

  using create_result = std::variant<std::shared_ptr<queue>, sqs::api_error>;
  create_result create_queue(std::string_view name,
                             const std::vector<std::pair<std::string, std::string>>& attrs,
                             const std::map<std::string, std::string>& tags);
  std::optional<sqs::api_error> delete_queue(const std::shared_ptr<queue>& q);
  // Runs fn on the queue's metadata, then persists the catalog.
  std::optional<sqs::api_error> update_queue(const std::shared_ptr<queue>& q,
                                             const std::function<void(queue_metadata&)>& fn);
  std::vector<std::shared_ptr<queue>> list(std::string_view prefix) const;
  // Queues whose RedrivePolicy names `arn` as their dead-letter queue.
  std::vector<std::shared_ptr<queue>> dead_letter_sources(std::string_view arn) const;

  // Drops expired messages everywhere; called periodically.
  size_t expire_all();

  uint64_t live_messages() const;

  // A write the store refused (disk full, I/O error), answered with a 503: counted, and
  // logged — once at error level when the log has failed for good, else at most every 10 s.
  void note_store_refusal(std::string_view message);
  uint64_t store_refusals() const { return store_refusals_.load(); }

 private:
  service(const service_options& o, const clock& clk, random_source& rng);
  result<void> recover(std::string* error);
  void replay_record(uint8_t type, std::span<const char> payload, wal::location loc);
  result<void> persist_catalog_locked();

  service_options opts_;
  const clock& clk_;
  random_source& rng_;
  std::unique_ptr<wal::env> mem_env_;
  std::unique_ptr<wal::log> log_;
  queue_context ctx_;
  recovery_report recovery_;
  std::atomic<uint64_t> store_refusals_{0};
  std::atomic<int64_t> store_refusal_logged_ms_{0};
  std::atomic<bool> store_failure_logged_{false};

  mutable std::shared_mutex mu_;
  uint64_t next_queue_id_ = 1;
  std::map<std::string, std::shared_ptr<queue>, std::less<>> by_name_;
  std::map<uint64_t, std::shared_ptr<queue>> by_id_;
  // During replay only: messages of queues deleted since, by queue id and seq (see
  // replay_record). Holds no WAL references.
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, message_entry>> replay_ghosts_;
  uint64_t max_seq_seen_ = 0;
  uint64_t max_queue_id_seen_ = 0;
  std::set<uint64_t> unknown_queue_ids_;  // ids >= the catalog's next_queue_id in the log
};

bool valid_queue_name(std::string_view name);

}  // namespace sqsrelay::server
