// A test env that remembers what a crash would keep (leveldb's FaultInjectionTestEnv, over
// an in-memory file system) and injects I/O errors at chosen call counts.
//
// Durability model (what ext4 promises at worst):
//   - a file's contents are durable as of its last successful sync();
//   - a created, removed or renamed name is durable only after a successful sync_dir() of
//     its directory; until then a crash undoes the create (the file vanishes), the remove
//     (the file comes back with its last synced contents) or the rename (the file is back
//     under its old name, if that was durable, and the new name is gone or back to what it
//     named before).
// crash() applies that model and puts the env "down": every call, and every call on a
// handle opened before the crash, fails with errc::crashed. restart() brings it back up for
// a fresh log to reopen. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "wal/env.h"

namespace sqsrelay::wal {

class fault_env final : public env {
 public:
  enum class op { write, sync, sync_dir, create, remove, truncate, rename };

  fault_env();
  ~fault_env() override;
  fault_env(const fault_env&) = delete;
  fault_env& operator=(const fault_env&) = delete;

  // The `nth` call (1-based, counted since construction) of `o` fails with `ec`. For a
  // write, the first `partial_bytes` bytes are written first (a short write then an error).
  void inject(op o, uint64_t nth, error_code ec, size_t partial_bytes = 0);
  void clear_faults();
  // Calls of `o` made so far (including failed ones).
  uint64_t calls(op o) const;

  // While held, file syncs block (before syncing anything) until release or crash.
  void hold_syncs();
  void release_syncs();

  // Drops everything not durable and fails every call until restart().
  void crash();
  void restart();
  // Crash-point sweep: the next `k` mutating calls run, the one after crashes instead.
  void crash_after(uint64_t k);
  bool is_down() const;
  // What available_bytes() reports (default: unlimited).
  void set_available_bytes(uint64_t n);

  result<std::unique_ptr<file>> create_file(const std::filesystem::path& p) override;
  result<std::unique_ptr<file>> open_file(const std::filesystem::path& p) override;
  result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override;
  result<void> remove_file(const std::filesystem::path& p) override;
  result<void> rename_file(const std::filesystem::path& from,
                           const std::filesystem::path& to) override;
  result<void> sync_dir(const std::filesystem::path& dir) override;
  result<uint64_t> available_bytes(const std::filesystem::path& dir) override;
  result<void> create_dir(const std::filesystem::path& dir) override;
  result<std::unique_ptr<dir_lock>> lock_file(const std::filesystem::path& p) override;

 private:
  class fault_file;
  struct tracked;  // one file's durable contents
  struct fault {
    op o;
    uint64_t nth;
    error_code ec;
    size_t partial_bytes;
  };

  // Counts a mutating call of `o` made through a handle of `epoch` and returns the error it
  // must fail with, if any (down, stale handle, crash point, injected fault). Requires mu_.
  error_code begin_op(op o, uint64_t epoch, size_t* partial_bytes);
  error_code check_up(uint64_t epoch) const;  // requires mu_
  void crash_locked();                        // requires mu_
  std::unique_ptr<file> wrap(std::unique_ptr<file> f, std::shared_ptr<tracked> t);

  std::unique_ptr<env> base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t counts_[7] = {};                                  // guarded by mu_
  std::vector<fault> faults_;                                // guarded by mu_
  std::map<std::string, std::shared_ptr<tracked>> current_;  // guarded by mu_
  std::map<std::string, std::shared_ptr<tracked>> durable_;  // guarded by mu_
  uint64_t epoch_ = 0;                                       // guarded by mu_
  bool down_ = false;                                        // guarded by mu_
  bool held_ = false;                                        // guarded by mu_
  uint64_t crash_countdown_ = 0;                             // 0: off; guarded by mu_
  uint64_t available_ = UINT64_MAX;                          // guarded by mu_
};

}  // namespace sqsrelay::wal
