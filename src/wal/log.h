// The write-ahead log: a directory of append-only segment files, a checksum per record, and
// one sync thread that group-commits. Byte format: docs/wal_format.md.
//
// Threading: every public method is thread-safe. Appends are serialised by an internal mutex
// (one write syscall each); durability is decided by the sync thread, which loops
// { wait for unsynced appends; fdatasync each segment holding them (and fsync the directory
// after a segment was created); publish the durable lsn; run the callbacks waiting for it }.
// Appends made while an fdatasync runs share the next one.
//
// Durability: a record is durable once durable_lsn() >= its lsn, i.e. when its
// when_durable() callback reports success. Nothing is durable before that, whatever the
// env. LSNs number the appends of one open log from 1; they are not stored on disk.
//
// Failure: an fdatasync error (or a write error that cannot be rolled back) puts the log in
// the failed state for good: appends fail with errc::log_failed and every waiter not yet
// durable gets the error, because after a failed fsync the kernel may have dropped the
// dirty pages (PostgreSQL "fsyncgate"). Reopening recovers what reached the disk.
//
// Segment lifetime: each segment counts references to its live records. The oldest
// segment is deleted when it is not the active one, holds no references, the state that
// released its last reference is durable, and replay() has run. A second thread (the
// reclaimer) does it, one file at a time with a directory sync after each, so that slow
// unlinks never delay a group commit. Deleting only a prefix keeps the delete records of a
// later segment in place while any older segment they refer to may still come back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "wal/durable_callback.h"
#include "wal/env.h"
#include "wal/errc.h"

namespace sqsrelay::wal {

// Where one record's payload bytes (or a range inside them) are: `length` bytes at file
// offset `offset` of segment `segment`. Segment 0 is never used, so a default is invalid.
struct location {
  uint32_t segment = 0;
  uint32_t length = 0;
  uint64_t offset = 0;
};

struct options {
  std::filesystem::path dir;          // created if missing; the in-memory env accepts any
  uint64_t segment_bytes = 64 << 20;  // roll to a new segment past this many bytes
  bool sync = true;                   // false: never fdatasync; appends are durable at once
                                      // (tests, benchmarks, or an env with no disk)
  // Called on the reclaimer thread, without the log's mutex, after a segment's file was
  // removed (then the directory synced, unless !sync): lets the owner account for freed space.
  // Must not call the log's destructor; may call its other methods.
  std::function<void(uint32_t segment)> on_deleted;
  // Group-commit linger (0: off, the default: each sync starts as soon as there is work).
  // With it on, once the sync thread has work it waits while appends keep arriving: it
  // sleeps `sync_linger_gap` at a time and starts the fdatasync after a gap with no new
  // append, or `sync_linger_max` after it woke, whichever comes first. An fdatasync costs
  // far more CPU than an append, so at high load one sync covering many appends is cheaper;
  // a lone append (the previous sync covered one append and one is waiting) never lingers,
  // so the latency of a quiet log does not change.
  std::chrono::microseconds sync_linger_gap{0};
  std::chrono::microseconds sync_linger_max{0};
  // Write-behind (only with `sync`): append() copies the record into memory and the sync
  // thread writes everything pending with one write right before its fdatasync, so an
  // append costs no system call on the appending thread and never waits for the kernel
  // (a write into a page under writeback blocks until the page is written). read() serves
  // bytes not yet written from memory. The price: a write error is then found by the sync
  // thread and fails the log (as an fdatasync error does) instead of failing one append,
  // and unsynced lazy records stay in memory (at most `write_behind_bytes`; more starts a
  // group commit) until `lazy_write_delay` after the first of them, when the sync thread
  // writes them without a sync: a killed process then loses only the lazy records of its
  // last moments (the kernel keeps what was written); a power loss, all since the last sync.
  bool write_behind = false;
  uint64_t write_behind_bytes = 1 << 20;
  std::chrono::milliseconds lazy_write_delay{10};
  // Preallocation (only with `sync`): the reclaimer thread prepares the next segment ahead
  // of time as a file of segment_bytes zeros, synced, which a roll renames into place. Appends
  // then overwrite blocks that exist, so an fdatasync writes the data and nothing else: no
  // block allocation, no inode size change (on this project's ext4 VM a third less CPU and
  // wall time per fdatasync). Preparing starts once the log is busy (the active segment holds
  // 1 MiB, or is half full), so short-lived logs never pay for it; once a prepared file is
  // ready, a log still in a segment that was not preallocated rolls into it at once.
  // Recovery treats zeros at the end of a segment as its clean end (see scanner.h). The
  // prepared file (`prepared.tmp`) is not a segment: open() deletes a leftover one.
  bool preallocate = false;
};

// How an append asks for durability. `now`: the sync thread starts a group commit for it.
// `lazy`: it does not: the record becomes durable with the next group commit that something
// else starts (an append with `now`, a when_durable() on it or a later lsn, a segment roll)
// or when the log is closed. For records whose loss in a crash is acceptable and that are
// frequent, such as statistics: they then cost no fdatasync of their own.
enum class sync_mode : uint8_t { now, lazy };

struct recovery_stats {
  uint64_t records = 0;          // intact records replayed
  uint64_t segments = 0;         // segments replayed
  uint64_t truncated_bytes = 0;  // torn tail cut from the last segment at open
  uint64_t corrupt_records = 0;  // damaged stretches skipped (the log resynced after them)
  uint64_t skipped_bytes = 0;    // bytes in those stretches
  uint64_t ignored_files = 0;    // files in the directory that are not segments; kept
  uint64_t damaged_headers = 0;  // segments whose header is damaged: their records are
                                 // replayed, the header counts in corrupt_records (and
                                 // skipped_bytes); sealed, deleted like any other segment
};

class log {
 public:
  using replay_fn = std::function<void(uint8_t type, std::span<const char> payload, location)>;

  struct appended {
    uint64_t lsn = 0;
    location loc;  // the whole payload
  };

  struct stats {
    uint64_t appends = 0;
    uint64_t bytes = 0;  // record bytes written, headers included
    uint64_t syncs = 0;  // group commits (each one fdatasync per unsynced segment)
    uint64_t lazy_appends = 0;    // appends with sync_mode::lazy (included in `appends`)
    uint64_t synced_appends = 0;  // appends made durable by the group commits so far
    uint64_t linger_waits = 0;    // sleeps of the sync thread while lingering
    uint64_t writes = 0;          // write calls for records (one per append without
                                  // write-behind, one per group commit with it)
    uint64_t lazy_writes = 0;     // of those, writes of lazy records without a sync
    uint64_t segments_created = 0;
    uint64_t segments_prepared = 0;  // preallocated files made ready (options::preallocate)
    uint64_t prepare_errors = 0;     // preparations or renames that failed
    uint64_t segments_deleted = 0;
    uint64_t sync_errors = 0;
    uint64_t write_errors = 0;
    uint64_t delete_errors = 0;
  };

  // Opens (creating if needed) the log in opts.dir: locks the directory, checks every
  // segment header, truncates a torn tail off the last segment, syncs what it found (so
  // everything replay() returns is durable; unless !opts.sync) and starts the sync and
  // reclaimer threads. Damaged data never fails open; I/O errors and a newer format version
  // do. `e` must outlive the log.
  [[nodiscard]] static result<std::unique_ptr<log>> open(const options& opts, env& e);

  // Syncs everything appended, runs the remaining callbacks and stops both threads.
  // Must not be called from a callback.
  ~log();
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Calls fn for every intact record in append order, then allows segment deletion. Only
  // once, before the first append (errc::replay_not_allowed otherwise). fn may call
  // add_ref(); the payload span is valid during the call only.
  [[nodiscard]] result<recovery_stats> replay(const replay_fn& fn);

  // Appends one record made of the concatenation of `parts` (one write syscall) and takes
  // `refs` references on its segment atomically with it: pass the number of live entries
  // in the payload (0 for a record that keeps nothing alive, such as a delete). Taking them
  // later with add_ref() would race with the deletion of a segment that just stopped being
  // the active one. On success the bytes are in the segment and visible to read(), but not
  // durable: wait with when_durable(). A write error is returned after the partial record
  // is cut off again (the log stays usable, e.g. after ENOSPC); if that fails, the log
  // fails.
  [[nodiscard]] result<appended> append(uint8_t type, std::span<const std::string_view> parts,
                                        uint32_t refs = 0);
  [[nodiscard]] result<appended> append(uint8_t type, std::string_view payload, uint32_t refs = 0) {
    return append(type, std::span<const std::string_view>(&payload, 1), refs);
  }
  // The same with a choice of sync_mode (see there); append(type, parts, refs) is `now`.
  [[nodiscard]] result<appended> append(uint8_t type, std::span<const std::string_view> parts,
                                        uint32_t refs, sync_mode mode);

  // Calls done(ec) once every record with lsn <= `lsn` is durable (ec empty), or with the
  // error that made the log fail. Starts a group commit if none would cover `lsn` (lazy
  // appends). Runs on the sync thread, or inline when the answer is
  // already known (already durable, failed, or errc::bad_lsn for an lsn never appended).
  // done must not block for long: the next group commit waits for it.
  void when_durable(uint64_t lsn, durable_callback done);

  // Reads loc.length bytes at loc into out: any range of written payload bytes of a live
  // segment, such as one message inside a record's payload. errc::bad_location when the
  // range is not written data of a live segment. Does not wait for appends.
  [[nodiscard]] result<void> read(const location& loc, char* out) const;

  // Reference counts of live records per segment. add_ref() on a deleted segment is a
  // caller bug (asserted). Call release() after appending the record that makes the
  // entries dead, so that the deletion waits for that record to be durable.
  void add_ref(uint32_t segment, uint32_t n = 1);
  void release(uint32_t segment, uint32_t n = 1);

  uint64_t last_lsn() const { return last_lsn_.load(std::memory_order_acquire); }
  uint64_t durable_lsn() const { return durable_lsn_.load(std::memory_order_acquire); }
  uint32_t active_segment() const;
  // Live segments, oldest first, with their sizes in bytes (header included). Between
  // open() and replay() the owner may add_ref() any of them, e.g. to keep damaged segments
  // until it has copied what recovery skipped.
  std::vector<std::pair<uint32_t, uint64_t>> segment_sizes() const;
  // Live segments whose header was damaged at open (recovery_stats::damaged_headers). read()
  // accepts their bytes from offset 0, so the owner can copy the damaged header out.
  std::vector<uint32_t> damaged_header_segments() const;
  stats get_stats() const;
  bool failed() const;
  // Why the log failed (the first error), or no error. A failed log refuses appends until
  // it is reopened; what it acknowledged before stays durable.
  error_code failure() const;

 private:
  struct segment_state;
  struct waiter {
    uint64_t lsn;
    durable_callback done;
  };

  log(const options& opts, env& e, std::unique_ptr<dir_lock> lock);

  // Opening (log_open.cc).
  result<void> recover();
  result<void> open_segment(uint32_t number, uint32_t newest, recovery_stats& st);
  result<void> adopt_tail(uint32_t newest);
  result<void> trim_tail(segment_state& seg);
  result<void> sync_recovered();
  result<std::string> read_body(const segment_state& seg, uint64_t end) const;
  std::filesystem::path path_of(uint32_t number) const;

  // Appending (log.cc); all require mu_.
  result<appended> append_locked(uint8_t type, std::span<const std::string_view> parts,
                                 uint64_t payload, uint32_t refs, sync_mode mode);
  bool needs_roll(uint64_t record_bytes) const;
  result<void> roll();
  // On failure *name_taken says whether a file of that name is left (the number is used).
  result<std::shared_ptr<segment_state>> create_segment(uint32_t number, bool* name_taken);
  result<std::shared_ptr<segment_state>> adopt_prepared(uint32_t number, bool* name_taken);
  bool preallocating() const { return opts_.preallocate && opts_.sync; }
  void want_prepared();  // requires mu_
  static void encode(uint8_t type, std::span<const std::string_view> parts, size_t payload,
                     std::string& out);
  error_code undo_write(const error_code& ec, uint64_t offset);
  bool buffering() const { return opts_.write_behind && opts_.sync; }
  result<void> write_pending_locked();  // writes pending_ before a roll; requires mu_
  bool copy_buffered(const location& loc, char* out) const;  // requires mu_
  void mark_unsynced(const std::shared_ptr<segment_state>& seg);
  void fail(const error_code& ec);

  // The sync thread (log_sync.cc).
  void sync_loop();
  bool has_sync_work() const;  // requires mu_
  void linger(std::unique_lock<std::mutex>& lock);
  void sync_batch(std::unique_lock<std::mutex>& lock);
  void write_lazy(std::unique_lock<std::mutex>& lock);
  error_code sync_files(bool dir);  // syncs syncing_; runs without mu_
  void run_callbacks(std::unique_lock<std::mutex>& lock);

  // The reclaimer thread (log_reclaim.cc).
  void reclaim_loop();
  void prepare_segment(std::unique_lock<std::mutex>& lock);
  result<std::unique_ptr<file>> write_prepared_file();  // runs without mu_
  std::shared_ptr<segment_state> deletable() const;  // requires mu_
  void wake_reclaimer_if_ready();                    // requires mu_
  void delete_segment(const std::shared_ptr<segment_state>& seg,
                      std::unique_lock<std::mutex>& lock);

  const options opts_;
  env& env_;
  std::unique_ptr<dir_lock> lock_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // the sync thread waits here for work
  std::condition_variable reclaim_cv_;  // the reclaimer waits here for a deletable segment

  // Live segments by number; readers and the sync thread keep a segment alive (and its
  // file open) through the shared_ptr while they use it.
  std::map<uint32_t, std::shared_ptr<segment_state>> segments_;  // guarded by mu_
  std::shared_ptr<segment_state> active_;                        // guarded by mu_
  uint64_t next_segment_ = 0;                                    // guarded by mu_
  std::vector<std::shared_ptr<segment_state>> unsynced_;  // with data not synced; guarded by mu_
  bool dir_unsynced_ = false;             // a segment was created since the last dir sync; mu_
  uint64_t wanted_lsn_ = 0;  // highest lsn a group commit is owed for (not lazy); mu_
  uint64_t last_group_ = 0;  // appends the last group commit covered; mu_
  std::string buf_;                       // record being appended, reused; guarded by mu_
  // Write-behind: records of the active segment not written yet, starting at file offset
  // pending_offset_; the sync thread swaps them into writing_ (of segment writing_seg_ at
  // writing_offset_) and writes that without the mutex. writing_ is changed only under mu_
  // by the sync thread, so readers may copy from it under mu_ while it is being written.
  std::string pending_;                               // guarded by mu_
  uint64_t pending_offset_ = 0;                       // guarded by mu_
  std::chrono::steady_clock::time_point pending_since_;  // first record of pending_; mu_
  std::string writing_;                               // see above
  std::shared_ptr<segment_state> writing_seg_;        // guarded by mu_
  uint64_t writing_offset_ = 0;                       // guarded by mu_
  std::vector<waiter> waiters_;           // min-heap on lsn; guarded by mu_
  error_code failed_;                     // guarded by mu_
  bool replay_allowed_ = true;            // guarded by mu_
  bool replayed_ = false;                 // guarded by mu_
  bool deletion_paused_ = false;          // after a failed remove, until the next roll; mu_
  bool stopping_ = false;                 // guarded by mu_
  // Preallocation: a prepared segment file ready for the next roll, whether the reclaimer
  // should make one, and whether it is making one.
  std::unique_ptr<file> prepared_;  // guarded by mu_
  bool prepare_wanted_ = false;     // guarded by mu_
  bool preparing_ = false;          // guarded by mu_
  bool prepare_failed_ = false;     // since the last roll (no retry before the next); mu_
  recovery_stats recovery_;               // what open() found; guarded by mu_
  stats stats_;                           // guarded by mu_
  std::atomic<uint64_t> last_lsn_{0};     // written under mu_
  std::atomic<uint64_t> durable_lsn_{0};  // written under mu_

  // Owned by the sync thread.
  std::vector<std::shared_ptr<segment_state>> syncing_;
  std::vector<waiter> ready_;
  std::thread sync_thread_;
  std::thread reclaim_thread_;
};

}  // namespace sqsrelay::wal
