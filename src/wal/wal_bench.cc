// Group-commit throughput and durable-ack latency of the WAL on the real file system.
//
//   wal_bench [--threads N] [--inflight K] [--seconds S] [--size BYTES] [--segment-mb M]
//             [--dir PATH] [--no-sync] [--mem]
//
// N threads each keep up to K appends in flight, each waiting for durability (like request
// handlers that answer after the fsync). Every record holds a reference that its durability
// callback releases, so old segments are deleted as in the message store and disk use
// stays flat. Reports appends/s, MB/s, syncs/s and the append-to-durable latency.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "wal/log.h"

namespace {

using namespace sqsrelay;
using clock_type = std::chrono::steady_clock;

struct config {
  int threads = 8;
  int inflight = 16;
  double seconds = 5;
  size_t size = 2500;
  uint64_t segment_mb = 64;
  std::string dir;
  bool sync = true;
  bool mem = false;
};

bool parse(int argc, char** argv, config& c) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : "0"; };
    if (a == "--threads")
      c.threads = std::atoi(next());
    else if (a == "--inflight")
      c.inflight = std::atoi(next());
    else if (a == "--seconds")
      c.seconds = std::atof(next());
    else if (a == "--size")
      c.size = static_cast<size_t>(std::atoll(next()));
    else if (a == "--segment-mb")
      c.segment_mb = static_cast<uint64_t>(std::atoll(next()));
    else if (a == "--dir")
      c.dir = next();
    else if (a == "--no-sync")
      c.sync = false;
    else if (a == "--mem")
      c.mem = true;
    else
      return false;
  }
  return c.threads > 0 && c.inflight > 0 && c.seconds > 0 && c.segment_mb > 0;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Append-to-durable latencies of one writer. Callbacks run on the sync thread, or inline on
// the writer when the record is already durable, hence the mutex.
struct latency_log {
  std::mutex mu;
  std::vector<uint32_t> us;
};

// Appends until the deadline with at most c.inflight appends awaiting durability.
void writer(wal::log& l, const config& c, clock_type::time_point deadline, latency_log& latencies,
            std::atomic<uint64_t>& errors) {
  std::counting_semaphore<> window(c.inflight);
  const std::string payload(c.size, 'p');
  while (clock_type::now() < deadline) {
    window.acquire();
    const auto start = clock_type::now();
    auto a = l.append(1, payload, 1);
    if (!a) {
      ++errors;
      window.release();
      continue;
    }
    l.when_durable(a->lsn, [&, start, seg = a->loc.segment](sqsrelay::error_code ec) {
      if (ec) ++errors;
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start);
      {
        std::lock_guard lock(latencies.mu);
        latencies.us.push_back(static_cast<uint32_t>(us.count()));
      }
      l.release(seg);
      window.release();
    });
  }
  for (int i = 0; i < c.inflight; ++i) window.acquire();  // drain
}

uint32_t percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int run(const config& c) {
  std::unique_ptr<wal::env> mem = c.mem ? wal::make_mem_env() : nullptr;
  wal::env& e = c.mem ? *mem : wal::default_posix_env();
  wal::options opts;
  opts.dir = c.dir;
  opts.segment_bytes = c.segment_mb << 20;
  opts.sync = c.sync;
  auto opened = wal::log::open(opts, e);
  if (!opened) {
    std::fprintf(stderr, "open %s: %s\n", c.dir.c_str(), opened.error().message().c_str());
    return 1;
  }
  auto& l = **opened;
  if (!l.replay([](uint8_t, std::span<const char>, wal::location) {})) return 1;

  std::vector<latency_log> latencies(static_cast<size_t>(c.threads));
  for (auto& lat : latencies) lat.us.reserve(1 << 20);
  std::atomic<uint64_t> errors{0};
  const double cpu0 = cpu_seconds();
  const auto t0 = clock_type::now();
  const auto deadline = t0 + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(c.seconds));
  std::vector<std::thread> ts;
  ts.reserve(latencies.size());
  for (int i = 0; i < c.threads; ++i) {
    ts.emplace_back([&, i] { writer(l, c, deadline, latencies[static_cast<size_t>(i)], errors); });
  }
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const auto st = l.get_stats();
  opened->reset();
  std::vector<uint32_t> latencies_us;
  for (auto& lat : latencies) latencies_us.insert(latencies_us.end(), lat.us.begin(), lat.us.end());

  const double n = static_cast<double>(st.appends);
  std::printf("wal_bench: %d threads x %d in flight, %zu B records, %s, %s, %.1f s\n", c.threads,
              c.inflight, c.size, c.mem ? "mem env" : c.dir.c_str(),
              !c.sync ? "no sync"
              : c.mem ? "sync (a no-op in memory)"
                      : "fdatasync",
              secs);
  std::printf("  appends/s      %10.0f\n", n / secs);
  std::printf("  MB/s           %10.1f\n", static_cast<double>(st.bytes) / secs / 1e6);
  std::printf("  syncs/s        %10.0f  (%.1f appends per sync)\n",
              static_cast<double>(st.syncs) / secs,
              n / static_cast<double>(std::max<uint64_t>(st.syncs, 1)));
  std::printf("  durable p50    %10u us\n", percentile(latencies_us, 0.50));
  std::printf("  durable p99    %10u us\n", percentile(latencies_us, 0.99));
  std::printf("  durable p99.9  %10u us\n", percentile(latencies_us, 0.999));
  std::printf("  CPU            %10.2f us/append\n", cpu / n * 1e6);
  std::printf("  segments       %10llu created, %llu deleted; errors %llu\n",
              static_cast<unsigned long long>(st.segments_created),
              static_cast<unsigned long long>(st.segments_deleted),
              static_cast<unsigned long long>(errors.load()));
  return errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  if (!parse(argc, argv, c)) {
    std::fprintf(stderr,
                 "usage: wal_bench [--threads N] [--inflight K] [--seconds S] [--size BYTES]\n"
                 "                 [--segment-mb M] [--dir PATH] [--no-sync] [--mem]\n");
    return 2;
  }
  bool temp = false;
  if (c.dir.empty() && !c.mem) {
    char tmpl[] = "/tmp/wal_bench.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return 1;
    c.dir = tmpl;
    temp = true;
  }
  int rc = run(c);
  if (temp) std::filesystem::remove_all(c.dir);
  return rc;
}
