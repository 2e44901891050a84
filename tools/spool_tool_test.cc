// Runs the sqsrelay-spool binary on real spool directories: a clean one verifies, damage is
// reported with its file and offset and a non-zero exit.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "spool/spool.h"
#include "spool/spool_format.h"
#include "wal/codec.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {
namespace {

struct run_result {
  int status = -1;
  std::string out;
};

run_result run_tool(const std::string& args) {
  run_result r;
  const std::string cmd = std::string(SQSRELAY_SPOOL_TOOL) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class spool_tool : public ::testing::Test {
 protected:
  spool_tool() {
    std::string tmpl = "/tmp/sqsrelay_spool_tool_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp";
    dir_ = tmpl;
    options o;
    o.dir = dir_;
    auto s = spool::open(o, wal::default_posix_env());
    EXPECT_TRUE(s.has_value());
    for (int i = 0; i < 3; ++i) {
      const std::string rec = "record " + std::to_string(i);
      const std::string_view v = rec;
      std::promise<error_code> done;
      (*s)->append(std::span<const std::string_view>(&v, 1),
                   [&](error_code ec, uint64_t) { done.set_value(ec); });
      EXPECT_FALSE(done.get_future().get());
    }
  }
  ~spool_tool() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path segment() const { return dir_ / log_dir_name / wal::segment_file_name(1); }

  std::filesystem::path dir_;
};

TEST_F(spool_tool, a_directory_that_is_no_spool_is_an_error_not_a_clean_spool) {
  const auto other = dir_ / "not-a-spool";
  std::filesystem::create_directories(other);
  std::FILE* f = std::fopen((other / "notes.txt").c_str(), "w");
  ASSERT_TRUE(f);
  std::fputs("hello\n", f);
  std::fclose(f);
  const auto v = run_tool("verify " + other.string());
  EXPECT_EQ(v.status, 2) << v.out;
  EXPECT_NE(v.out.find("is not a spool"), std::string::npos) << v.out;
}

TEST_F(spool_tool, clean_spool_verifies_and_dumps_its_records) {
  auto v = run_tool("verify " + dir_.string());
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find("3 records, last seq 3, 0 problems"), std::string::npos) << v.out;
  auto d = run_tool("dump --records " + dir_.string());
  EXPECT_EQ(d.status, 0) << d.out;
  EXPECT_NE(d.out.find("seq 2: 8 bytes \"record 1\""), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("position: 0"), std::string::npos) << d.out;
}

TEST_F(spool_tool, damage_is_reported_with_its_offset) {
  // Each group: 9 (wal header) + 12 (group header) + 4 + 8 = 33 bytes, from offset 20.
  const uint64_t second = wal::segment_header_size + 33;
  {
    std::FILE* f = std::fopen(segment().c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(second + 30), SEEK_SET);
    std::fputc('X', f);
    std::fclose(f);
  }
  auto v = run_tool("verify " + dir_.string());
  EXPECT_EQ(v.status, 1) << v.out;
  const std::string where = "bytes " + std::to_string(second) + ".." + std::to_string(second + 33);
  EXPECT_NE(v.out.find("DAMAGE wal-00000001.log: " + where), std::string::npos) << v.out;
}

TEST_F(spool_tool, damaged_header_is_reported_and_the_records_after_it_checked) {
  {
    std::FILE* f = std::fopen(segment().c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fputs("XXXX", f);
    std::fclose(f);
  }
  auto v = run_tool("verify " + dir_.string());
  EXPECT_EQ(v.status, 1) << v.out;
  EXPECT_NE(v.out.find("bad segment header at offset 0"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("3 records, last seq 3, 1 problems"), std::string::npos) << v.out;
}

// Records 1..40 of 300 bytes in segments of 4 KiB (four or more), the first `delivered`
// delivered (and their segments deleted).
void fill_small_segments(const std::filesystem::path& dir, uint64_t delivered) {
  options o;
  o.dir = dir;
  o.segment_bytes = 4096;
  auto s = spool::open(o, wal::default_posix_env());
  ASSERT_TRUE(s.has_value());
  const std::string rec(300, 'r');
  const std::string_view v = rec;
  for (int i = 0; i < 40; ++i) {
    std::promise<error_code> done;
    (*s)->append(std::span<const std::string_view>(&v, 1),
                 [&](error_code ec, uint64_t) { done.set_value(ec); });
    ASSERT_FALSE(done.get_future().get());
  }
  if (delivered == 0) return;
  std::vector<record> out;
  for (uint64_t read = 0; read < delivered;) {
    auto n = (*s)->read(40, out);
    ASSERT_TRUE(n && *n > 0);
    read += *n;
  }
  ASSERT_TRUE((*s)->mark_delivered(1, delivered));
  ASSERT_TRUE((*s)->persist_position());
  for (int i = 0;
       i < 1000 && std::filesystem::exists(dir / log_dir_name / wal::segment_file_name(1)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST_F(spool_tool, a_missing_middle_segment_is_reported_with_its_seqs) {
  const auto d = dir_ / "small";
  fill_small_segments(d, 0);
  ASSERT_TRUE(std::filesystem::remove(d / log_dir_name / wal::segment_file_name(2)));
  auto v = run_tool("verify " + d.string());
  EXPECT_EQ(v.status, 1) << v.out;
  EXPECT_NE(v.out.find("DAMAGE wal-00000002.log missing or empty: seqs "), std::string::npos)
      << v.out;
}

TEST_F(spool_tool, an_emptied_middle_segment_is_reported_with_its_seqs) {
  const auto d = dir_ / "small";
  fill_small_segments(d, 0);
  std::filesystem::resize_file(d / log_dir_name / wal::segment_file_name(2), 0);
  auto v = run_tool("verify " + d.string());
  EXPECT_EQ(v.status, 1) << v.out;
  EXPECT_NE(v.out.find("DAMAGE wal-00000002.log missing or empty: seqs "), std::string::npos)
      << v.out;
}

TEST_F(spool_tool, segments_deleted_after_delivery_are_no_problem) {
  const auto d = dir_ / "small";
  fill_small_segments(d, 30);
  ASSERT_FALSE(std::filesystem::exists(d / log_dir_name / wal::segment_file_name(1)));
  auto v = run_tool("verify " + d.string());
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find(" 0 problems"), std::string::npos) << v.out;
}

TEST_F(spool_tool, bad_arguments_fail) {
  EXPECT_NE(run_tool("verify /nonexistent/dir").status, 0);
  EXPECT_NE(run_tool("frobnicate " + dir_.string()).status, 0);
}

}  // namespace
}  // namespace sqsrelay::spool
