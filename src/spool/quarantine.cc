#include "spool/quarantine.h"

#include <algorithm>
#include <array>
#include <boost/system/errc.hpp>

#include "spool/codec.h"
#include "spool/spool_format.h"
#include "wal/codec.h"

namespace sqsrelay::spool {

result<bool> quarantine::known(uint32_t segment, uint64_t offset, uint64_t damaged_length) {
  if (!f_) {
    if (auto r = open_file(); !r) return {boost::system::in_place_error, r.error()};
  }
  return keys_.count({segment, offset, damaged_length}) > 0;
}

uint64_t quarantine::copy_allowance(uint64_t damaged_length) const {
  return std::min<uint64_t>({damaged_length, copy_budget_, UINT32_MAX});
}

result<void> quarantine::add(uint32_t segment, uint64_t offset, uint64_t damaged_length,
                             std::span<const char> copied) {
  if (!f_) {
    if (auto r = open_file(); !r) return r;
  }
  const auto header = encode_quarantine_entry(segment, offset, damaged_length, copied);
  if (auto r = f_->write_at(size_, header); !r) return r;
  if (auto r = f_->write_at(size_ + header.size(), copied); !r) return r;
  size_ += header.size() + copied.size();
  keys_.insert({segment, offset, damaged_length});
  copy_budget_ -= std::min<uint64_t>(copy_budget_, copied.size());
  unsynced_ = true;
  return {};
}

result<void> quarantine::sync() {
  if (!unsynced_ || !sync_) return {};
  if (auto r = f_->sync(); !r) return r;
  unsynced_ = false;
  return {};
}

// Appends after whatever the file holds (a torn entry from a crash stays behind as
// garbage that the dump tool reports and skips).
result<void> quarantine::open_file() {
  const std::filesystem::path path = dir_ / quarantine_file_name;
  auto opened = env_.open_file(path);
  if (opened) {
    SQSRELAY_TRY(size, (*opened)->size());
    f_ = std::move(*opened);
    size_ = size;
    return load_keys();
  }
  if (opened.error() != boost::system::errc::no_such_file_or_directory) return opened.error();
  SQSRELAY_TRY(f, env_.create_file(path));
  if (auto r = f->write_at(0, quarantine_magic); !r) return r;
  if (sync_) {
    if (auto r = f->sync(); !r) return r;
    if (auto r = env_.sync_dir(dir_); !r) return r;
  }
  f_ = std::move(f);
  size_ = quarantine_magic.size();
  return {};
}

// Reads the entry headers (not the copied bytes), up to the first one that does not fit in
// the file (a torn entry: new entries go after it).
result<void> quarantine::load_keys() {
  uint64_t at = quarantine_magic.size();
  std::array<char, quarantine_entry_header_size> h{};
  while (size_ >= at + h.size()) {
    if (auto r = f_->read_at(at, h); !r) return r;
    const uint64_t copied = wal::get_u32(h.data() + 24);
    if (size_ - at - h.size() < copied) break;
    keys_.insert({wal::get_u32(h.data() + 4), get_u64(h.data() + 8), get_u64(h.data() + 16)});
    at += h.size() + copied;
  }
  return {};
}

}  // namespace sqsrelay::spool
