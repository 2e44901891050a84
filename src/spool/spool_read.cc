// The delivery side: the reader loads whole wal records from the segment files in chunks
// and hands out their records; mark_delivered moves the delivery position, which the
// position thread persists before releasing fully delivered segments.
#include <algorithm>

#include "spool/codec.h"
#include "spool/position_file.h"
#include "spool/quarantine.h"
#include "spool/spool.h"
#include "spool/spool_format.h"
#include "wal/codec.h"
#include "wal/scanner.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {

using wal::record_header_size;
using wal::segment_header_size;

result<size_t> spool::read(size_t max_records, std::vector<record>& out) {
  out.clear();
  std::vector<range> gaps;  // seqs stepped over (failed appends, damage); rare
  while (out.size() < max_records) {
    if (group_left_ > 0) {
      const uint64_t seq = group_seq_++;
      --group_left_;
      const std::string_view data = group_records_next();
      if (seq <= handed_seq_) continue;  // delivered before the restart
      if (seq > handed_seq_ + 1) gaps.push_back({handed_seq_ + 1, seq - 1});
      handed_seq_ = seq;
      out.push_back({seq, data});
    } else if (next_group()) {
      continue;
    } else if (!out.empty()) {
      break;  // loading more would move the bytes the views point at
    } else {
      auto more = refill();
      if (!more) {
        std::lock_guard lock(state_mu_);
        ++stats_.read_errors;
        return more.error();
      }
      if (!*more) break;
    }
  }
  if (!out.empty()) {
    std::lock_guard lock(state_mu_);
    read_seq_ = handed_seq_;
    for (const range& g : gaps) mark_locked(g.begin, g.end);
    stats_.read_records += out.size();
  }
  return out.size();
}

std::string_view spool::group_records_next() {
  const uint32_t len = wal::get_u32(group_next_);
  std::string_view r(group_next_ + record_length_size, len);
  group_next_ += record_length_size + len;
  return r;
}

// Decodes the next wal record in the buffer into the current group. A checksum mismatch
// (damage since recovery checked it, or rot) or a malformed group stops the buffer there;
// refill() then steps over the damage.
bool spool::next_group() {
  if (rbuf_parsed_ >= rbuf_end_) return false;
  const char* p = rbuf_.data() + rbuf_parsed_;
  const uint32_t len = wal::get_u32(p + 4);
  const uint64_t at = rbuf_pos_.offset + rbuf_parsed_;
  std::optional<group_view> g;
  const bool intact =
      wal::record_crc({p + wal::record_type_offset, 1 + size_t{len}}) == wal::get_u32(p);
  if (intact && static_cast<uint8_t>(p[wal::record_type_offset]) == group_record_type) {
    g = parse_group({p + record_header_size, len});
  }
  if (!g || g->first_seq <= reader_last_seq_) {
    bad_ = range{at, intact ? at + record_header_size + len : 0};
    rbuf_end_ = rbuf_parsed_;
    rpos_ = {rbuf_pos_.segment, at};
    return false;
  }
  rbuf_parsed_ += record_header_size + len;
  reader_last_seq_ = g->last_seq();
  group_next_ = g->records.data();
  group_left_ = g->count;
  group_seq_ = g->first_seq;
  return true;
}

// Loads the next chunk of whole wal records; false when nothing durable is left to read
// (the reader is then waiting: the next durable group calls on_readable).
result<bool> spool::refill() {
  rbuf_parsed_ = rbuf_end_ = 0;
  if (bad_) {
    if (auto r = skip_damage(); !r) return {boost::system::in_place_error, r.error()};
  }
  uint64_t limit = 0;
  {
    std::lock_guard lock(state_mu_);
    if (!find_readable(&limit)) {
      reader_waiting_ = true;
      return false;
    }
  }
  if (auto r = load(rpos_.offset, limit); !r) return {boost::system::in_place_error, r.error()};
  return true;
}

// Moves rpos_ past skipped ranges and finished segments to readable bytes, and sets *limit
// to where they end: the segment's last group (sealed segments), the durable end (the
// segment holding it), or the next skipped range.
bool spool::find_readable(uint64_t* limit) {
  for (;;) {
    auto it = segments_.lower_bound(rpos_.segment);
    if (it == segments_.end()) return false;
    if (it->first != rpos_.segment) rpos_ = {it->first, segment_header_size};
    rpos_.offset = std::max<uint64_t>(rpos_.offset, segment_header_size);
    if (rpos_.segment > durable_.segment) return false;
    uint64_t end = rpos_.segment < durable_.segment ? it->second.data_end : durable_.offset;
    for (const range& r : it->second.skips) {
      if (r.end <= rpos_.offset) continue;
      if (r.begin <= rpos_.offset) {
        rpos_.offset = r.end;
        continue;
      }
      end = std::min(end, r.begin);
      break;
    }
    if (rpos_.offset < end) {
      *limit = end;
      return true;
    }
    if (rpos_.segment == durable_.segment || rpos_.segment == UINT32_MAX) return false;
    rpos_ = {rpos_.segment + 1, segment_header_size};
  }
}

// Reads up to a chunk from `offset` and keeps the whole records in it. A record longer than
// the chunk is read whole; one that does not fit before `limit` is damage.
result<void> spool::load(uint64_t offset, uint64_t limit) {
  const uint32_t segment = rpos_.segment;
  uint64_t want = std::min(limit - offset, opts_.read_chunk_bytes);
  if (rbuf_.size() < want) rbuf_.resize(want);
  if (auto r = log_->read({segment, static_cast<uint32_t>(want), offset}, rbuf_.data()); !r) {
    return r;
  }
  uint64_t end = 0;
  while (want - end >= record_header_size) {
    const uint64_t len = wal::get_u32(rbuf_.data() + end + 4);
    if (want - end - record_header_size < len) break;
    end += record_header_size + len;
  }
  if (end == 0) {
    const uint64_t len = want >= record_header_size ? wal::get_u32(rbuf_.data() + 4) : 0;
    if (want < record_header_size || limit - offset - record_header_size < len) {
      bad_ = range{offset, 0};
      rbuf_pos_ = {segment, offset};
      rbuf_limit_ = limit;
      return {};
    }
    want = record_header_size + len;
    if (rbuf_.size() < want) rbuf_.resize(want);
    if (auto r = log_->read({segment, static_cast<uint32_t>(want), offset}, rbuf_.data()); !r) {
      return r;
    }
    end = want;
  }
  if (rbuf_.capacity() > 2 * std::max(opts_.read_chunk_bytes, want)) {
    rbuf_.resize(want);
    rbuf_.shrink_to_fit();  // after an oversized group
  }
  rbuf_pos_ = {segment, offset};
  rbuf_limit_ = limit;
  rbuf_end_ = end;
  rpos_.offset = offset + end;
  return {};
}

// Steps over damage the reader found at bad_->begin in rpos_.segment: up to the next intact
// record before the limit it was loaded with (found as recovery finds it, see
// wal::scan_records), or to the end of a malformed group. The range is copied to the
// quarantine file, counted, and skipped from now on.
result<void> spool::skip_damage() {
  range r = *bad_;
  const uint32_t segment = rpos_.segment;
  if (r.end == 0) {
    std::string body(rbuf_limit_ - r.begin, '\0');
    if (auto rd = log_->read({segment, static_cast<uint32_t>(body.size()), r.begin}, body.data());
        !rd) {
      return rd;
    }
    r.end = rbuf_limit_;
    wal::scan_records(body, r.begin, [&](const wal::scanned_record& rec) {
      r.end = std::min(r.end, rec.offset - record_header_size);
    });
  }
  bad_.reset();
  const uint64_t copied = copy_to_quarantine(segment, r);
  const bool synced = static_cast<bool>(quarantine_->sync());
  std::lock_guard lock(state_mu_);
  if (!synced) ++stats_.quarantine_errors;
  add_skip(segment, r);
  ++stats_.corrupt_ranges;
  stats_.corrupt_bytes += r.end - r.begin;
  stats_.quarantined_bytes += copied;
  rpos_ = {segment, r.end};
  return {};
}

void spool::on_readable(std::function<void()> cb) {
  std::lock_guard lock(state_mu_);
  on_readable_ = std::move(cb);
}

bool spool::wait_readable(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_mu_);
  return readable_cv_.wait_for(lock, timeout, [&] { return !reader_waiting_; });
}

result<void> spool::mark_delivered(uint64_t first, uint64_t last) {
  if (first > last) return {};
  std::lock_guard lock(state_mu_);
  if (last > read_seq_) return errc::not_read;
  mark_locked(first, last);
  return {};
}

// Adds [first, last] to the delivered seqs. Runs past the position are kept as ranges, so
// out-of-order completion costs a map node per gap, and in-order completion nothing.
void spool::mark_locked(uint64_t first, uint64_t last) {
  if (last <= delivered_) return;
  first = std::max(first, delivered_ + 1);
  if (first == delivered_ + 1) {
    delivered_ = last;
    while (!delivered_ahead_.empty() && delivered_ahead_.begin()->first <= delivered_ + 1) {
      delivered_ = std::max(delivered_, delivered_ahead_.begin()->second);
      delivered_ahead_.erase(delivered_ahead_.begin());
    }
    if (std::exchange(position_idle_, false)) position_cv_.notify_one();
    return;
  }
  auto it = delivered_ahead_.upper_bound(first);
  if (it != delivered_ahead_.begin()) {
    auto prev = std::prev(it);
    if (prev->second + 1 >= first) {
      if (prev->second >= last) return;
      first = prev->first;
      delivered_ahead_.erase(prev);
    }
  }
  while (it != delivered_ahead_.end() && it->first <= last + 1) {
    last = std::max(last, it->second);
    it = delivered_ahead_.erase(it);
  }
  delivered_ahead_.emplace_hint(it, first, last);
}

// Persists the position at most every position_interval while it moves (a crash then
// redelivers at most that much), and once more when stopping.
void spool::position_loop() {
  std::unique_lock lock(state_mu_);
  for (;;) {
    if (position_stopping_) {
      lock.unlock();
      (void)persist_now();
      return;
    }
    if (delivered_ > persisted_) {
      position_cv_.wait_for(lock, opts_.position_interval, [&] { return position_stopping_; });
      if (position_stopping_) continue;
      lock.unlock();
      (void)persist_now();  // counted; retried after the next interval
      lock.lock();
    } else {
      position_idle_ = true;
      position_cv_.wait(lock);
      position_idle_ = false;
    }
  }
}

result<void> spool::persist_position() { return persist_now(); }

// Writes and syncs the position, then releases the segments it covers: a segment is
// deleted only after the position saying its records are delivered is durable. A failed
// write or sync is counted and returned; segments stay until a later one succeeds (the
// slot is rewritten whole, so a later successful fdatasync covers it).
result<void> spool::persist_now() {
  std::lock_guard io(position_io_mu_);
  uint64_t p = 0;
  {
    std::lock_guard lock(state_mu_);
    p = delivered_;
    if (p == persisted_) return {};
  }
  auto r = position_->store(p);
  std::lock_guard lock(state_mu_);
  if (!r) {
    ++stats_.position_errors;
    return r.error();
  }
  ++stats_.position_writes;
  persisted_ = p;
  release_delivered(p);
  return {};
}

void spool::release_delivered(uint64_t position) {
  for (auto& [n, s] : segments_) {
    if (s.last_seq > position) break;
    if (s.refs > 0) {
      log_->release(n, static_cast<uint32_t>(s.refs));
      s.refs = 0;
    }
  }
}

}  // namespace sqsrelay::spool
