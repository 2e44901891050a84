// Helpers shared by the wal tests (not part of the library).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "wal/log.h"

namespace sqsrelay::wal::testing {

// A fresh directory under /tmp, removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = "/tmp/sqsrelay_wal_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct record {
  uint8_t type = 0;
  std::string payload;
  location loc;
  bool operator==(const record& o) const { return type == o.type && payload == o.payload; }
};

inline void PrintTo(const record& r, std::ostream* os) {  // NOLINT: gtest hook name
  *os << "{type " << int{r.type} << ", " << r.payload.size() << " bytes at " << r.loc.segment << ":"
      << r.loc.offset << "}";
}

// Replays `l` into a vector, as an owner that keeps every record alive (one reference
// each) unless `take_refs` is false; fails the test on error.
inline std::vector<record> replay_all(log& l, recovery_stats* stats = nullptr,
                                      bool take_refs = true) {
  std::vector<record> out;
  auto r = l.replay([&](uint8_t type, std::span<const char> payload, location loc) {
    out.push_back({type, std::string(payload.data(), payload.size()), loc});
    if (take_refs) l.add_ref(loc.segment);
  });
  EXPECT_TRUE(r.has_value()) << r.error().message();
  if (r && stats) *stats = *r;
  return out;
}

// Deterministic payload bytes for record `id`, `size` long.
inline std::string payload_for(uint64_t id, size_t size) {
  std::string s(size, '\0');
  uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace sqsrelay::wal::testing
