// The append path: callers copy records into pending groups, the writer thread writes each
// group as one wal record, and the log's sync thread reports durability. Opening is in
// spool_open.cc, reading and delivery in spool_read.cc.
#include "spool/spool.h"

#include <algorithm>
#include <boost/system/errc.hpp>
#include <cassert>

#include "spool/codec.h"
#include "spool/position_file.h"
#include "spool/quarantine.h"
#include "spool/spool_format.h"
#include "wal/codec.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {
namespace {

constexpr uint64_t min_segment_bytes = 4 << 10;
constexpr size_t kept_groups = 16;                 // recycled group objects
constexpr size_t max_kept_group_buffer = 4 << 20;  // a recycled group's buffer capacity

options clamp(options o) {
  o.segment_bytes = std::clamp(o.segment_bytes, min_segment_bytes,
                               std::max(min_segment_bytes, o.budget_bytes / 4));
  o.read_chunk_bytes = std::max<uint64_t>(o.read_chunk_bytes, 4096);
  o.group_bytes = std::max<uint64_t>(o.group_bytes, 1);
  o.max_append_bytes = std::min<uint64_t>(o.max_append_bytes, UINT32_MAX / 2);
  return o;
}

}  // namespace

// Records appended by one or more append() calls, written with one pwrite.
struct spool::group {
  struct waiter {
    uint64_t first_seq;
    append_callback done;
  };
  std::string buf;  // group header space, then count × (u32 length | bytes)
  uint64_t first_seq = 0;
  uint32_t count = 0;
  std::vector<waiter> waiters;
  pos end;  // where the group ends on disk, once written
};

spool::spool(const options& opts, wal::env& e) : opts_(opts), env_(e) {}

result<std::unique_ptr<spool>> spool::open(const options& opts, wal::env& e) {
  std::unique_ptr<spool> s(new spool(clamp(opts), e));
  if (auto r = s->recover(); !r) return r.error();
  s->writer_thread_ = std::thread([p = s.get()] { p->writer_loop(); });
  s->position_thread_ = std::thread([p = s.get()] { p->position_loop(); });
  return s;
}

spool::~spool() {
  {
    std::lock_guard lock(append_mu_);
    stopping_ = true;
  }
  writer_cv_.notify_one();
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard lock(state_mu_);
    position_stopping_ = true;
  }
  position_cv_.notify_one();
  if (position_thread_.joinable()) position_thread_.join();
  log_.reset();  // syncs the last groups and runs their callbacks while members are alive
}

void spool::append(std::span<const std::string_view> records, append_callback done) {
  if (records.empty()) return done({}, 0);
  uint64_t bytes = 0;
  for (std::string_view r : records) bytes += record_length_size + r.size();
  if (bytes > opts_.max_append_bytes) return done(errc::record_too_large, 0);

  std::unique_lock lock(append_mu_);
  ++append_stats_.append_calls;
  if (failed() || stopping_) {  // stopping: an append from a callback during close
    lock.unlock();
    return done(errc::spool_failed, 0);
  }
  const uint64_t pending = pending_bytes_.load(std::memory_order_relaxed);
  if (disk_bytes_.load(std::memory_order_relaxed) + pending + bytes > opts_.budget_bytes ||
      pending + bytes > opts_.max_pending_bytes) {
    ++append_stats_.rejected_full;
    lock.unlock();
    return done(errc::spool_full, 0);
  }
  if (pending_.empty() || pending_.back()->buf.size() >= opts_.group_bytes ||
      pending_.back()->count > UINT32_MAX - records.size()) {
    pending_.push_back(new_group());
  }
  group& g = *pending_.back();
  const uint64_t first = next_seq_;
  if (g.count == 0) g.first_seq = first;
  next_seq_ += records.size();
  g.count += static_cast<uint32_t>(records.size());
  g.buf.reserve(g.buf.size() + bytes);
  for (std::string_view r : records) {
    char len[record_length_size];
    wal::put_u32(len, static_cast<uint32_t>(r.size()));
    g.buf.append(len, record_length_size);
    g.buf.append(r);
  }
  g.waiters.push_back({first, std::move(done)});
  pending_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  append_stats_.appended_records += records.size();
  // Wake the writer only when it sleeps: one futex wake per group, not per append.
  const bool wake = std::exchange(writer_idle_, false);
  lock.unlock();
  if (wake) writer_cv_.notify_one();
}

std::unique_ptr<spool::group> spool::new_group() {
  std::unique_ptr<group> g;
  if (!free_groups_.empty()) {
    g = std::move(free_groups_.back());
    free_groups_.pop_back();
  } else {
    g = std::make_unique<group>();
  }
  g->buf.assign(group_header_size, '\0');
  return g;
}

void spool::recycle(std::unique_ptr<group> g) {
  g->count = 0;
  g->waiters.clear();
  if (g->buf.capacity() > max_kept_group_buffer) std::string().swap(g->buf);
  std::lock_guard lock(append_mu_);
  if (free_groups_.size() < kept_groups) free_groups_.push_back(std::move(g));
}

// Writes pending groups in order until stopped; on stop, finishes what is pending first.
void spool::writer_loop() {
  std::unique_lock lock(append_mu_);
  for (;;) {
    if (!pending_.empty()) {
      writer_idle_ = false;
      std::unique_ptr<group> g = std::move(pending_.front());
      pending_.pop_front();
      lock.unlock();
      write_group(std::move(g));
      lock.lock();
    } else if (stopping_) {
      return;
    } else {
      writer_idle_ = true;
      writer_cv_.wait(lock);
    }
  }
}

void spool::write_group(std::unique_ptr<group> g) {
  const uint64_t bytes = g->buf.size() - group_header_size;
  encode_group_header(g->buf.data(), g->first_seq, g->count);
  // One reference per group on its segment, taken atomically with the append (see
  // wal::log::append); released once the persisted position covers the segment.
  result<wal::log::appended> a = log_->append(group_record_type, g->buf, 1);
  if (!a) {
    pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    const bool enospc = a.error() == boost::system::errc::no_space_on_device;
    {
      std::lock_guard lock(state_mu_);
      ++(enospc ? stats_.enospc_errors : stats_.write_errors);
    }
    if (a.error() == wal::errc::log_failed) failed_.store(true, std::memory_order_release);
    const error_code ec = enospc     ? error_code(errc::spool_full)
                          : failed() ? error_code(errc::spool_failed)
                                     : a.error();
    return fail_group(std::move(g), ec);
  }
  record_group(*g, *a);
  // Counted on disk before it stops counting as pending, so the budget never misses it.
  pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  g->end = {a->loc.segment, a->loc.offset + a->loc.length};
  log_->when_durable(
      a->lsn, [this, g = std::move(g)](error_code ec) mutable { on_durable(std::move(g), ec); });
}

void spool::record_group(const group& g, const wal::log::appended& a) {
  const uint64_t record_bytes = wal::record_header_size + a.loc.length;
  std::lock_guard lock(state_mu_);
  auto [it, added] = segments_.try_emplace(a.loc.segment);
  segment_info& s = it->second;
  uint64_t grown = record_bytes;
  if (added) {
    s.file_bytes = wal::segment_header_size;
    grown += wal::segment_header_size;
  }
  s.file_bytes += record_bytes;
  s.data_end = a.loc.offset + a.loc.length;
  s.last_seq = g.first_seq + g.count - 1;
  ++s.refs;
  disk_bytes_.fetch_add(grown, std::memory_order_relaxed);
  ++stats_.groups_written;
}

// Runs on the log's sync thread (or inline in write_group when already durable), in lsn
// order except that an inline call may overtake the previous group's callback: positions
// only move forward.
void spool::on_durable(std::unique_ptr<group> g, error_code ec) {
  if (ec) {
    failed_.store(true, std::memory_order_release);
    return fail_group(std::move(g), errc::spool_failed);
  }
  std::function<void()> notify;
  {
    std::lock_guard lock(state_mu_);
    durable_ = std::max(durable_, g->end);
    durable_seq_ = std::max(durable_seq_, g->first_seq + g->count - 1);
    stats_.synced_records += g->count;
    if (reader_waiting_) {
      reader_waiting_ = false;
      notify = on_readable_;
      readable_cv_.notify_all();
    }
  }
  if (notify) notify();
  for (group::waiter& w : g->waiters) w.done({}, w.first_seq);
  recycle(std::move(g));
}

void spool::fail_group(std::unique_ptr<group> g, error_code ec) {
  {
    std::lock_guard lock(state_mu_);
    stats_.failed_records += g->count;
  }
  for (group::waiter& w : g->waiters) w.done(ec, 0);
  recycle(std::move(g));
}

// The log's reclaimer removed a segment: its bytes leave the budget.
void spool::on_segment_deleted(uint32_t segment) {
  std::lock_guard lock(state_mu_);
  auto it = segments_.find(segment);
  if (it == segments_.end()) return;  // a segment holding no group (header only)
  disk_bytes_.fetch_sub(it->second.file_bytes, std::memory_order_relaxed);
  segments_.erase(it);
  ++stats_.segments_deleted;
}

stats spool::get_stats() const {
  stats s;
  {
    std::lock_guard lock(state_mu_);
    s = stats_;
    s.segments = segments_.size();
    s.durable_seq = durable_seq_;
    s.read_seq = read_seq_;
    s.delivered_seq = delivered_;
    s.persisted_seq = persisted_;
  }
  {
    std::lock_guard lock(append_mu_);
    s.append_calls = append_stats_.append_calls;
    s.appended_records = append_stats_.appended_records;
    s.rejected_full = append_stats_.rejected_full;
    s.last_seq = next_seq_ - 1;
  }
  s.bytes_on_disk = disk_bytes_.load(std::memory_order_relaxed);
  s.budget_bytes = opts_.budget_bytes;
  s.fsyncs = log_->get_stats().syncs;
  s.failed = failed();
  return s;
}

}  // namespace sqsrelay::spool
