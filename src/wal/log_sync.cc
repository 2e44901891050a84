// The sync thread: group commit and durability callbacks.
#include <algorithm>

#include "wal/log.h"
#include "wal/log_segment.h"

namespace sqsrelay::wal {

// Syncs while there are unsynced appends, fails the waiters after an error, and sleeps
// otherwise. On stop it finishes the syncs first, so the destructor leaves everything
// appended durable.
void log::sync_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (has_sync_work()) {
      linger(lock);
      if (has_sync_work()) sync_batch(lock);
    } else if (failed_ && !waiters_.empty()) {
      run_callbacks(lock);
    } else if (stopping_) {
      return;
    } else if (!pending_.empty() && !failed_) {  // lazy records only, in memory
      const auto due = pending_since_ + opts_.lazy_write_delay;
      if (std::chrono::steady_clock::now() < due) {
        work_cv_.wait_until(lock, due);
      } else {
        write_lazy(lock);
      }
    } else {
      work_cv_.wait(lock);
    }
  }
}

// Write-behind: writes the lazy records waiting in memory, without a sync, so that they
// survive the process being killed (not a power loss). The same hand-over as sync_batch:
// readers copy from writing_ meanwhile; after a failed write the log has failed and the
// records stay readable from memory.
void log::write_lazy(std::unique_lock<std::mutex>& lock) {
  writing_.swap(pending_);
  writing_seg_ = active_;
  writing_offset_ = pending_offset_;
  lock.unlock();
  auto w = writing_seg_->f->write_at(writing_offset_, writing_);
  lock.lock();
  ++stats_.writes;
  ++stats_.lazy_writes;
  if (!w) {
    ++stats_.write_errors;
    fail(w.error());
    return;
  }
  writing_.clear();
  if (writing_.capacity() > 4 * opts_.write_behind_bytes) std::string().swap(writing_);
  writing_seg_.reset();
}

// Work is unsynced data that someone waits for: a `now` append, a waiter, a new segment's
// directory entry, or, when stopping, anything unsynced (lazy appends included).
bool log::has_sync_work() const {
  if (failed_ || (unsynced_.empty() && !dir_unsynced_)) return false;
  return wanted_lsn_ > durable_lsn() || dir_unsynced_ || stopping_ ||
         pending_.size() > opts_.write_behind_bytes;
}

// Waits while appends keep arriving (options::sync_linger_gap/_max), so that one fdatasync
// covers them all. Appends do not wake the thread while it has work, so each step is one
// timed sleep; a lone append (the last group was one append, one is pending) does not wait.
void log::linger(std::unique_lock<std::mutex>& lock) {
  if (opts_.sync_linger_gap.count() <= 0 || stopping_) return;
  if (last_lsn() - durable_lsn() <= 1 && last_group_ <= 1) return;
  const auto deadline = std::chrono::steady_clock::now() + opts_.sync_linger_max;
  for (;;) {
    const uint64_t seen = last_lsn();
    const auto until = std::min(std::chrono::steady_clock::now() + opts_.sync_linger_gap, deadline);
    ++stats_.linger_waits;
    work_cv_.wait_until(lock, until);
    if (stopping_ || failed_ || last_lsn() == seen || std::chrono::steady_clock::now() >= deadline)
      return;
  }
}

// Syncs every segment written since the last batch, then the directory if a segment was
// created, and publishes the lsn that was last when the batch was taken. Appends continue
// meanwhile and go into the next batch.
void log::sync_batch(std::unique_lock<std::mutex>& lock) {
  const uint64_t target = last_lsn();
  const uint64_t before = durable_lsn();
  syncing_.swap(unsynced_);
  for (const auto& seg : syncing_) seg->unsynced = false;
  const bool dir = std::exchange(dir_unsynced_, false);
  if (!pending_.empty()) {  // write-behind: write what is pending, then sync it
    writing_.swap(pending_);
    writing_seg_ = active_;
    writing_offset_ = pending_offset_;
  }
  lock.unlock();
  error_code write_ec;
  if (!writing_.empty()) {
    if (auto w = writing_seg_->f->write_at(writing_offset_, writing_); !w) write_ec = w.error();
  }
  const error_code ec = write_ec ? write_ec : sync_files(dir);
  syncing_.clear();
  lock.lock();
  ++stats_.syncs;
  if (!writing_.empty()) ++stats_.writes;
  // After a failed write the log has failed; the records stay readable from memory (the
  // file does not hold them). Otherwise they are in the file now.
  if (!writing_.empty() && !write_ec) {
    writing_.clear();
    if (writing_.capacity() > 4 * opts_.write_behind_bytes) std::string().swap(writing_);
    writing_seg_.reset();
  }
  if (ec) {
    ++(write_ec ? stats_.write_errors : stats_.sync_errors);
    fail(ec);
  } else {
    durable_lsn_.store(std::max(target, durable_lsn()), std::memory_order_release);
    last_group_ = target - before;
    stats_.synced_appends += target - before;
    wake_reclaimer_if_ready();  // a release may have been waiting for this
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

}  // namespace sqsrelay::wal
