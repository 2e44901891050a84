// spool_bench: append throughput of the spool on the real disk, closed loop.
//
// For each (appenders, batch) configuration: a fresh spool directory; `appenders` virtual
// appenders each keep one append of `batch` records of `--size` bytes in flight and issue
// the next one from the completion (so concurrency is exact and no thread per appender is
// needed); a reader thread drains, marks delivered and so keeps the disk bounded (unless
// --no-drain). Reports records/s, appends/s, fdatasyncs/s, records per fdatasync, and
// p50/p99 append-to-acknowledgement latency.
//
//   spool_bench [--dir DIR] [--seconds S] [--size BYTES] [--appenders 1,16,64]
//               [--batch 1,100] [--no-drain] [--keep] [--position-ms MS] [--no-sync]
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spool/spool.h"

namespace fs = std::filesystem;
using namespace sqsrelay;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
  fs::path dir;
  double seconds = 3;
  size_t size = 200;
  bool drain = true;
  bool keep = false;
  int position_ms = 50;
  bool sync = true;
};

struct result_row {
  size_t appenders = 0, batch = 0;
  double records_per_s = 0, appends_per_s = 0, fsyncs_per_s = 0, records_per_fsync = 0;
  double p50_us = 0, p99_us = 0;
  uint64_t errors = 0;
};

class load {
 public:
  load(spool::spool& s, size_t appenders, size_t batch, size_t size)
      : s_(s), payload_(size, 'x'), views_(batch, std::string_view(payload_)) {
    slots_.resize(appenders);
  }

  void start() {
    for (size_t i = 0; i < slots_.size(); ++i) issue(i);
  }

  // Stops issuing and waits for the appends in flight.
  void stop() {
    stopping_ = true;
    while (in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  void reset_counters() {
    std::lock_guard lock(mu_);
    latencies_us_.clear();
    acked_ = 0;
    errors_ = 0;
  }

  uint64_t acked() const { return acked_.load(); }
  uint64_t errors() const { return errors_.load(); }
  std::vector<double> latencies() {
    std::lock_guard lock(mu_);
    return latencies_us_;
  }

 private:
  void issue(size_t slot) {
    ++in_flight_;
    slots_[slot] = clock_type::now();
    s_.append(views_, [this, slot](error_code ec, uint64_t) { complete(slot, ec); });
  }

  void complete(size_t slot, error_code ec) {
    const double us =
        std::chrono::duration<double, std::micro>(clock_type::now() - slots_[slot]).count();
    if (ec) {
      ++errors_;
      if (ec == spool::errc::spool_full) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      acked_ += views_.size();
      std::lock_guard lock(mu_);
      if (latencies_us_.size() < 4'000'000) latencies_us_.push_back(us);
    }
    if (!stopping_ && !(ec && ec != spool::errc::spool_full)) issue(slot);
    --in_flight_;
  }

  spool::spool& s_;
  std::string payload_;
  std::vector<std::string_view> views_;
  std::vector<clock_type::time_point> slots_;  // each slot touched by one append at a time
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> errors_{0};
  std::mutex mu_;
  std::vector<double> latencies_us_;
};

// fdatasync rate of the scratch disk now: 200 × (append 4 KiB, fdatasync), as
// bench/run.sh's probe does. The spool's closed-loop throughput scales with it.
void probe_disk(const fs::path& dir, const char* when) {
  const fs::path p = dir / "probe.dat";
  const int fd = ::open(p.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string block(4096, 'p');
  std::vector<double> us;
  for (int i = 0; i < 200; ++i) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    const auto t = clock_type::now();
    if (::fdatasync(fd) != 0) break;
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t).count());
  }
  ::close(fd);
  fs::remove(p);
  double total = 0;
  for (double u : us) total += u;
  std::sort(us.begin(), us.end());
  if (us.empty()) return;
  std::printf("disk probe (%s): %.0f fdatasync/s, p50 %.0f µs, p99 %.0f µs\n", when,
              us.size() / (total / 1e6), us[us.size() / 2], us[us.size() * 99 / 100]);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + at, v.end());
  return v[at];
}

result_row run_one(const config& cfg, size_t appenders, size_t batch) {
  const fs::path dir = cfg.dir / ("a" + std::to_string(appenders) + "_b" + std::to_string(batch));
  fs::remove_all(dir);
  spool::options opts;
  opts.dir = dir;
  opts.budget_bytes = uint64_t{8} << 30;
  opts.position_interval = std::chrono::milliseconds(cfg.position_ms);
  opts.sync = cfg.sync;
  auto opened = spool::spool::open(opts, wal::default_posix_env());
  if (!opened) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), opened.error().message().c_str());
    std::exit(1);
  }
  spool::spool& s = **opened;
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    std::vector<spool::record> out;
    while (reading) {
      auto n = s.read(4096, out);
      if (!n || *n == 0) {
        s.wait_readable(std::chrono::milliseconds(5));
        continue;
      }
      (void)s.mark_delivered(out.front().seq, out.back().seq);
    }
  });
  if (!cfg.drain) reading = false;
  load l(s, appenders, batch, cfg.size);
  l.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // warm-up
  l.reset_counters();
  const uint64_t fsyncs0 = s.get_stats().fsyncs;
  const auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.seconds));
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  const uint64_t acked = l.acked();
  const uint64_t fsyncs = s.get_stats().fsyncs - fsyncs0;
  const auto lat = l.latencies();
  l.stop();
  reading = false;
  reader.join();
  result_row r;
  r.appenders = appenders;
  r.batch = batch;
  r.records_per_s = acked / elapsed;
  r.appends_per_s = lat.size() / elapsed;
  r.fsyncs_per_s = fsyncs / elapsed;
  r.records_per_fsync = fsyncs ? double(acked) / fsyncs : 0;
  r.p50_us = percentile(lat, 0.50);
  r.p99_us = percentile(lat, 0.99);
  r.errors = l.errors();
  opened->reset();
  if (!cfg.keep) fs::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spool_bench: spool append throughput on the real disk (closed loop)"};
  config cfg;
  std::string dir = "bench-spool-data";
  std::vector<size_t> appenders{1, 16, 64}, batches{1, 100};
  bool no_drain = false;
  app.add_option("--dir", dir, "scratch directory (on the disk to measure)");
  app.add_option("--seconds", cfg.seconds, "measured seconds per configuration");
  app.add_option("--size", cfg.size, "record size in bytes");
  app.add_option("--appenders", appenders, "concurrent appenders")->delimiter(',');
  app.add_option("--batch", batches, "records per append")->delimiter(',');
  app.add_flag("--no-drain", no_drain, "do not read and delete while appending");
  app.add_option("--position-ms", cfg.position_ms, "position persist interval");
  bool no_sync = false;
  app.add_flag("--no-sync", no_sync, "never fdatasync: the spool's CPU ceiling, not durable");
  app.add_flag("--keep", cfg.keep, "keep the spool directories (for sqsrelay-spool dump)");
  CLI11_PARSE(app, argc, argv);
  cfg.dir = dir;
  cfg.drain = !no_drain;
  cfg.sync = !no_sync;
  fs::create_directories(cfg.dir);
  probe_disk(cfg.dir, "start");
  std::printf(
      "| appenders | batch | records/s | appends/s | fdatasyncs/s | records/fdatasync | "
      "ack p50 µs | ack p99 µs | errors |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t b : batches) {
    for (size_t a : appenders) {
      const result_row r = run_one(cfg, a, b);
      std::printf("| %zu | %zu | %.0f | %.0f | %.0f | %.1f | %.0f | %.0f | %" PRIu64 " |\n",
                  r.appenders, r.batch, r.records_per_s, r.appends_per_s, r.fsyncs_per_s,
                  r.records_per_fsync, r.p50_us, r.p99_us, r.errors);
      std::fflush(stdout);
    }
  }
  probe_disk(cfg.dir, "end");
  return 0;
}
