// The reclaimer thread: deletes dead segments, oldest first.
#include "wal/log.h"
#include "wal/log_segment.h"

namespace sqsrelay::wal {
namespace {

// ext4 frees a file's extents in one journal transaction at unlink; for a 64 MiB segment
// that stalls concurrent fdatasyncs for tens of milliseconds. Shrinking the file in steps
// first spreads the work (RocksDB's DeleteScheduler does the same).
constexpr uint64_t truncate_step = 8 << 20;

}  // namespace

void log::reclaim_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (auto seg = deletable()) {
      delete_segment(seg, lock);
    } else if (stopping_) {
      return;
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

}  // namespace sqsrelay::wal
