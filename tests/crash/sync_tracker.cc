// LD_PRELOAD shim for the crash tests' power-loss emulation. For every successful fsync or
// fdatasync of a regular file it appends "SIZE PATH\n" to $SQSRELAY_SYNC_LOG, where SIZE is
// the file's size just before the call: everything below SIZE was written before the call,
// so it is durable once the call returned. After a kill -9 the test cuts each WAL segment
// back to its last logged size, which is what a power cut may leave (kill -9 alone keeps the
// page cache, so it cannot show an acknowledgement sent before the sync).
//
// Directory syncs are passed through unlogged: the emulation keeps file names as they are.
// $SQSRELAY_SYNC_DELAY_US (optional) makes every sync of a regular file that much slower, like
// a disk with real flush latency, so that kills land inside sync windows more often.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace {

using sync_fn = int (*)(int);

int log_fd() {
  static const int fd = [] {
    const char* p = std::getenv("SQSRELAY_SYNC_LOG");
    return p ? ::open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  }();
  return fd;
}

useconds_t delay_us() {
  static const useconds_t us = [] {
    const char* d = std::getenv("SQSRELAY_SYNC_DELAY_US");
    return d ? static_cast<useconds_t>(std::strtoul(d, nullptr, 10)) : 0u;
  }();
  return us;
}

sync_fn next(const char* name) { return reinterpret_cast<sync_fn>(::dlsym(RTLD_NEXT, name)); }

int tracked(int fd, sync_fn real) {
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && delay_us() > 0) ::usleep(delay_us());
  const int rc = real(fd);
  const int saved = errno;
  if (rc == 0 && regular && log_fd() >= 0) {
    char link[64];
    char path[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(link, path, sizeof path - 1);
    if (n > 0) {
      path[n] = '\0';
      char line[4200];
      const int len = std::snprintf(line, sizeof line, "%lld %s\n",
                                    static_cast<long long>(st.st_size), path);
      if (len > 0) (void)!::write(log_fd(), line, static_cast<size_t>(len));  // one O_APPEND write
    }
  }
  errno = saved;
  return rc;
}

}  // namespace

extern "C" int fdatasync(int fd) {
  static const sync_fn real = next("fdatasync");
  return tracked(fd, real);
}

extern "C" int fsync(int fd) {
  static const sync_fn real = next("fsync");
  return tracked(fd, real);
}
