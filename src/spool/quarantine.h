// <dir>/quarantine.bin: where damaged spool bytes go before the spool skips them. Each
// entry records the segment and offset of a damaged range and a copy of its bytes, up to a
// total copy budget (past it, only where). Created on first use. Entries are durable after
// sync(); the spool syncs before it lets the damaged segment be deleted.
//
// Not thread-safe: the spool serialises calls.
#pragma once

#include <filesystem>
#include <memory>
#include <set>
#include <span>
#include <tuple>

#include "base/result.h"
#include "wal/env.h"

namespace sqsrelay::spool {

class quarantine {
 public:
  quarantine(wal::env& e, std::filesystem::path dir, uint64_t copy_budget, bool sync)
      : env_(e), dir_(std::move(dir)), copy_budget_(copy_budget), sync_(sync) {}

  // True when the file already holds an entry for exactly this range: an earlier open
  // quarantined it (damage stays in its segment until the segment is deleted), so the spool
  // does not copy it again at every restart.
  [[nodiscard]] result<bool> known(uint32_t segment, uint64_t offset, uint64_t damaged_length);
  // How many of `damaged_length` bytes add() may still copy.
  uint64_t copy_allowance(uint64_t damaged_length) const;
  // Appends an entry; `copied` holds the first copy_allowance() bytes of the range or fewer.
  [[nodiscard]] result<void> add(uint32_t segment, uint64_t offset, uint64_t damaged_length,
                                 std::span<const char> copied);
  [[nodiscard]] result<void> sync();

 private:
  result<void> open_file();
  result<void> load_keys();

  using key = std::tuple<uint32_t, uint64_t, uint64_t>;  // segment, offset, damaged length

  wal::env& env_;
  const std::filesystem::path dir_;
  uint64_t copy_budget_;
  const bool sync_;
  std::unique_ptr<wal::file> f_;
  uint64_t size_ = 0;
  bool unsynced_ = false;
  std::set<key> keys_;  // ranges in the file
};

}  // namespace sqsrelay::spool
