// The append path of the log and its small accessors. Opening and replay are in
// log_open.cc, the sync thread in log_sync.cc.
#include "wal/log.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "wal/codec.h"
#include "wal/log_segment.h"
#include "wal/wal_format.h"

namespace sqsrelay::wal {
namespace {

// The append buffer keeps its capacity between appends, but not a huge one-off record's.
constexpr size_t max_kept_buffer = 4 << 20;

}  // namespace

log::log(const options& opts, env& e, std::unique_ptr<dir_lock> lock)
    : opts_(opts), env_(e), lock_(std::move(lock)) {}

log::~log() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  reclaim_cv_.notify_one();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (reclaim_thread_.joinable()) reclaim_thread_.join();
}

result<log::appended> log::append(uint8_t type, std::span<const std::string_view> parts,
                                  uint32_t refs) {
  return append(type, parts, refs, sync_mode::now);
}

result<log::appended> log::append(uint8_t type, std::span<const std::string_view> parts,
                                  uint32_t refs, sync_mode mode) {
  uint64_t payload = 0;
  for (std::string_view p : parts) payload += p.size();
  if (payload > UINT32_MAX) return errc::record_too_large;

  std::unique_lock lock(mu_);
  if (failed_) return errc::log_failed;
  replay_allowed_ = false;
  // The sync thread sleeps only when it has no work; wake it only when this append gives it
  // some (also when the append failed after rolling). A futex wake per append would cost a
  // syscall and a context switch per request.
  const bool had_work = has_sync_work();
  const bool had_pending = !pending_.empty();
  result<appended> a = append_locked(type, parts, payload, refs, mode);
  // A first lazy record waiting in memory is work too, due lazy_write_delay later.
  const bool wake = !had_work && (has_sync_work() || (!had_pending && !pending_.empty()));
  lock.unlock();
  if (wake) work_cv_.notify_one();
  return a;
}

result<log::appended> log::append_locked(uint8_t type, std::span<const std::string_view> parts,
                                         uint64_t payload, uint32_t refs, sync_mode mode) {
  const uint64_t bytes = record_header_size + payload;
  if (needs_roll(bytes)) {
    if (auto r = roll(); !r) return r.error();
  }
  segment_state& seg = *active_;
  const uint64_t offset = seg.size;
  if (buffering()) {
    if (pending_.empty()) {
      pending_offset_ = offset;
      pending_since_ = std::chrono::steady_clock::now();
    }
    encode(type, parts, payload, pending_);
  } else {
    buf_.clear();
    encode(type, parts, payload, buf_);
    ++stats_.writes;
    if (auto w = seg.f->write_at(offset, buf_); !w) return undo_write(w.error(), offset);
    if (buf_.capacity() > max_kept_buffer) std::string().swap(buf_);
  }

  seg.size += bytes;
  seg.refs += refs;
  const uint64_t lsn = last_lsn() + 1;
  last_lsn_.store(lsn, std::memory_order_release);
  if (opts_.sync) {
    mark_unsynced(active_);
    if (mode == sync_mode::now) wanted_lsn_ = lsn;
  } else {
    durable_lsn_.store(lsn, std::memory_order_release);
  }
  ++stats_.appends;
  if (mode == sync_mode::lazy) ++stats_.lazy_appends;
  stats_.bytes += bytes;
  if (preallocating()) want_prepared();
  return appended{lsn, {seg.number, static_cast<uint32_t>(payload), offset + record_header_size}};
}

// Write-behind: the records still in memory belong to the active segment, so they are
// written before it is sealed. The appends that made them succeeded, so a failure here
// fails the log.
result<void> log::write_pending_locked() {
  if (pending_.empty()) return {};
  ++stats_.writes;
  if (auto w = active_->f->write_at(pending_offset_, pending_); !w) {
    ++stats_.write_errors;
    fail(w.error());
    return w.error();
  }
  pending_.clear();
  return {};
}

// A record never spans segments; one larger than segment_bytes gets a segment of its own.
// A log in a segment that was not preallocated moves to a prepared one as soon as it can.
bool log::needs_roll(uint64_t record_bytes) const {
  if (active_->size <= segment_header_size) return false;
  return active_->size + record_bytes > opts_.segment_bytes || (prepared_ && !active_->prewritten);
}

// Asks the reclaimer for a prepared file once the active segment is busy: past 1 MiB if it
// was not preallocated (a short-lived log never pays for one), half full if it was (so the
// next one is ready in time).
void log::want_prepared() {
  if (prepared_ || preparing_ || prepare_wanted_ || prepare_failed_ || failed_) return;
  const uint64_t used = active_->size;
  const uint64_t threshold = active_->prewritten
                                 ? opts_.segment_bytes / 2
                                 : std::min<uint64_t>(1 << 20, opts_.segment_bytes / 4);
  if (used < threshold) return;
  prepare_wanted_ = true;
  reclaim_cv_.notify_one();
}

result<void> log::roll() {
  if (next_segment_ > UINT32_MAX) return errc::segments_exhausted;
  if (auto r = write_pending_locked(); !r) return r;
  // A failed creation that left no file behind gives its number to the next roll: numbers
  // of live segments then only skip where a file was deleted or left damaged, which is how
  // an owner tells a lost segment from one that was never made (docs/wal_format.md).
  bool name_taken = false;
  std::shared_ptr<segment_state> seg;
  bool adopt_failed = false;
  if (prepared_) {
    auto adopted = adopt_prepared(static_cast<uint32_t>(next_segment_), &name_taken);
    if (adopted) seg = std::move(*adopted);
    adopt_failed = !adopted;
    if (name_taken && !adopted) ++next_segment_;
    if (next_segment_ > UINT32_MAX) return errc::segments_exhausted;
  }
  const auto number = static_cast<uint32_t>(next_segment_);
  if (!seg) {
    auto created = create_segment(number, &name_taken);
    if (!created) {
      if (name_taken) ++next_segment_;
      return created.error();
    }
    seg = std::move(*created);
  }
  ++next_segment_;
  segments_.emplace(number, seg);
  active_ = std::move(seg);
  deletion_paused_ = false;
  // A failed preparation (a full disk?) is retried once per roll, unless this roll could not
  // use the prepared file: then not before the next one.
  prepare_failed_ = adopt_failed;
  wake_reclaimer_if_ready();  // the previous segment is sealed now
  ++stats_.segments_created;
  if (opts_.sync) {
    dir_unsynced_ = true;  // the new name is durable only after the directory is synced
    mark_unsynced(active_);
  }
  return {};
}

result<std::shared_ptr<log::segment_state>> log::create_segment(uint32_t number, bool* name_taken) {
  const std::filesystem::path path = path_of(number);
  auto created = env_.create_file(path);
  if (!created) {
    *name_taken = created.error() == boost::system::errc::file_exists;
    return created.error();
  }
  std::unique_ptr<file> f = std::move(*created);
  const segment_header header = encode_segment_header(number);
  if (auto w = f->write_at(0, header); !w) {
    f.reset();
    // Best effort; recovery ignores a headerless file anyway.
    *name_taken = !env_.remove_file(path);
    return w.error();
  }
  auto seg = std::make_shared<segment_state>();
  seg->number = number;
  seg->f = std::move(f);
  seg->size = segment_header_size;
  return seg;
}

// Appends the record to `out`.
// Renames the prepared file to segment `number` and writes its header over the zeros.
// On failure the prepared file is dropped (the caller creates the segment as usual).
result<std::shared_ptr<log::segment_state>> log::adopt_prepared(uint32_t number, bool* name_taken) {
  std::unique_ptr<file> f = std::move(prepared_);
  if (auto r = env_.rename_file(opts_.dir / prepared_file_name, path_of(number)); !r) {
    ++stats_.prepare_errors;
    return r.error();
  }
  const segment_header header = encode_segment_header(number);
  if (auto w = f->write_at(0, header); !w) {
    ++stats_.prepare_errors;
    f.reset();
    *name_taken = !env_.remove_file(path_of(number));  // best effort, as in create_segment
    return w.error();
  }
  auto seg = std::make_shared<segment_state>();
  seg->number = number;
  seg->f = std::move(f);
  seg->size = segment_header_size;
  seg->prewritten = true;
  return seg;
}

void log::encode(uint8_t type, std::span<const std::string_view> parts, size_t payload,
                 std::string& out) {
  const size_t start = out.size();
  out.resize(start + record_header_size + payload);
  char* record = out.data() + start;
  record[record_type_offset] = static_cast<char>(type);
  char* p = record + record_header_size;
  for (std::string_view part : parts) {
    if (part.empty()) continue;  // an empty view may have a null data()
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  seal_record(std::span<char>(record, record_header_size + payload));
}

// A failed write may have left part of the record behind; cutting it off keeps the segment
// a clean sequence of records, so the error is not fatal (ENOSPC clears once space is
// freed). If the cut fails too, what the segment holds is unknown: fail the log.
error_code log::undo_write(const error_code& ec, uint64_t offset) {
  ++stats_.write_errors;
  if (auto t = active_->f->truncate(offset); !t) fail(ec);
  return ec;
}

void log::mark_unsynced(const std::shared_ptr<segment_state>& seg) {
  if (seg->unsynced) return;
  seg->unsynced = true;
  unsynced_.push_back(seg);
}

void log::fail(const error_code& ec) {
  if (!failed_) failed_ = ec;
  work_cv_.notify_one();  // the sync thread fails the waiters
}

void log::when_durable(uint64_t lsn, durable_callback done) {
  std::unique_lock lock(mu_);
  error_code ec;
  if (lsn <= durable_lsn()) {
    ec = {};
  } else if (failed_) {
    ec = failed_;
  } else if (lsn > last_lsn()) {
    ec = errc::bad_lsn;
  } else {
    // An unsynced append up to lsn exists; if it was lazy, ask for a group commit.
    waiters_.push_back({lsn, std::move(done)});
    std::push_heap(waiters_.begin(), waiters_.end(),
                   [](const waiter& a, const waiter& b) { return a.lsn > b.lsn; });
    if (wanted_lsn_ < lsn) {
      const bool had_work = has_sync_work();
      wanted_lsn_ = lsn;
      lock.unlock();
      if (!had_work) work_cv_.notify_one();
    }
    return;
  }
  lock.unlock();
  done(ec);
}

result<void> log::read(const location& loc, char* out) const {
  std::shared_ptr<segment_state> seg;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(loc.segment);
    if (it == segments_.end()) return errc::bad_location;
    seg = it->second;
    const uint64_t first = seg->damaged_header ? 0 : segment_header_size;
    if (loc.offset < first || loc.offset > seg->size ||
        seg->size - loc.offset < loc.length) {
      return errc::bad_location;
    }
    if (loc.length == 0) return {};
    if (buffering() && copy_buffered(loc, out)) return {};
  }
  return seg->f->read_at(loc.offset, std::span<char>(out, loc.length));
}

// Write-behind: copies loc from the records not written yet, if it is there. A location
// lies inside one record and records are buffered whole, so it is in one buffer or in
// the file.
bool log::copy_buffered(const location& loc, char* out) const {
  const auto copy_from = [&](const std::string& buf, uint64_t start) {
    if (loc.offset < start || loc.offset - start >= buf.size()) return false;
    if (buf.size() - (loc.offset - start) < loc.length) return false;  // cannot happen
    std::memcpy(out, buf.data() + (loc.offset - start), loc.length);
    return true;
  };
  if (loc.segment == active_->number && copy_from(pending_, pending_offset_)) return true;
  return writing_seg_ && loc.segment == writing_seg_->number && copy_from(writing_, writing_offset_);
}

void log::add_ref(uint32_t segment, uint32_t n) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  assert(it != segments_.end() && "add_ref on a deleted segment");
  if (it != segments_.end()) it->second->refs += n;
}

void log::release(uint32_t segment, uint32_t n) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  assert(it != segments_.end() && it->second->refs >= n && "release without a reference");
  if (it == segments_.end()) return;
  auto& seg = *it->second;
  seg.refs -= std::min<uint64_t>(seg.refs, n);
  if (seg.refs == 0) {
    seg.released_at = last_lsn();
    wake_reclaimer_if_ready();
  }
}

uint32_t log::active_segment() const {
  std::lock_guard lock(mu_);
  return active_->number;
}

std::vector<std::pair<uint32_t, uint64_t>> log::segment_sizes() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<uint32_t, uint64_t>> out;
  out.reserve(segments_.size());
  for (const auto& [n, seg] : segments_) out.emplace_back(n, seg->size);
  return out;
}

std::vector<uint32_t> log::damaged_header_segments() const {
  std::lock_guard lock(mu_);
  std::vector<uint32_t> out;
  for (const auto& [n, seg] : segments_) {
    if (seg->damaged_header) out.push_back(n);
  }
  return out;
}

log::stats log::get_stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool log::failed() const {
  std::lock_guard lock(mu_);
  return static_cast<bool>(failed_);
}

error_code log::failure() const {
  std::lock_guard lock(mu_);
  return failed_;
}

std::filesystem::path log::path_of(uint32_t number) const {
  return opts_.dir / segment_file_name(number);
}

}  // namespace sqsrelay::wal
