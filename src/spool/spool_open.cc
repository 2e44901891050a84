// Opening a spool: the log is replayed, damaged ranges found, copied to the quarantine file
// and turned into skips for the reader, and the reader placed after the persisted position.
// Damage never fails open; only I/O errors do.
#include <algorithm>

#include "spool/codec.h"
#include "spool/position_file.h"
#include "spool/quarantine.h"
#include "spool/spool.h"
#include "spool/spool_format.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {

struct spool::replay_state {
  uint64_t position = 0;                 // persisted delivery position
  uint64_t last_seq = 0;                 // of the last intact group
  pos last_end;                          // end of the last intact group
  std::optional<pos> first_undelivered;  // start of the first group past the position
  std::vector<std::pair<uint32_t, range>> damage;
};

result<void> spool::recover() {
  wal::options wo;
  wo.dir = opts_.dir / log_dir_name;
  wo.segment_bytes = opts_.segment_bytes;
  wo.sync = opts_.sync;
  wo.on_deleted = [this](uint32_t segment) { on_segment_deleted(segment); };
  SQSRELAY_TRY(log, wal::log::open(wo, env_));  // creates opts_.dir too, and locks
  log_ = std::move(log);
  position_recovery found;
  SQSRELAY_TRY(pf, position_file::open(env_, opts_.dir, opts_.sync, &found));
  position_ = std::move(pf);
  quarantine_ =
      std::make_unique<quarantine>(env_, opts_.dir, opts_.quarantine_copy_bytes, opts_.sync);

  replay_state st;
  st.position = found.position;
  recovery_.position = found.position;
  recovery_.position_reset = found.corrupt;
  // Every segment is held until its damage is copied out: replay() lets the reclaimer
  // delete unreferenced segments as soon as it returns.
  const std::vector<std::pair<uint32_t, uint64_t>> sizes = log_->segment_sizes();
  for (const auto& [n, size] : sizes) log_->add_ref(n);
  for (uint32_t n : log_->damaged_header_segments()) segments_[n].header_damaged = true;
  auto replayed = log_->replay([&](uint8_t type, std::span<const char> payload, wal::location loc) {
    replay_group(type, payload, loc, st);
  });
  if (!replayed) return replayed.error();
  recovery_.segments = replayed->segments;
  recovery_.truncated_bytes = replayed->truncated_bytes;
  SQSRELAY_TRY(stray, count_stray_files());
  recovery_.stray_files = replayed->ignored_files + stray;

  find_damage(sizes, st.damage);
  find_missing(sizes, found);
  for (const auto& [n, r] : st.damage) recovery_.quarantined_bytes += copy_to_quarantine(n, r);
  if (!st.damage.empty()) {
    if (auto r = quarantine_->sync(); !r) ++stats_.quarantine_errors;
  }
  std::lock_guard lock(state_mu_);  // the reclaimer may delete segments from here on
  for (const auto& [n, size] : sizes) log_->release(n);

  next_seq_ = std::max(st.last_seq, st.position) + 1;
  durable_ = st.last_end;
  durable_seq_ = st.last_seq;
  delivered_ = persisted_ = read_seq_ = handed_seq_ = st.position;
  rpos_ = st.first_undelivered.value_or(st.last_end);
  stats_.corrupt_ranges = recovery_.corrupt_ranges;
  stats_.corrupt_bytes = recovery_.corrupt_bytes;
  stats_.quarantined_bytes = recovery_.quarantined_bytes;
  stats_.missing_ranges = recovery_.missing_ranges;
  stats_.missing_seqs = recovery_.missing_seqs;
  return {};
}

// An intact wal record. A group that does not parse, or whose seqs do not follow the
// previous group's (a record-like byte run inside a damaged record's payload that the wal's
// resync found), is left inside a damaged range.
void spool::replay_group(uint8_t type, std::span<const char> payload, wal::location loc,
                         replay_state& st) {
  std::optional<group_view> g;
  if (type == group_record_type) g = parse_group(payload);
  if (!g || g->first_seq <= st.last_seq) return;
  segment_info& s = segments_[loc.segment];
  const uint64_t start = loc.offset - wal::record_header_size;
  const uint64_t from = s.data_end > 0 ? s.data_end : first_data_byte(s);
  if (start > from) st.damage.push_back({loc.segment, {from, start}});
  s.data_end = loc.offset + loc.length;
  if (s.first_seq == 0) s.first_seq = g->first_seq;
  s.last_seq = g->last_seq();
  st.last_seq = g->last_seq();
  st.last_end = {loc.segment, s.data_end};
  ++recovery_.groups;
  recovery_.records += g->count;
  if (g->last_seq() <= st.position) return;
  // Kept until the persisted position covers it. add_ref is allowed during replay.
  log_->add_ref(loc.segment);
  ++s.refs;
  recovery_.undelivered += g->last_seq() - std::max(g->first_seq - 1, st.position);
  if (!st.first_undelivered) st.first_undelivered = pos{loc.segment, start};
}

// Where a segment's first group should start: after its header, or at 0 when the header is
// damaged (it is part of the damage before the first intact group).
uint64_t spool::first_data_byte(const segment_info& s) {
  return s.header_damaged ? 0 : wal::segment_header_size;
}

// Whatever follows a segment's last intact group is damage too: garbage after a tail torn
// in an older segment, or a rejected group. The newest segment's torn tail is already cut.
void spool::find_damage(const std::vector<std::pair<uint32_t, uint64_t>>& sizes,
                        std::vector<std::pair<uint32_t, range>>& damage) {
  for (const auto& [n, size] : sizes) {
    segment_info& s = segments_[n];
    const uint64_t from = s.data_end > 0 ? s.data_end : first_data_byte(s);
    s.data_end = std::max<uint64_t>(s.data_end, wal::segment_header_size);
    s.file_bytes = size;
    disk_bytes_.fetch_add(size, std::memory_order_relaxed);
    if (size > from) damage.push_back({n, {from, size}});
  }
  std::sort(damage.begin(), damage.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.begin < b.second.begin;
  });
  for (const auto& [n, r] : damage) {
    add_skip(n, r);
    ++recovery_.corrupt_ranges;
    recovery_.corrupt_bytes += r.end - r.begin;
  }
}

// Seqs past the position that a missing or emptied segment took with it. Only counted and
// reported: the reader steps over them as over any unused seq.
void spool::find_missing(const std::vector<std::pair<uint32_t, uint64_t>>& sizes,
                         const position_recovery& found) {
  std::vector<segment_summary> live;
  for (const auto& [n, size] : sizes) {
    const segment_info& s = segments_[n];
    live.push_back({n, s.first_seq, s.last_seq, !s.skips.empty() || s.header_damaged});
  }
  const bool known = !found.created && !found.corrupt;
  recovery_.missing = find_missing_ranges(live, found.position, known);
  for (const missing_range& m : recovery_.missing) {
    ++recovery_.missing_ranges;
    recovery_.missing_seqs += m.last_seq - m.first_seq + 1;
  }
}

void spool::add_skip(uint32_t segment, range r) {
  std::vector<range>& skips = segments_[segment].skips;
  auto at = std::lower_bound(skips.begin(), skips.end(), r.begin,
                             [](const range& x, uint64_t b) { return x.begin < b; });
  skips.insert(at, r);
}

// Copies (the start of) a damaged range into the quarantine file, unless an earlier open
// did; returns the bytes copied.
// Failures are counted, never fatal: the range is skipped either way.
uint64_t spool::copy_to_quarantine(uint32_t segment, range r) {
  if (auto k = quarantine_->known(segment, r.begin, r.end - r.begin); k && *k) return 0;
  const uint64_t n = quarantine_->copy_allowance(r.end - r.begin);
  std::string bytes(n, '\0');
  if (n > 0) {
    if (auto rd = log_->read({segment, static_cast<uint32_t>(n), r.begin}, bytes.data()); !rd) {
      bytes.clear();
    }
  }
  if (auto w = quarantine_->add(segment, r.begin, r.end - r.begin, bytes); !w) {
    std::lock_guard lock(state_mu_);
    ++stats_.quarantine_errors;
    return 0;
  }
  return bytes.size();
}

// Files in the spool directory that are not the spool's, left alone.
result<uint64_t> spool::count_stray_files() {
  SQSRELAY_TRY(names, env_.list_dir(opts_.dir));
  uint64_t n = 0;
  for (const std::string& name : names) {
    if (name != log_dir_name && name != position_file_name && name != quarantine_file_name) ++n;
  }
  return n;
}

}  // namespace sqsrelay::spool
