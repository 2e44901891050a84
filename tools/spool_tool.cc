// sqsrelay-spool: inspect a spool directory without opening it as a spool (read-only; it
// takes no lock and changes nothing, so it may run next to a live process, which can show
// a tail still being written as damage).
//
//   sqsrelay-spool dump [--records] DIR   position, groups per segment, damage, quarantine
//   sqsrelay-spool verify DIR             checks every checksum and the seq order; exits 1
//                                         naming the file and byte offsets of any damage
//
// Format: docs/spool_format.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "spool/codec.h"
#include "spool/missing_ranges.h"
#include "spool/spool_format.h"
#include "wal/codec.h"
#include "wal/scanner.h"
#include "wal/wal_format.h"

namespace fs = std::filesystem;
using namespace sqsrelay;

namespace {

struct report {
  bool print_groups = true;
  bool print_records = false;
  uint64_t damage = 0;  // problems found
  uint64_t groups = 0;
  uint64_t records = 0;
  uint64_t last_seq = 0;

  void problem(const std::string& what) {
    ++damage;
    std::printf("DAMAGE %s\n", what.c_str());
  }
};

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string preview(std::string_view data) {
  std::string out;
  for (char c : data.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isprint(u) && c != '"' && c != '\\') {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return data.size() > 60 ? out + "..." : out;
}

// The position, or nothing when no slot is valid (recovery then starts at 0 but does not
// know what was delivered).
std::optional<uint64_t> check_position(const fs::path& dir, report& rep) {
  const auto bytes = read_file(dir / spool::position_file_name);
  if (!bytes) {
    std::printf("position: no file (a new spool, or lost: everything is delivered again)\n");
    return std::nullopt;
  }
  std::optional<spool::position_value> best;
  for (size_t slot = 0; slot < spool::position_slots; ++slot) {
    const size_t at = slot * spool::position_slot_size;
    const auto v = at < bytes->size()
                       ? spool::decode_position_slot(std::string_view(*bytes).substr(at))
                       : std::nullopt;
    if (!v) {
      rep.problem("position slot " + std::to_string(slot) + " at offset " + std::to_string(at) +
                  ": bad checksum or short file");
      continue;
    }
    if (rep.print_groups) {
      std::printf("position slot %zu: generation %" PRIu64 ", position %" PRIu64 "\n", slot,
                  v->generation, v->position);
    }
    if (!best || v->generation > best->generation) best = v;
  }
  if (!best) return std::nullopt;
  std::printf("position: %" PRIu64 "\n", best->position);
  return best->position;
}

void print_group(const spool::group_view& g, uint64_t offset, report& rep) {
  if (!rep.print_groups) return;
  std::printf("  @%" PRIu64 " group seqs %" PRIu64 "..%" PRIu64 " (%" PRIu32
              " records, %zu bytes)\n",
              offset, g.first_seq, g.last_seq(), g.count, g.records.size());
  if (!rep.print_records) return;
  const char* p = g.records.data();
  for (uint32_t i = 0; i < g.count; ++i) {
    const uint32_t len = wal::get_u32(p);
    std::printf("    seq %" PRIu64 ": %" PRIu32 " bytes \"%s\"\n", g.first_seq + i, len,
                preview({p + spool::record_length_size, len}).c_str());
    p += spool::record_length_size + len;
  }
}

// Checks one segment: header, then every record's checksum (damaged stretches found as
// recovery finds them), group structure and seq order. Adds it to `live` unless recovery
// would ignore it.
void check_segment(const fs::path& path, uint32_t number, report& rep,
                   std::vector<spool::segment_summary>& live) {
  const std::string name = path.filename().string();
  const auto bytes = read_file(path);
  if (!bytes) return rep.problem(name + ": cannot read");
  if (bytes->size() < wal::segment_header_size) {
    return rep.problem(name + ": " + std::to_string(bytes->size()) +
                       " bytes, shorter than a segment header (offset 0)");
  }
  const auto header =
      std::span<const char, wal::segment_header_size>(bytes->data(), wal::segment_header_size);
  switch (wal::check_segment_header(header, number)) {
    case wal::header_check::ok:
      break;
    case wal::header_check::damaged:  // recovery keeps the records after it: check them too
      rep.problem(name + ": bad segment header at offset 0 (quarantined at open; the records "
                  "after it are kept)");
      break;
    case wal::header_check::foreign:
    case wal::header_check::newer_version:
      return rep.problem(name + ": bad segment header at offset 0 (another segment's or "
                         "format's; ignored)");
  }
  if (rep.print_groups) std::printf("segment %s: %zu bytes\n", name.c_str(), bytes->size());
  const uint64_t problems_before = rep.damage;
  spool::segment_summary summary{.number = number};
  const std::span<const char> body(bytes->data() + wal::segment_header_size,
                                   bytes->size() - wal::segment_header_size);
  uint64_t expected = wal::segment_header_size;
  const wal::scan_result r =
      wal::scan_records(body, wal::segment_header_size, [&](const wal::scanned_record& rec) {
        const uint64_t start = rec.offset - wal::record_header_size;
        if (start > expected) {
          rep.problem(name + ": bytes " + std::to_string(expected) + ".." + std::to_string(start) +
                      " (" + std::to_string(start - expected) + " bytes) fail their checksum");
        }
        expected = rec.offset + rec.payload.size();
        std::optional<spool::group_view> g;
        if (rec.type == spool::group_record_type) g = spool::parse_group(rec.payload);
        if (!g) {
          return rep.problem(name + ": record at offset " + std::to_string(start) +
                             " is not a well-formed group");
        }
        if (g->first_seq <= rep.last_seq) {
          rep.problem(name + ": group at offset " + std::to_string(start) + " starts at seq " +
                      std::to_string(g->first_seq) + ", not after " + std::to_string(rep.last_seq));
        }
        rep.last_seq = std::max(rep.last_seq, g->last_seq());
        if (summary.first_seq == 0) summary.first_seq = g->first_seq;
        summary.last_seq = g->last_seq();
        ++rep.groups;
        rep.records += g->count;
        print_group(*g, start, rep);
      });
  if (r.tail_bytes > 0) {
    rep.problem(name + ": bytes " + std::to_string(r.valid_end) + ".." +
                std::to_string(bytes->size()) + " (" + std::to_string(r.tail_bytes) +
                " bytes) at the end hold no intact record (a torn tail if this is the newest "
                "segment and the process crashed)");
  }
  summary.damaged = rep.damage > problems_before;
  live.push_back(summary);
}

void check_quarantine(const fs::path& dir, report& rep) {
  const auto bytes = read_file(dir / spool::quarantine_file_name);
  if (!bytes) return;
  std::string_view rest(*bytes);
  if (rest.substr(0, spool::quarantine_magic.size()) != spool::quarantine_magic) {
    return rep.problem(std::string(spool::quarantine_file_name) + ": bad magic at offset 0");
  }
  rest.remove_prefix(spool::quarantine_magic.size());
  uint64_t entries = 0;
  while (!rest.empty()) {
    size_t size = 0;
    const auto e = spool::decode_quarantine_entry(rest, &size);
    if (!e) {
      return rep.problem(std::string(spool::quarantine_file_name) + ": entry at offset " +
                         std::to_string(bytes->size() - rest.size()) + " is damaged or torn");
    }
    ++entries;
    if (rep.print_groups) {
      std::printf("quarantined: segment %" PRIu32 " offset %" PRIu64 ", %" PRIu64
                  " damaged bytes, %zu copied\n",
                  e->segment, e->offset, e->damaged_length, e->copied.size());
    }
    rest.remove_prefix(size);
  }
  std::printf("quarantine: %" PRIu64 " entries\n", entries);
}

int run(const fs::path& dir, report& rep) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::fprintf(stderr, "sqsrelay-spool: %s is not a directory\n", dir.c_str());
    return 2;
  }
  // A wrong directory must not pass as a clean, empty spool.
  if (!fs::is_directory(dir / spool::log_dir_name, ec) &&
      !fs::exists(dir / spool::position_file_name, ec)) {
    std::fprintf(stderr, "sqsrelay-spool: %s is not a spool (no %s/ directory, no %s file)\n",
                 dir.c_str(), std::string(spool::log_dir_name).c_str(),
                 std::string(spool::position_file_name).c_str());
    return 2;
  }
  const std::optional<uint64_t> position = check_position(dir, rep);
  std::vector<std::pair<uint32_t, fs::path>> segments;
  for (const auto& entry : fs::directory_iterator(dir / spool::log_dir_name, ec)) {
    if (auto n = wal::parse_segment_file_name(entry.path().filename().string())) {
      segments.emplace_back(*n, entry.path());
    }
  }
  std::sort(segments.begin(), segments.end());
  std::vector<spool::segment_summary> live;
  for (const auto& [n, path] : segments) check_segment(path, n, rep, live);
  for (const spool::missing_range& m :
       spool::find_missing_ranges(live, position.value_or(0), position.has_value())) {
    rep.problem(spool::describe(m));
  }
  check_quarantine(dir, rep);
  std::printf("%zu segments, %" PRIu64 " groups, %" PRIu64 " records, last seq %" PRIu64
              ", %" PRIu64 " problems\n",
              segments.size(), rep.groups, rep.records, rep.last_seq, rep.damage);
  return rep.damage == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sqsrelay-spool: dump or verify a spool directory (read-only)"};
  app.require_subcommand(1);
  std::string dir;
  bool records = false;
  CLI::App* dump = app.add_subcommand("dump", "print the position, groups, damage and quarantine");
  dump->add_flag("--records", records, "print every record (seq, length, a preview)");
  dump->add_option("DIR", dir, "spool directory")->required();
  CLI::App* verify = app.add_subcommand(
      "verify", "check every checksum and the seq order; exit 1 naming the damage");
  verify->add_option("DIR", dir, "spool directory")->required();
  CLI11_PARSE(app, argc, argv);
  report rep;
  rep.print_groups = dump->parsed();
  rep.print_records = records;
  (void)verify;
  return run(dir, rep);
}
