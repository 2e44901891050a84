// env over POSIX files. Every syscall's error is returned with its errno; EINTR is retried.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "wal/env.h"
#include "wal/errc.h"

namespace sqsrelay::wal {
namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

class posix_file final : public file {
 public:
  explicit posix_file(int fd) : fd_(fd) {}
  ~posix_file() override { ::close(fd_); }
  posix_file(const posix_file&) = delete;
  posix_file& operator=(const posix_file&) = delete;

  result<void> write_at(uint64_t offset, std::span<const char> data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return last_error();
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return {};
  }

  result<void> read_at(uint64_t offset, std::span<char> out) const override {
    while (!out.empty()) {
      ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return last_error();
      if (n == 0) return errc::short_read;
      out = out.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return {};
  }

  result<void> sync() override {
    if (::fdatasync(fd_) != 0) return last_error();
    return {};
  }

  result<void> truncate(uint64_t size) override {
    int rc;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return last_error();
    return {};
  }

  result<uint64_t> size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return last_error();
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
};

class posix_lock final : public dir_lock {
 public:
  explicit posix_lock(int fd) : fd_(fd) {}
  ~posix_lock() override { ::close(fd_); }  // closing the fd releases the flock
  posix_lock(const posix_lock&) = delete;
  posix_lock& operator=(const posix_lock&) = delete;

 private:
  int fd_;
};

result<int> open_fd(const std::filesystem::path& p, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(p.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return last_error();
  return fd;
}

result<void> fsync_path(const std::filesystem::path& dir) {
  SQSRELAY_TRY(fd, open_fd(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY));
  int rc = ::fsync(fd);
  error_code ec = rc == 0 ? error_code{} : last_error();
  ::close(fd);
  if (ec) return ec;
  return {};
}

class posix_env final : public env {
 public:
  result<std::unique_ptr<file>> create_file(const std::filesystem::path& p) override {
    SQSRELAY_TRY(fd, open_fd(p, O_RDWR | O_CREAT | O_EXCL, 0644));
    return std::unique_ptr<file>(std::make_unique<posix_file>(fd));
  }

  result<std::unique_ptr<file>> open_file(const std::filesystem::path& p) override {
    SQSRELAY_TRY(fd, open_fd(p, O_RDWR));
    return std::unique_ptr<file>(std::make_unique<posix_file>(fd));
  }

  result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return error_code(ec);
    return names;
  }

  result<void> remove_file(const std::filesystem::path& p) override {
    if (::unlink(p.c_str()) != 0) return last_error();
    return {};
  }

  result<void> rename_file(const std::filesystem::path& from,
                           const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return last_error();
    return {};
  }

  result<void> sync_dir(const std::filesystem::path& dir) override { return fsync_path(dir); }

  result<uint64_t> available_bytes(const std::filesystem::path& dir) override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return last_error();
    return uint64_t{st.f_bavail} * st.f_frsize;
  }

  result<void> create_dir(const std::filesystem::path& dir) override {
    std::error_code ec;
    if (!std::filesystem::create_directories(dir, ec)) {
      if (ec) return error_code(ec);
      return {};  // existed already
    }
    // Make the new entry durable in its parent (and a new parent in its own parent).
    auto parent = dir.parent_path();
    if (auto r = fsync_path(parent); !r) return r;
    return parent.has_parent_path() ? fsync_path(parent.parent_path()) : result<void>{};
  }

  result<std::unique_ptr<dir_lock>> lock_file(const std::filesystem::path& p) override {
    SQSRELAY_TRY(fd, open_fd(p, O_RDWR | O_CREAT, 0644));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      error_code ec = errno == EWOULDBLOCK ? make_error_code(errc::locked) : last_error();
      ::close(fd);
      return ec;
    }
    return std::unique_ptr<dir_lock>(std::make_unique<posix_lock>(fd));
  }
};

}  // namespace

env& default_posix_env() {
  static posix_env e;
  return e;
}

}  // namespace sqsrelay::wal
