// The durable spool: a FIFO of opaque records on disk between the sources and the sender,
// built on the write-ahead log (src/wal). Byte format and recovery: docs/spool_format.md.
//
//   append(records, done)      many threads; done(ec, first_seq) once the records are
//                              fdatasync'd (group commit) or failed; never earlier
//   read(max, out)             one reader; non-blocking; only durable records, in seq order,
//                              starting after the persisted delivery position
//   on_readable(cb)            cb() when durable records arrive after read() found none
//   mark_delivered(seq)        any order; the delivery position is the highest seq with
//                              every seq up to it delivered; persisted in batches
//
// Seqs number records from 1 in append order and are never reused, also across restarts.
// A seq may be skipped (an append that failed, damage quarantined by recovery): the
// reader steps over it.
//
// Durability: done(ok) means the records are on disk (fdatasync'd, and the directory
// entry of a new segment fsync'd). Appends from all threads share the log's sync thread's
// fdatasync: one per group commit, never one per record, never on a timer.
//
// Delivery is at least once: after a restart the reader starts after the persisted position,
// so records delivered (marked) but not yet persisted come again, as do records handed out
// but not marked. Within one run each record is handed out exactly once. The position is
// persisted at most every `position_interval` while it moves, on persist_position(), and on
// close. A segment is deleted only when every record in it is at or below a position that
// is already durable (so a crash never loses undelivered data, and never makes delivered
// data vanish before the position that says so).
//
// Back-pressure: append fails at once with errc::spool_full when the bytes on disk (plus
// appends not yet written) would pass budget_bytes, or when the disk is full (ENOSPC).
// Space comes back as fully delivered segments are deleted.
//
// Memory: appends are copied once into a write buffer and written as one wal record per
// group (one pwrite per group, not per record or per append). The reader reads from the
// segment files in chunks (page cache), never keeping the backlog in memory; what the spool
// keeps per segment is a few words.
//
// Failure: a failed fdatasync fails the spool for good (errc::spool_failed for every append
// not yet acknowledged and every later one): after a failed fsync the kernel may have
// dropped dirty pages, so nothing written since the last good sync can be trusted. Durable
// records can still be read and marked. Reopen (destroy and open again) to recover: the
// reopened spool replays what is on disk. A failed write (ENOSPC, EIO) fails only the
// appends of that group (ENOSPC as spool_full); the spool stays usable.
//
// Threads: a writer thread (pwrite of pending groups), the log's sync thread (fdatasync,
// completion callbacks, on_readable), the log's reclaimer thread (segment deletion) and a
// position thread (position file writes). Every public method is thread-safe except read(),
// which one thread at a time may call. Callbacks (done, on_readable) run on the log's sync
// thread, or inline in append() for immediate failures; they must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "spool/append_callback.h"
#include "spool/errc.h"
#include "spool/missing_ranges.h"
#include "wal/env.h"
#include "wal/log.h"

namespace sqsrelay::spool {

class position_file;
struct position_recovery;
class quarantine;

struct options {
  std::filesystem::path dir;                  // created if missing
  uint64_t budget_bytes = uint64_t{1} << 30;  // segment bytes on disk (with appends pending)
  uint64_t segment_bytes = 64 << 20;          // clamped to [4 KiB, budget_bytes / 4]
  uint64_t max_append_bytes = 16 << 20;       // one append's records (4 bytes each + data)
  uint64_t max_pending_bytes = 64 << 20;      // appended, not yet written: beyond, spool_full
  uint64_t group_bytes = 1 << 20;             // a pending group takes appends up to this size
  uint64_t read_chunk_bytes = 1 << 20;        // the reader's pread size (a larger group: more)
  uint64_t quarantine_copy_bytes = 64 << 20;  // damaged bytes copied per open; then only where
  std::chrono::milliseconds position_interval{50};  // batches position writes
  bool sync = true;  // false: no fsync at all; appends durable at once (tests, benchmarks)
};

// One record handed out by read(): a view into the reader's buffer, valid until the next
// read() call.
struct record {
  uint64_t seq = 0;
  std::string_view data;
};

// What open() found and did.
struct recovery_stats {
  uint64_t segments = 0;           // segments replayed
  uint64_t groups = 0;             // intact groups
  uint64_t records = 0;            // records in them
  uint64_t undelivered = 0;        // records after the persisted position: delivered again
  uint64_t position = 0;           // the persisted position found
  bool position_reset = false;     // the position file was damaged: everything is redelivered
  uint64_t truncated_bytes = 0;    // torn tail cut off the newest segment (never acknowledged)
  uint64_t corrupt_ranges = 0;     // damaged stretches skipped and quarantined
  uint64_t corrupt_bytes = 0;      // bytes in them
  uint64_t quarantined_bytes = 0;  // of those, copied into quarantine.bin
  uint64_t stray_files = 0;        // unknown files in the spool and log directories; kept
  // Segments missing or empty where undelivered records should be (a segment file deleted
  // or truncated; see missing_ranges.h). Never fails open: the reader steps over the seqs.
  uint64_t missing_ranges = 0;
  uint64_t missing_seqs = 0;  // seqs in them (an upper bound of the records lost)
  std::vector<missing_range> missing;
};

struct stats {
  // append
  uint64_t append_calls = 0;
  uint64_t appended_records = 0;  // accepted into the write buffer
  uint64_t synced_records = 0;    // acknowledged durable
  uint64_t failed_records = 0;    // accepted but failed (write or sync error)
  uint64_t rejected_full = 0;     // append calls refused with spool_full (budget or memory)
  uint64_t enospc_errors = 0;     // groups whose write hit a full disk
  uint64_t write_errors = 0;      // groups whose write failed otherwise
  uint64_t groups_written = 0;    // pwrites
  uint64_t fsyncs = 0;            // group commits of the log (one fdatasync per segment each)
  // disk
  uint64_t bytes_on_disk = 0;  // segment bytes counted against the budget
  uint64_t budget_bytes = 0;
  uint64_t segments = 0;
  uint64_t segments_deleted = 0;
  // delivery
  uint64_t last_seq = 0;       // last seq assigned
  uint64_t durable_seq = 0;    // last seq known durable
  uint64_t read_records = 0;   // handed out by read()
  uint64_t read_seq = 0;       // last seq handed out (or stepped over)
  uint64_t delivered_seq = 0;  // delivery position in memory
  uint64_t persisted_seq = 0;  // delivery position on disk
  uint64_t position_writes = 0;
  uint64_t position_errors = 0;
  uint64_t read_errors = 0;
  // damage (recovery and reads)
  uint64_t corrupt_ranges = 0;
  uint64_t corrupt_bytes = 0;
  uint64_t quarantined_bytes = 0;
  uint64_t quarantine_errors = 0;
  uint64_t missing_ranges = 0;  // found by recovery (recovery_stats)
  uint64_t missing_seqs = 0;
  bool failed = false;
};

class spool {
 public:
  // Opens (creating if needed) the spool in opts.dir: replays the log (torn tail cut,
  // damage quarantined and skipped, stray files kept and counted) and positions the reader
  // after the persisted delivery position. Only I/O errors (and a newer format) fail it,
  // never damaged data. `e` must outlive the spool.
  [[nodiscard]] static result<std::unique_ptr<spool>> open(const options& opts, wal::env& e);

  // Writes and syncs what was appended, completes every callback, persists the delivery
  // position and stops the threads. No other call may run concurrently or later.
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  // Appends `records` (copied before the call returns) with consecutive seqs. done(ec,
  // first_seq) runs once: with an empty ec after they are durable; with spool_full,
  // record_too_large or spool_failed (inline, before append returns, when refused at once);
  // or with the write/sync error. An empty batch completes at once with first_seq 0.
  void append(std::span<const std::string_view> records, append_callback done);

  // Hands out up to max_records durable records in seq order into `out` (cleared first).
  // Returns how many; 0 when none is durable yet (then on_readable fires when some are).
  // Views stay valid until the next read(). I/O errors are returned (and counted); the
  // next call retries.
  [[nodiscard]] result<size_t> read(size_t max_records, std::vector<record>& out);

  // cb() runs (on the log's sync thread, or here when records are already readable) each
  // time durable records arrive after read() returned 0. Replaces any earlier callback.
  void on_readable(std::function<void()> cb);
  // Blocks until read() would find a record or `timeout` passes (tools and tests).
  bool wait_readable(std::chrono::milliseconds timeout);

  // Marks handed-out records delivered, in any order, each at most once (repeats are
  // ignored). errc::not_read for a seq not handed out yet.
  [[nodiscard]] result<void> mark_delivered(uint64_t seq) { return mark_delivered(seq, seq); }
  [[nodiscard]] result<void> mark_delivered(uint64_t first, uint64_t last);

  // Writes and syncs the delivery position now (and releases fully delivered segments).
  [[nodiscard]] result<void> persist_position();

  stats get_stats() const;
  const recovery_stats& recovery() const { return recovery_; }
  bool failed() const { return failed_.load(std::memory_order_acquire); }

 private:
  struct group;
  struct pos {
    uint32_t segment = 0;
    uint64_t offset = 0;
    auto operator<=>(const pos&) const = default;
  };
  struct range {
    uint64_t begin = 0;
    uint64_t end = 0;
  };
  struct segment_info {
    uint64_t data_end = 0;        // file offset past the last intact group
    uint64_t file_bytes = 0;      // bytes counted against the budget
    uint64_t first_seq = 0;       // of the first group (0: none)
    uint64_t last_seq = 0;        // of the last group
    uint64_t refs = 0;            // log references held (one per undelivered group)
    std::vector<range> skips;     // damaged ranges the reader jumps over, sorted
    bool header_damaged = false;  // the wal header is damage (the groups after it are read)
  };

  spool(const options& opts, wal::env& e);

  // Opening (spool_open.cc).
  result<void> recover();
  struct replay_state;
  void replay_group(uint8_t type, std::span<const char> payload, wal::location loc,
                    replay_state& st);
  void find_damage(const std::vector<std::pair<uint32_t, uint64_t>>& sizes,
                   std::vector<std::pair<uint32_t, range>>& damage);
  static uint64_t first_data_byte(const segment_info& s);
  void find_missing(const std::vector<std::pair<uint32_t, uint64_t>>& sizes,
                    const position_recovery& found);
  void add_skip(uint32_t segment, range r);  // requires state_mu_
  uint64_t copy_to_quarantine(uint32_t segment, range r);
  result<uint64_t> count_stray_files();

  // Appending (spool.cc).
  std::unique_ptr<group> new_group();  // requires append_mu_
  void recycle(std::unique_ptr<group> g);
  void writer_loop();
  void write_group(std::unique_ptr<group> g);
  void record_group(const group& g, const wal::log::appended& a);
  void on_durable(std::unique_ptr<group> g, error_code ec);
  void fail_group(std::unique_ptr<group> g, error_code ec);
  void on_segment_deleted(uint32_t segment);

  // Reading and delivery (spool_read.cc).
  result<bool> refill();
  bool find_readable(uint64_t* limit);  // requires state_mu_
  result<void> load(uint64_t offset, uint64_t limit);
  result<void> skip_damage();
  bool next_group();
  std::string_view group_records_next();
  void mark_locked(uint64_t first, uint64_t last);  // requires state_mu_
  void position_loop();
  result<void> persist_now();
  void release_delivered(uint64_t position);  // requires state_mu_

  const options opts_;
  wal::env& env_;
  std::unique_ptr<wal::log> log_;
  std::unique_ptr<position_file> position_;
  std::unique_ptr<quarantine> quarantine_;
  recovery_stats recovery_;
  std::atomic<bool> failed_{false};

  // Appending. The writer thread takes pending groups in order.
  mutable std::mutex append_mu_;
  std::condition_variable writer_cv_;
  std::deque<std::unique_ptr<group>> pending_;       // guarded by append_mu_
  std::vector<std::unique_ptr<group>> free_groups_;  // recycled; guarded by append_mu_
  uint64_t next_seq_ = 1;                            // guarded by append_mu_
  bool writer_idle_ = false;                         // guarded by append_mu_
  bool stopping_ = false;                            // guarded by append_mu_
  std::atomic<uint64_t> pending_bytes_{0};           // appended, not yet counted on disk
  std::atomic<uint64_t> disk_bytes_{0};              // sum of segments' file_bytes
  std::thread writer_thread_;

  // Segments, durability and delivery.
  mutable std::mutex state_mu_;
  std::condition_variable readable_cv_;           // wait_readable()
  std::condition_variable position_cv_;           // the position thread
  std::map<uint32_t, segment_info> segments_;     // guarded by state_mu_
  pos durable_;                                   // end of the last durable group; state_mu_
  uint64_t durable_seq_ = 0;                      // guarded by state_mu_
  std::function<void()> on_readable_;             // guarded by state_mu_
  bool reader_waiting_ = true;                    // read() found nothing since; state_mu_
  uint64_t read_seq_ = 0;                         // last seq handed out or stepped over; state_mu_
  uint64_t delivered_ = 0;                        // every seq <= delivered_ is delivered; state_mu_
  uint64_t persisted_ = 0;                        // durable position; state_mu_
  std::map<uint64_t, uint64_t> delivered_ahead_;  // first -> last, past delivered_; state_mu_
  bool position_idle_ = false;                    // guarded by state_mu_
  bool position_stopping_ = false;                // guarded by state_mu_
  std::mutex position_io_mu_;                     // serialises position writes
  std::thread position_thread_;
  stats stats_;         // counters guarded by state_mu_ (append ones by append_mu_, see get_stats)
  stats append_stats_;  // append_calls, appended_records, rejected_full; append_mu_

  // The reader's own state (one read() at a time).
  std::string rbuf_;                  // whole wal records loaded from rpos_
  size_t rbuf_parsed_ = 0;            // next wal record in rbuf_ to decode
  size_t rbuf_end_ = 0;               // rbuf_[0, rbuf_end_) holds whole records
  pos rbuf_pos_;                      // file position of rbuf_[0]
  uint64_t rbuf_limit_ = 0;           // readable limit in rbuf_pos_.segment when loaded
  pos rpos_;                          // next byte to load
  const char* group_next_ = nullptr;  // next record of the current group
  uint32_t group_left_ = 0;
  uint64_t group_seq_ = 0;        // seq of group_next_
  uint64_t reader_last_seq_ = 0;  // last seq of the last group decoded
  uint64_t handed_seq_ = 0;       // last seq handed out or stepped over (or persisted)
  std::optional<range> bad_;      // damage found in rpos_.segment; end 0: unknown yet
};

}  // namespace sqsrelay::spool
