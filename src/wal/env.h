// The file-system seam of the write-ahead log (leveldb `Env` style). The log does all its
// I/O through an `env`, so tests run it on an in-memory or fault-injecting file system and
// the server's --in-memory mode runs the same code without touching the disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace sqsrelay::wal {

// One open file. Thread-safe: reads, writes to distinct ranges, sync and size may be called
// concurrently from several threads. Writes are positional; there is no file cursor.
class file {
 public:
  virtual ~file() = default;

  // Writes all of `data` at `offset` (one pwrite, repeated only after a short write).
  // On error a prefix of `data` may have been written.
  [[nodiscard]] virtual result<void> write_at(uint64_t offset, std::span<const char> data) = 0;
  // Reads exactly out.size() bytes at `offset`; errc::short_read if the file ends first.
  [[nodiscard]] virtual result<void> read_at(uint64_t offset, std::span<char> out) const = 0;
  // fdatasync: everything written before the call is durable when it returns success.
  // After a failure nothing is known about what is durable (fsyncgate).
  [[nodiscard]] virtual result<void> sync() = 0;
  [[nodiscard]] virtual result<void> truncate(uint64_t size) = 0;
  [[nodiscard]] virtual result<uint64_t> size() const = 0;
};

// Held while a directory is locked by this process; unlocks when destroyed.
class dir_lock {
 public:
  virtual ~dir_lock() = default;
};

// File-system operations. Thread-safe. Creating or removing a file is durable only after
// sync_dir() of its directory returns success.
class env {
 public:
  virtual ~env() = default;

  // Creates a new empty file; fails if it exists.
  [[nodiscard]] virtual result<std::unique_ptr<file>> create_file(
      const std::filesystem::path& p) = 0;
  // Opens an existing file for reading and writing.
  [[nodiscard]] virtual result<std::unique_ptr<file>> open_file(const std::filesystem::path& p) = 0;
  // Names (not paths) of the entries of `dir`, in no particular order.
  [[nodiscard]] virtual result<std::vector<std::string>> list_dir(
      const std::filesystem::path& dir) = 0;
  [[nodiscard]] virtual result<void> remove_file(const std::filesystem::path& p) = 0;
  // Renames `from` to `to` atomically, replacing `to` if it exists. Open handles of `from`
  // keep working (they refer to the file, not the name).
  [[nodiscard]] virtual result<void> rename_file(const std::filesystem::path& from,
                                                 const std::filesystem::path& to) = 0;
  [[nodiscard]] virtual result<void> sync_dir(const std::filesystem::path& dir) = 0;
  // Bytes an unprivileged writer may still allocate on the file system holding `dir`.
  [[nodiscard]] virtual result<uint64_t> available_bytes(const std::filesystem::path& dir) = 0;
  // Creates `dir` and its parents if missing, durably (the parent directory is synced).
  [[nodiscard]] virtual result<void> create_dir(const std::filesystem::path& dir) = 0;
  // Exclusive advisory lock on `p` (created if missing); errc::locked if held elsewhere.
  [[nodiscard]] virtual result<std::unique_ptr<dir_lock>> lock_file(
      const std::filesystem::path& p) = 0;
};

// Real files: O_CLOEXEC, pwrite/pread, fdatasync, fsync of directories, flock.
env& default_posix_env();

// Everything in memory; sync is a no-op. Each call returns an independent file system.
std::unique_ptr<env> make_mem_env();

}  // namespace sqsrelay::wal
