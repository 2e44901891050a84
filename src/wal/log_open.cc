// Opening a log and replaying it. Recovery never fails on damaged data: stray files are
// counted and left alone, a torn tail is cut off the last segment, and damaged records
// elsewhere are skipped (see scanner.h). Only I/O errors and a newer format fail open().
#include <algorithm>

#include "wal/codec.h"
#include "wal/log.h"
#include "wal/log_segment.h"
#include "wal/scanner.h"
#include "wal/wal_format.h"

namespace sqsrelay::wal {
namespace {

// A preallocated file renamed into place whose header write did not reach the disk before a
// crash (the rename did): zeros where the header belongs, in the newest file. Nothing in it
// was ever durable; its creation is finished.
bool is_lost_header_of_prepared(const segment_header& header, uint32_t number,
                                uint32_t newest) {
  return number == newest &&
         std::all_of(header.begin(), header.end(), [](char c) { return c == 0; });
}

}  // namespace

result<std::unique_ptr<log>> log::open(const options& opts, env& e) {
  if (auto r = e.create_dir(opts.dir); !r) return r.error();
  SQSRELAY_TRY(lock, e.lock_file(opts.dir / lock_file_name));
  std::unique_ptr<log> l(new log(opts, e, std::move(lock)));
  if (auto r = l->recover(); !r) return r.error();
  l->sync_thread_ = std::thread([p = l.get()] { p->sync_loop(); });
  l->reclaim_thread_ = std::thread([p = l.get()] { p->reclaim_loop(); });
  return l;
}

// Runs before the sync thread exists, so nothing else touches the members yet.
result<void> log::recover() {
  SQSRELAY_TRY(names, env_.list_dir(opts_.dir));
  std::vector<uint32_t> numbers;
  for (const std::string& name : names) {
    if (name == lock_file_name) continue;
    if (name == prepared_file_name) {  // never held data; made again when needed
      (void)env_.remove_file(opts_.dir / name);  // best effort: preparing retries it
      continue;
    }
    if (auto n = parse_segment_file_name(name)) {
      numbers.push_back(*n);
    } else {
      ++recovery_.ignored_files;
    }
  }
  std::sort(numbers.begin(), numbers.end());
  const uint32_t newest = numbers.empty() ? 0 : numbers.back();
  for (uint32_t n : numbers) {
    if (auto r = open_segment(n, newest, recovery_); !r) return r;
  }
  // New segments are numbered past every segment-like name, valid or not.
  next_segment_ = std::max<uint64_t>(uint64_t{newest} + 1, first_segment);
  if (auto r = adopt_tail(newest); !r) return r;
  return sync_recovered();
}

// Replayed records are durable, so the owner may act on them: after a crash of the process
// (not the machine), or a shutdown whose last fdatasync failed, the page cache can still
// hold records that never reached the disk, and the segment list may not be durable yet.
result<void> log::sync_recovered() {
  if (!opts_.sync) return {};
  for (const auto& [n, seg] : segments_) {
    if (auto r = seg->f->sync(); !r) return r;
    seg->unsynced = false;
  }
  unsynced_.clear();
  dir_unsynced_ = false;
  return env_.sync_dir(opts_.dir);
}

// Adds segment `number` to segments_ if its header is valid. A short file at the newest
// number that starts like the right header is a creation torn by a crash: it gets its
// header rewritten. A full header whose bytes are damaged keeps the segment, sealed, for its
// records (see open_damaged). Anything else is ignored (and kept).
result<void> log::open_segment(uint32_t number, uint32_t newest, recovery_stats& st) {
  auto opened = env_.open_file(path_of(number));
  if (!opened && opened.error() == boost::system::errc::is_a_directory) {
    ++st.ignored_files;
    return {};
  }
  if (!opened) return opened.error();
  std::unique_ptr<file> f = std::move(*opened);
  SQSRELAY_TRY(size, f->size());
  segment_header header{};
  const size_t have = std::min<uint64_t>(size, segment_header_size);
  if (auto r = f->read_at(0, std::span<char>(header.data(), have)); !r) return r;

  auto seg = std::make_shared<segment_state>();
  seg->number = number;
  seg->size = size;
  if (size < segment_header_size) {
    if (number != newest || !is_torn_segment_header({header.data(), have}, number)) {
      ++st.ignored_files;
      return {};
    }
    st.truncated_bytes += size;
    header = encode_segment_header(number);
    if (auto r = f->write_at(0, header); !r) return r;
    seg->size = segment_header_size;
    if (opts_.sync) mark_unsynced(seg);
  } else {
    switch (check_segment_header(header, number)) {
      case header_check::ok:
        break;
      case header_check::damaged:
        if (is_lost_header_of_prepared(header, number, newest)) {
          st.truncated_bytes += segment_header_size;
          header = encode_segment_header(number);
          if (auto r = f->write_at(0, header); !r) return r;
          if (opts_.sync) mark_unsynced(seg);
          break;
        }
        seg->damaged_header = true;
        ++st.damaged_headers;
        break;
      case header_check::foreign:
        ++st.ignored_files;
        return {};
      case header_check::newer_version:
        return errc::unsupported_version;
    }
  }
  seg->f = std::move(f);
  segments_.emplace(number, std::move(seg));
  return {};
}

// Appending continues in the newest file if it is a valid segment, else in a new one.
// A segment whose header is damaged is never appended to: it stays sealed until deleted.
result<void> log::adopt_tail(uint32_t newest) {
  if (segments_.empty() || segments_.rbegin()->first != newest) return roll();
  if (segments_.rbegin()->second->damaged_header) return roll();
  active_ = segments_.rbegin()->second;
  return trim_tail(*active_);
}

// Cuts a torn write off the end of the active segment, so that appends follow the last
// intact record.
result<void> log::trim_tail(segment_state& seg) {
  SQSRELAY_TRY(body, read_body(seg, seg.size));
  const scan_result r = scan_records(body, segment_header_size, [](const scanned_record&) {});
  if (r.tail_bytes == 0) {
    seg.size = r.valid_end;  // before the zeros of a preallocated segment, if any
    seg.prewritten = r.zero_bytes > 0;
    return {};
  }
  if (auto t = seg.f->truncate(r.valid_end); !t) return t;
  recovery_.truncated_bytes += r.tail_bytes;
  seg.size = r.valid_end;
  return {};
}

result<std::string> log::read_body(const segment_state& seg, uint64_t end) const {
  std::string body(end - segment_header_size, '\0');
  if (auto r = seg.f->read_at(segment_header_size, body); !r) return r.error();
  return body;
}

result<recovery_stats> log::replay(const replay_fn& fn) {
  std::vector<std::pair<std::shared_ptr<segment_state>, uint64_t>> todo;  // segment, end
  recovery_stats st;
  {
    std::lock_guard lock(mu_);
    if (!replay_allowed_) return errc::replay_not_allowed;
    replay_allowed_ = false;
    st = recovery_;
    for (const auto& [n, seg] : segments_) todo.emplace_back(seg, seg->size);
  }
  for (const auto& [seg, end] : todo) {
    SQSRELAY_TRY(body, read_body(*seg, end));
    const uint32_t number = seg->number;
    const scan_result r = scan_records(body, segment_header_size, [&](const scanned_record& rec) {
      fn(rec.type, rec.payload,
         location{number, static_cast<uint32_t>(rec.payload.size()), rec.offset});
    });
    ++st.segments;
    st.records += r.records;
    if (r.zero_bytes > 0) {  // a sealed preallocated segment: its data ends before the zeros
      std::lock_guard lock(mu_);
      seg->size = std::min(seg->size, r.valid_end);
    }
    // Only the active segment's tail was cut at open; damage at the end of an older one
    // (whose tail a crash tore before the next segment began) is counted as corrupt.
    st.corrupt_records += r.corrupt_records + (r.tail_bytes > 0 ? 1 : 0);
    st.skipped_bytes += r.skipped_bytes + r.tail_bytes;
    if (seg->damaged_header) {  // the header is damage too; the records after it were kept
      ++st.corrupt_records;
      st.skipped_bytes += segment_header_size;
    }
  }
  std::lock_guard lock(mu_);
  replayed_ = true;
  wake_reclaimer_if_ready();
  return st;
}

}  // namespace sqsrelay::wal
