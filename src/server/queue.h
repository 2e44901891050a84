// One standard queue: its metadata and the index of its live messages.
//
// Ownership: the message bodies live in the store's WAL; a queue keeps a compact entry per
// message (location, timestamps, receive state) in a message_index keyed by the message's
// sequence number (each queue numbers its own messages, so the seqs are dense), plus a
// ready deque and two min-heaps (delayed, in flight) whose stale entries are skipped lazily.
//
// Thread-safety: every public method locks `mu_`. A caller that appends to the WAL under
// the lock gets the records' order in the WAL equal to the order of state changes, which
// is what replay relies on.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/result.h"
#include "server/message_codec.h"
#include "server/message_index.h"
#include "server/queue_attributes.h"
#include "sqs/errors.h"
#include "wal/log.h"

namespace sqsrelay::server {

// A long poller parked on a queue. `wake` must be cheap and thread-safe (it posts).
struct queue_waiter {
  std::function<void()> wake;
};

struct received_message {
  uint64_t seq = 0;
  wal::location loc;
  uint32_t receive_count = 0;
  int64_t first_receive_ms = 0;
  std::array<char, 40> receipt_handle;  // base64 of handle_bytes (no allocation per message)
  // DeadLetterQueueSourceArn: the queue this message was redriven from, or empty. Points
  // into the receiving queue's interned ARNs, which live as long as the queue.
  std::string_view dead_letter_source;
  std::string_view receipt_handle_text() const { return {receipt_handle.data(), 40}; }
};

struct queue_counts {
  uint64_t visible = 0, inflight = 0, delayed = 0;
};

struct queue_metadata {
  uint64_t id = 0;
  std::string name;
  queue_attributes attributes;
  std::map<std::string, std::string> tags;
  int64_t created_s = 0;
  int64_t modified_s = 0;
};

// Shared, process-wide state the queues use: the WAL, the first sequence number of queues
// (each queue then allocates its own, from the larger of this and what replay found in it)
// and the receipt-handle epoch (random per process start, so handles from before a restart
// are recognised as such).
struct queue_context {
  wal::log* log = nullptr;
  std::atomic<uint64_t> next_seq{1};
  uint32_t epoch = 0;
  std::atomic<uint64_t> moved_to_dlq{0};
};

class queue {
 public:
  queue(queue_metadata meta, queue_context& ctx);
  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;

  uint64_t id() const { return id_; }
  // Sequence numbers: each queue allocates its own, increasing, never reused (see
  // queue_context). start_seqs() sets the first one after replay.
  uint64_t allocate_seqs(uint64_t n) { return next_seq_.fetch_add(n); }
  void start_seqs(uint64_t floor);
  const std::string& name() const { return name_; }

  queue_metadata metadata() const;
  // The current attributes: an immutable snapshot, cheap to take on every request.
  std::shared_ptr<const queue_attributes> attributes() const;
  void update_metadata(const std::function<void(queue_metadata&)>& fn);
  bool deleted() const { return deleted_.load(); }
  void mark_deleted();

  // Stores the messages (one WAL record) and indexes them; returns the record's LSN, to be
  // awaited for durability before answering.
  result<uint64_t> send(std::span<const prepared_message> msgs, int64_t now_ms,
                        std::string_view sender_id);

  struct receive_options {
    int max_messages = 1;
    int visibility_timeout = 30;
    int64_t now_ms = 0;
    queue* dead_letter = nullptr;  // resolved from RedrivePolicy by the caller
    queue_waiter* park_if_empty = nullptr;  // registered atomically when nothing is ready
  };
  struct receive_result {
    std::vector<received_message> messages;
    std::optional<sqs::api_error> error;
    uint64_t lsn = 0;  // of any dead-letter move records, to await
    // Messages taken out for the dead-letter queue: (new seq there, entry). The caller
    // hands them to the dead-letter queue's adopt() after this call returns (lock order).
    std::vector<std::pair<uint64_t, message_entry>> moved;
  };
  receive_result receive(const receive_options& o);
  void unpark(queue_waiter* w);

  enum class handle_status { ok, invalid, stale_or_gone };
  // A receipt handle: queue, seq, receive generation, process epoch, and the message's tag,
  // so that a handle can never name another message that reuses a seq after a crash.
  struct decoded_handle {
    uint64_t queue_id = 0, seq = 0;
    uint32_t gen = 0, epoch = 0, tag = 0;
  };
  static std::optional<decoded_handle> decode_handle(std::string_view h);

  // Deletes by receipt handle; stale handles succeed without deleting (as SQS documents).
  // `lsn` is what to await before answering: the delete record, or, when a handle found its
  // message already gone, the last record appended (a concurrent delete may not be durable).
  struct delete_result {
    std::vector<handle_status> status;  // per handle
    uint64_t lsn = 0;                   // 0 when nothing was logged
    // The store refused the delete record (disk full, I/O error): nothing was deleted, and
    // the caller answers with a retryable error, not with per-handle verdicts.
    std::error_code store_error;
  };
  delete_result delete_messages(std::span<const std::string_view> handles);

  // Sets the visibility timeout of an in-flight message (0 makes it visible now).
  std::optional<sqs::api_error> change_visibility(std::string_view handle, int timeout_s,
                                                  int64_t now_ms);

  // Fails with PurgeQueueInProgress within 60 s of the previous purge, as SQS does.
  std::variant<uint64_t, sqs::api_error> purge(int64_t now_ms);
  // Replay of a `receive` record.
  void note_receive(uint64_t seq, int64_t now_ms);
  queue_counts counts(int64_t now_ms);
  // Earliest time a delayed or in-flight message may become visible (ms), or 0.
  int64_t next_due_ms();
  // Drops expired messages at the front of the ready deque; returns how many.
  size_t expire(int64_t now_ms);
  size_t late_expiry_entries() const;  // tests: the out-of-order expiry heap's size

  // Replay and dead-letter moves. restore() inserts without queue bookkeeping; rebuild()
  // then derives the ready deque, heaps, counts and the WAL segment references. Messages
  // that were in flight before a restart are visible again: receive state is not logged.
  // restore() returns false when the seq is already present. The caller takes the WAL
  // reference for a restored entry; forget() and clear() release theirs.
  bool restore(uint64_t seq, const message_entry& e);
  void rebuild(int64_t now_ms);
  void forget(uint64_t seq);
  std::optional<message_entry> take(uint64_t seq);
  // `source_arn` is the queue it was redriven from (DeadLetterQueueSourceArn).
  void adopt(uint64_t seq, message_entry e, int64_t now_ms, std::string_view source_arn);
  // Replay of a dead-letter move: restore() plus the source queue's ARN.
  bool restore_moved(uint64_t seq, const message_entry& e, std::string_view source_arn);
  void clear();

 private:
  struct timed {
    int64_t due_ms;
    uint64_t seq;
    uint32_t gen;
    bool operator>(const timed& o) const { return due_ms > o.due_ms; }
  };
  using min_heap = std::priority_queue<timed, std::vector<timed>, std::greater<timed>>;

  void promote_due(int64_t now_ms);
  void make_ready(uint64_t seq, message_entry& e);
  void erase_locked(uint64_t seq);
  void unindex_locked(uint64_t seq);  // out of the index (and dead-letter sources), no release
  void note_source_locked(uint64_t seq, std::string_view source_arn);
  void clear_locked();  // drops every message and releases its WAL reference
  void wake_waiters(size_t n);
  void log_receives(const std::vector<received_message>& msgs, int64_t now_ms);
  std::array<char, 40> encode_handle(uint64_t seq, const message_entry& e) const;
  handle_status resolve_handle(std::string_view h, uint64_t& seq) const;
  bool expired(const message_entry& e, int64_t now_ms) const;

  const uint64_t id_;
  const std::string name_;
  queue_context& ctx_;
  std::atomic<bool> deleted_{false};

  mutable std::mutex mu_;
  queue_metadata meta_;
  std::shared_ptr<const queue_attributes> attrs_;  // snapshot of meta_.attributes
  message_index messages_;
  std::atomic<uint64_t> next_seq_{1};
  uint64_t max_seq_ = 0;  // highest seq ever indexed (replay included)
  std::deque<uint64_t> ready_;
  // Expiry: `ready_` holds fresh messages in send order, so expiry pops its front. Messages
  // that became ready out of that order (after a delay, back from flight, moved in from a
  // source queue) wait here by send time (`due_ms` = sent_ms), each at most once.
  min_heap late_expiry_;
  // Messages redriven into this queue: seq -> index into source_arns_ (interned; a deque,
  // so views into it stay valid as it grows). Only dead-letter queues fill these.
  std::unordered_map<uint64_t, uint32_t> dead_letter_sources_;
  std::deque<std::string> source_arns_;
  min_heap delayed_;
  min_heap inflight_;
  uint64_t n_ready_ = 0, n_inflight_ = 0, n_delayed_ = 0;
  std::vector<queue_waiter*> waiters_;
  int64_t last_purge_ms_ = 0;
  std::string scratch_;  // record encoding buffer, reused under mu_
};

inline constexpr uint64_t max_inflight_messages = 120000;
inline constexpr size_t handle_bytes = 8 + 8 + 4 + 4 + 4;

// The tag that receipt handles carry for a message (see decoded_handle).
uint32_t message_tag(const message_id& id);

}  // namespace sqsrelay::server
