// The reclaimer thread: deletes dead segments, oldest first, and prepares preallocated
// segment files (options::preallocate).
#include <vector>

#include "wal/log.h"
#include "wal/log_segment.h"
#include "wal/wal_format.h"

namespace sqsrelay::wal {
namespace {

// ext4 frees a file's extents in one journal transaction at unlink; for a 64 MiB segment
// that stalls concurrent fdatasyncs for tens of milliseconds. Shrinking the file in steps
// first spreads the work (RocksDB's DeleteScheduler does the same).
constexpr uint64_t truncate_step = 8 << 20;

// A prepared file is written in chunks of zeros and synced every few chunks, so that its
// writeback never queues tens of megabytes ahead of a group commit's fdatasync.
constexpr size_t zero_chunk = 1 << 20;
constexpr uint64_t prepare_sync_every = 4 << 20;

}  // namespace

void log::reclaim_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (auto seg = deletable()) {
      delete_segment(seg, lock);
    } else if (stopping_) {
      return;
    } else if (prepare_wanted_) {
      prepare_segment(lock);
    } else {
      reclaim_cv_.wait(lock);
    }
  }
}

// The oldest segment, if it may go: sealed, synced, unreferenced, and released by state
// that is already durable. Never before replay (the owner has not taken its references
// yet) and never once the log failed (what is durable is unknown).
std::shared_ptr<log::segment_state> log::deletable() const {
  if (!replayed_ || failed_ || deletion_paused_ || segments_.empty()) return nullptr;
  const std::shared_ptr<segment_state>& seg = segments_.begin()->second;
  if (seg == active_ || seg->unsynced || seg->refs != 0) return nullptr;
  if (seg->released_at > durable_lsn()) return nullptr;
  return seg;
}

// Called wherever a condition of deletable() may have become true.
void log::wake_reclaimer_if_ready() {
  if (deletable()) reclaim_cv_.notify_one();
}

// Unlinks the file, then syncs the directory before the next deletion can start, so that
// a crash can only bring back a suffix of the deleted segments, never a hole after an
// older one. The file is shrunk first (best effort); a crash may leave it shortened, which
// only loses dead records: everything older is already gone for good.
void log::delete_segment(const std::shared_ptr<segment_state>& seg,
                         std::unique_lock<std::mutex>& lock) {
  const uint64_t size = seg->size;
  lock.unlock();
  for (uint64_t s = size; s > truncate_step; s -= truncate_step) {
    if (!seg->f->truncate(s - truncate_step)) break;
  }
  const result<void> removed = env_.remove_file(path_of(seg->number));
  result<void> synced;
  if (removed && opts_.sync) synced = env_.sync_dir(opts_.dir);
  lock.lock();
  if (!removed) {
    ++stats_.delete_errors;
    deletion_paused_ = true;  // retried after the next roll rather than in a busy loop
    return;
  }
  segments_.erase(seg->number);
  ++stats_.segments_deleted;
  if (!synced) {
    ++stats_.sync_errors;
    fail(synced.error());
  }
  if (opts_.on_deleted) {
    lock.unlock();
    opts_.on_deleted(seg->number);
    lock.lock();
  }
}

void log::prepare_segment(std::unique_lock<std::mutex>& lock) {
  prepare_wanted_ = false;
  if (prepared_ || failed_) return;
  preparing_ = true;
  lock.unlock();
  result<std::unique_ptr<file>> f = write_prepared_file();
  lock.lock();
  preparing_ = false;
  if (!f) {
    if (f.error() != errc::log_failed) ++stats_.prepare_errors;  // not when stopping
    prepare_failed_ = true;  // not again before the next roll: no retry loop on a full disk
    return;
  }
  prepared_ = std::move(*f);
  ++stats_.segments_prepared;
}

// segment_bytes of zeros, synced. Gives up (and removes the file) on an error, when the
// disk is short of space (ENOSPC) or when the log stops (errc::log_failed).
result<std::unique_ptr<file>> log::write_prepared_file() {
  const std::filesystem::path path = opts_.dir / prepared_file_name;
  // Never take the last of the disk: the records need room too, and with write-behind a
  // write that finds no space fails the log. Prepare only with two segments' worth free.
  SQSRELAY_TRY(available, env_.available_bytes(opts_.dir));
  if (available / 2 < opts_.segment_bytes)
    return make_error_code(boost::system::errc::no_space_on_device);
  (void)env_.remove_file(path);  // a leftover of a failed attempt, if any
  SQSRELAY_TRY(f, env_.create_file(path));
  const std::vector<char> zeros(zero_chunk, '\0');
  const auto give_up = [&](error_code ec) {
    f.reset();
    (void)env_.remove_file(path);
    return ec;
  };
  uint64_t unsynced = 0;
  for (uint64_t off = 0; off < opts_.segment_bytes;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || failed_) return give_up(errc::log_failed);
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zero_chunk, opts_.segment_bytes - off));
    if (auto w = f->write_at(off, std::span<const char>(zeros.data(), n)); !w)
      return give_up(w.error());
    off += n;
    unsynced += n;
    if (unsynced >= prepare_sync_every || off == opts_.segment_bytes) {
      if (auto r = f->sync(); !r) return give_up(r.error());
      unsynced = 0;
    }
  }
  return f;
}

}  // namespace sqsrelay::wal
