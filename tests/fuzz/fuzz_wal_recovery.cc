// Fuzzes WAL recovery on arbitrary segment contents: the input becomes one to three segment
// files (in an in-memory env); opening, replaying, appending and reopening must never crash,
// and the next open must replay exactly what the first did plus a record appended after it.
// Recovery that can crash is a crash loop: the server would never come back.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wal/codec.h"
#include "wal/env.h"
#include "wal/log.h"

namespace wal = sqsrelay::wal;

namespace {

constexpr std::string_view marker = "appended-after-recovery";

void write_file(wal::env& e, const std::string& name, std::string_view bytes) {
  auto f = e.create_file(std::string("/w/") + name);
  if (!f) std::abort();
  if (!(*f)->write_at(0, std::span<const char>(bytes.data(), bytes.size()))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // data[0]: bits 0-1 segment count - 1 (max 3); bit 2..4: whether to prepend a valid
  // header to each file (so the fuzzer reaches the record scanner cheaply).
  const int files = 1 + (data[0] & 3) % 3;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  auto env = wal::make_mem_env();
  if (!env->create_dir("/w")) std::abort();
  const size_t chunk = rest.size() / static_cast<size_t>(files);
  for (int i = 0; i < files; ++i) {
    const uint32_t number = static_cast<uint32_t>(i) + 1;
    std::string bytes;
    if (data[0] & (4 << i)) {
      auto h = wal::encode_segment_header(number);
      bytes.assign(h.data(), h.size());
    }
    bytes += i + 1 == files ? rest.substr(chunk * static_cast<size_t>(i))
                            : rest.substr(chunk * static_cast<size_t>(i), chunk);
    write_file(*env, wal::segment_file_name(number), bytes);
  }

  wal::options o;
  o.dir = "/w";
  o.segment_bytes = 1 << 16;
  using record = std::pair<uint8_t, std::string>;
  std::vector<record> first, second;
  std::vector<wal::location> first_at, second_at;  // for the failure report
  {
    auto l = wal::log::open(o, *env);
    if (!l) return 0;  // e.g. a newer format version: refusing is fine, crashing is not
    wal::log* lp = l->get();
    // Every record stays referenced, so no segment is deleted between the two opens.
    if (!lp->replay([&](uint8_t type, std::span<const char> p, wal::location loc) {
          first.emplace_back(type, std::string(p.data(), p.size()));
          first_at.push_back(loc);
          lp->add_ref(loc.segment);
        }))
      std::abort();
    if (!lp->append(0x7f, marker, 1)) std::abort();
  }  // the destructor syncs
  first.emplace_back(0x7f, std::string(marker));
  auto l = wal::log::open(o, *env);
  if (!l) std::abort();
  if (!(*l)->replay([&](uint8_t type, std::span<const char> p, wal::location loc) {
        second.emplace_back(type, std::string(p.data(), p.size()));
        second_at.push_back(loc);
      }))
    std::abort();
  // What one recovery kept (plus the record appended after it) the next must keep too.
  if (first != second) {
    std::fprintf(stderr, "recovery not stable: %zu records, then %zu\n", first.size(),
                 second.size());
    auto dump = [](const char* what, const std::vector<record>& rs,
                   const std::vector<wal::location>& at) {
      for (size_t i = 0; i < rs.size(); ++i)
        std::fprintf(stderr, "  %s: type %u, %zu bytes at segment %u offset %llu\n", what,
                     rs[i].first, rs[i].second.size(), i < at.size() ? at[i].segment : 0u,
                     i < at.size() ? static_cast<unsigned long long>(at[i].offset) : 0ull);
    };
    dump("first", first, first_at);
    dump("second", second, second_at);
    std::abort();
  }
  return 0;
}
