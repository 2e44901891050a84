// env kept entirely in memory. Used by the server's --in-memory mode and as the base of
// fault_env. Files are shared nodes: like an unlinked POSIX file, an open handle keeps its
// contents after remove_file().
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "wal/env.h"
#include "wal/errc.h"
#include "wal/path_key.h"

namespace sqsrelay::wal {
namespace {

error_code not_found() { return make_error_code(boost::system::errc::no_such_file_or_directory); }

// File contents in fixed-size chunks: appending never moves what is already written (a
// single growing string would copy the whole segment on every capacity doubling). Chunks
// are allocated uninitialised; bytes past `size` are unspecified and zeroed when a write
// or truncate extends the file over them, so a small file does not pay for a 1 MiB memset.
struct mem_node {
  static constexpr uint64_t chunk = 1 << 20;
  mutable std::mutex mu;
  std::vector<std::unique_ptr<char[]>> chunks;  // guarded by mu
  uint64_t size = 0;                            // guarded by mu

  void write(uint64_t offset, std::span<const char> in) {
    const uint64_t end = offset + in.size();
    extend(offset);
    reserve(end);
    for (uint64_t pos = offset; pos < end;) {
      const uint64_t n = std::min(chunk - pos % chunk, end - pos);
      std::memcpy(chunks[pos / chunk].get() + pos % chunk, in.data() + (pos - offset), n);
      pos += n;
    }
    size = std::max(size, end);
  }

  void read(uint64_t offset, std::span<char> out) const {
    const uint64_t end = offset + out.size();
    for (uint64_t pos = offset; pos < end;) {
      const uint64_t n = std::min(chunk - pos % chunk, end - pos);
      std::memcpy(out.data() + (pos - offset), chunks[pos / chunk].get() + pos % chunk, n);
      pos += n;
    }
  }

  void truncate(uint64_t n) {
    if (n <= size) {
      chunks.resize((n + chunk - 1) / chunk);
      size = n;
    } else {
      extend(n);
    }
  }

 private:
  void reserve(uint64_t end) {
    while (chunks.size() * chunk < end) {
      chunks.push_back(std::make_unique_for_overwrite<char[]>(chunk));
    }
  }

  // Grows the file to `end` bytes (if shorter) with zeros.
  void extend(uint64_t end) {
    if (end <= size) return;
    reserve(end);
    for (uint64_t pos = size; pos < end;) {
      const uint64_t n = std::min(chunk - pos % chunk, end - pos);
      std::memset(chunks[pos / chunk].get() + pos % chunk, 0, n);
      pos += n;
    }
    size = end;
  }
};

class mem_file final : public file {
 public:
  explicit mem_file(std::shared_ptr<mem_node> node) : node_(std::move(node)) {}

  result<void> write_at(uint64_t offset, std::span<const char> data) override {
    std::lock_guard lock(node_->mu);
    node_->write(offset, data);
    return {};
  }

  result<void> read_at(uint64_t offset, std::span<char> out) const override {
    std::lock_guard lock(node_->mu);
    if (offset > node_->size || node_->size - offset < out.size()) return errc::short_read;
    node_->read(offset, out);
    return {};
  }

  result<void> sync() override { return {}; }

  result<void> truncate(uint64_t size) override {
    std::lock_guard lock(node_->mu);
    node_->truncate(size);
    return {};
  }

  result<uint64_t> size() const override {
    std::lock_guard lock(node_->mu);
    return node_->size;
  }

 private:
  std::shared_ptr<mem_node> node_;
};

class mem_lock final : public dir_lock {
 public:
  mem_lock(std::mutex& mu, std::set<std::string>& locks, std::string k)
      : mu_(mu), locks_(locks), key_(std::move(k)) {}
  ~mem_lock() override {
    std::lock_guard lock(mu_);
    locks_.erase(key_);
  }
  mem_lock(const mem_lock&) = delete;
  mem_lock& operator=(const mem_lock&) = delete;

 private:
  std::mutex& mu_;
  std::set<std::string>& locks_;
  std::string key_;
};

class mem_env final : public env {
 public:
  result<std::unique_ptr<file>> create_file(const std::filesystem::path& p) override {
    std::lock_guard lock(mu_);
    auto [it, inserted] = files_.try_emplace(path_key(p), std::make_shared<mem_node>());
    if (!inserted) return make_error_code(boost::system::errc::file_exists);
    return std::unique_ptr<file>(std::make_unique<mem_file>(it->second));
  }

  result<std::unique_ptr<file>> open_file(const std::filesystem::path& p) override {
    std::lock_guard lock(mu_);
    auto it = files_.find(path_key(p));
    if (it == files_.end()) return not_found();
    return std::unique_ptr<file>(std::make_unique<mem_file>(it->second));
  }

  result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> names;
    const std::string d = path_key(dir);
    for (const auto& [k, node] : files_) {
      if (parent_key(k) == d) names.push_back(std::filesystem::path(k).filename().string());
    }
    return names;
  }

  result<void> remove_file(const std::filesystem::path& p) override {
    std::lock_guard lock(mu_);
    if (files_.erase(path_key(p)) == 0) return not_found();
    return {};
  }

  result<void> rename_file(const std::filesystem::path& from,
                           const std::filesystem::path& to) override {
    std::lock_guard lock(mu_);
    auto it = files_.find(path_key(from));
    if (it == files_.end()) return not_found();
    std::shared_ptr<mem_node> node = std::move(it->second);
    files_.erase(it);
    files_[path_key(to)] = std::move(node);
    return {};
  }

  result<void> sync_dir(const std::filesystem::path&) override { return {}; }
  result<uint64_t> available_bytes(const std::filesystem::path&) override { return UINT64_MAX; }
  result<void> create_dir(const std::filesystem::path&) override { return {}; }

  result<std::unique_ptr<dir_lock>> lock_file(const std::filesystem::path& p) override {
    std::lock_guard lock(mu_);
    std::string k = path_key(p);
    if (!locks_.insert(k).second) return errc::locked;
    return std::unique_ptr<dir_lock>(std::make_unique<mem_lock>(mu_, locks_, std::move(k)));
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<mem_node>> files_;  // guarded by mu_
  std::set<std::string> locks_;                             // guarded by mu_
};

}  // namespace

std::unique_ptr<env> make_mem_env() { return std::make_unique<mem_env>(); }

}  // namespace sqsrelay::wal
