#include "spool/quarantine.h"

#include <algorithm>
#include <boost/system/errc.hpp>

#include "spool/codec.h"
#include "spool/spool_format.h"

namespace sqsrelay::spool {

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
    return {};
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

}  // namespace sqsrelay::spool
