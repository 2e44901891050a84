// The sync thread: group commit, durability callbacks and segment deletion.
#include <algorithm>

#include "wal/log.h"
#include "wal/log_segment.h"

namespace sqsrelay::wal {

// One iteration does the most urgent job: sync appended data, fail waiters after an error,
// delete one dead segment; it sleeps only when there is none. On stop it finishes the
// syncs first, so the destructor leaves everything appended durable.
void log::sync_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (has_sync_work()) {
      sync_batch(lock);
    } else if (failed_ && !waiters_.empty()) {
      run_callbacks(lock);
    } else if (auto seg = deletable()) {
      delete_segment(std::move(seg), lock);
    } else if (stopping_) {
      return;
    } else {
      work_cv_.wait(lock);
    }
  }
}

bool log::has_sync_work() const {
  return !failed_ && (!unsynced_.empty() || dir_unsynced_);
}

// Syncs every segment written since the last batch, then the directory if a segment was
// created, and publishes the lsn that was last when the batch was taken. Appends continue
// meanwhile and go into the next batch.
void log::sync_batch(std::unique_lock<std::mutex>& lock) {
  const uint64_t target = last_lsn();
  syncing_.swap(unsynced_);
  for (const auto& seg : syncing_) seg->unsynced = false;
  const bool dir = std::exchange(dir_unsynced_, false);
  lock.unlock();
  const error_code ec = sync_files(dir);
  syncing_.clear();
  lock.lock();
  ++stats_.syncs;
  if (ec) {
    ++stats_.sync_errors;
    fail(ec);
  } else {
    durable_lsn_.store(std::max(target, durable_lsn()), std::memory_order_release);
  }
  run_callbacks(lock);
}

// Older segments first: a roll leaves the previous segment's tail unsynced.
error_code log::sync_files(bool dir) {
  for (const auto& seg : syncing_) {
    if (auto r = seg->f->sync(); !r) return r.error();
  }
  if (dir) {
    if (auto r = env_.sync_dir(opts_.dir); !r) return r.error();
  }
  return {};
}

// Completes the waiters whose lsn is durable, or all of them once the log failed. The
// callbacks run without the mutex, so they may append or wait again.
void log::run_callbacks(std::unique_lock<std::mutex>& lock) {
  const auto later = [](const waiter& a, const waiter& b) { return a.lsn > b.lsn; };
  const uint64_t durable = durable_lsn();
  while (!waiters_.empty() && (failed_ || waiters_.front().lsn <= durable)) {
    std::pop_heap(waiters_.begin(), waiters_.end(), later);
    ready_.push_back(std::move(waiters_.back()));
    waiters_.pop_back();
  }
  if (ready_.empty()) return;
  const error_code failure = failed_;
  lock.unlock();
  for (waiter& w : ready_) w.done(w.lsn <= durable ? error_code{} : failure);
  ready_.clear();
  lock.lock();
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

// Unlinks the file, then syncs the directory before the next deletion can start, so that
// a crash can only bring back a suffix of the deleted segments, never a hole after an
// older one. Readers holding the segment keep reading through its open file.
void log::delete_segment(std::shared_ptr<segment_state> seg, std::unique_lock<std::mutex>& lock) {
  lock.unlock();
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
}

}  // namespace sqsrelay::wal
