// The persisted delivery position: <dir>/position, two checksummed slots written in turn
// (spool_format.h), so a write torn by a crash leaves the previous position readable.
// Durable when store() returns success (pwrite + fdatasync of one 32-byte slot).
//
// Not thread-safe: the spool serialises calls.
#pragma once

#include <filesystem>
#include <memory>

#include "base/result.h"
#include "wal/env.h"

namespace sqsrelay::spool {

struct position_recovery {
  uint64_t position = 0;  // 0 when the file was missing or unreadable
  bool created = false;   // the file did not exist (or was too short to hold a slot)
  bool corrupt = false;   // the file existed but no slot was valid: position reset to 0
};

class position_file {
 public:
  // Opens (creating, and durably naming, if missing) the file and reads the valid slot with
  // the highest generation. Syncs the file, so the position returned is durable even if the
  // previous process died before its fdatasync. `sync`=false skips every sync.
  [[nodiscard]] static result<std::unique_ptr<position_file>> open(wal::env& e,
                                                                   const std::filesystem::path& dir,
                                                                   bool sync,
                                                                   position_recovery* found);

  // Durably stores `position` in the slot after the current one.
  [[nodiscard]] result<void> store(uint64_t position);
  uint64_t position() const { return position_; }

 private:
  position_file(std::unique_ptr<wal::file> f, bool sync) : f_(std::move(f)), sync_(sync) {}
  result<void> read(position_recovery* found, bool* short_file);

  std::unique_ptr<wal::file> f_;
  const bool sync_;
  uint64_t generation_ = 0;
  uint64_t position_ = 0;
};

}  // namespace sqsrelay::spool
