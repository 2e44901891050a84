// Helpers shared by the spool tests (not part of the library).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "spool/spool.h"

namespace sqsrelay::spool::testing {

struct append_outcome {
  error_code ec;
  uint64_t first_seq = 0;
};

// Appends and waits for the completion.
inline append_outcome append_wait(spool& s, const std::vector<std::string>& records) {
  std::vector<std::string_view> views(records.begin(), records.end());
  std::promise<append_outcome> p;
  auto f = p.get_future();
  s.append(views, [&p](error_code ec, uint64_t seq) { p.set_value({ec, seq}); });
  return f.get();
}

struct owned_record {
  uint64_t seq = 0;
  std::string data;
  bool operator==(const owned_record&) const = default;
};

inline void PrintTo(const owned_record& r, std::ostream* os) {  // NOLINT: gtest hook name
  *os << "{seq " << r.seq << ", " << r.data.size() << " bytes}";
}

// Reads every record readable now, `batch` at a time.
inline std::vector<owned_record> read_all(spool& s, size_t batch = 7) {
  std::vector<owned_record> all;
  std::vector<record> out;
  for (;;) {
    auto n = s.read(batch, out);
    EXPECT_TRUE(n.has_value()) << n.error().message();
    if (!n || *n == 0) return all;
    for (const record& r : out) all.push_back({r.seq, std::string(r.data)});
  }
}

// Deterministic record contents for seq-independent ids.
inline std::string record_for(uint64_t id, size_t size) {
  std::string s(size, '\0');
  uint64_t x = id * 0x9e3779b97f4a7c15ull + 7;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

// Polls `pred` for up to `timeout`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace sqsrelay::spool::testing
