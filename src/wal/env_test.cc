#include "wal/env.h"

#include <gtest/gtest.h>

#include <thread>

#include "wal/errc.h"
#include "wal/fault_env.h"
#include "wal/test_util.h"

namespace sqsrelay::wal {
namespace {

using testing::temp_dir;

std::string contents(env& e, const std::filesystem::path& p) {
  auto f = e.open_file(p);
  if (!f) return "<missing>";
  auto n = (*f)->size();
  std::string s(n ? *n : 0, '\0');
  if (!(*f)->read_at(0, s)) return "<unreadable>";
  return s;
}

std::vector<std::string> sorted_names(env& e, const std::filesystem::path& dir) {
  auto names = e.list_dir(dir);
  EXPECT_TRUE(names.has_value());
  std::vector<std::string> v = names ? *names : std::vector<std::string>{};
  std::sort(v.begin(), v.end());
  return v;
}

// The behaviour every env shares, run against posix and mem.
void check_basic_file_operations(env& e, const std::filesystem::path& dir) {
  ASSERT_TRUE(e.create_dir(dir / "sub"));
  auto f = e.create_file(dir / "sub" / "a");
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(e.create_file(dir / "sub" / "a"));  // exclusive create
  ASSERT_TRUE((*f)->write_at(0, std::string_view("hello world")));
  ASSERT_TRUE((*f)->write_at(6, std::string_view("WORLD!")));
  EXPECT_EQ(contents(e, dir / "sub" / "a"), "hello WORLD!");
  std::string out(5, '\0');
  ASSERT_TRUE((*f)->read_at(6, out));
  EXPECT_EQ(out, "WORLD");
  auto short_read = (*f)->read_at(10, out);
  ASSERT_FALSE(short_read);
  EXPECT_EQ(short_read.error(), errc::short_read);
  ASSERT_TRUE((*f)->truncate(5));
  EXPECT_EQ(*(*f)->size(), 5u);
  ASSERT_TRUE((*f)->sync());
  ASSERT_TRUE(e.sync_dir(dir / "sub"));
  EXPECT_EQ(sorted_names(e, dir / "sub"), std::vector<std::string>{"a"});

  // Like an unlinked POSIX file, an open handle keeps working after remove.
  ASSERT_TRUE(e.remove_file(dir / "sub" / "a"));
  EXPECT_TRUE(sorted_names(e, dir / "sub").empty());
  EXPECT_FALSE(e.open_file(dir / "sub" / "a"));
  ASSERT_TRUE((*f)->read_at(0, out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(e.remove_file(dir / "sub" / "a"));
}

// Holes left by a write past the end, or by growing truncate, read as zeros; big writes
// and reads cross the mem env's 1 MiB chunks.
void check_gaps_read_as_zeros(env& e, const std::filesystem::path& dir) {
  ASSERT_TRUE(e.create_dir(dir));
  auto f = *e.create_file(dir / "sparse");
  const std::string big((3 << 20) + 5, 'x');
  ASSERT_TRUE(f->write_at(10, big));
  ASSERT_TRUE(f->truncate(20));                                    // shrink into the first chunk
  ASSERT_TRUE(f->write_at((2 << 20) + 3, std::string_view("y")));  // hole over old bytes
  ASSERT_TRUE(f->truncate((4 << 20) + 1));                         // grow
  std::string expected((4 << 20) + 1, '\0');
  std::fill(expected.begin() + 10, expected.begin() + 20, 'x');
  expected[(2 << 20) + 3] = 'y';
  std::string out(expected.size(), '?');
  ASSERT_TRUE(f->read_at(0, out));
  EXPECT_TRUE(out == expected);
  EXPECT_EQ(*f->size(), expected.size());
}

void check_lock_is_exclusive(env& e, const std::filesystem::path& dir) {
  ASSERT_TRUE(e.create_dir(dir));
  auto first = e.lock_file(dir / "LOCK");
  ASSERT_TRUE(first.has_value());
  auto second = e.lock_file(dir / "LOCK");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::locked);
  first->reset();
  EXPECT_TRUE(e.lock_file(dir / "LOCK"));
}

TEST(posix_env, reads_writes_lists_and_removes_real_files) {
  temp_dir dir;
  check_basic_file_operations(default_posix_env(), dir.path());
}

TEST(posix_env, gaps_read_as_zeros) {
  temp_dir dir;
  check_gaps_read_as_zeros(default_posix_env(), dir.path());
}

TEST(posix_env, directory_lock_is_exclusive) {
  temp_dir dir;
  check_lock_is_exclusive(default_posix_env(), dir.path() / "x");
}

TEST(posix_env, opening_a_directory_as_a_file_fails_with_is_a_directory) {
  temp_dir dir;
  auto f = default_posix_env().open_file(dir.path());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), boost::system::errc::is_a_directory);
}

TEST(mem_env, reads_writes_lists_and_removes_files) {
  auto e = make_mem_env();
  check_basic_file_operations(*e, "/mem");
}

TEST(mem_env, gaps_read_as_zeros) {
  auto e = make_mem_env();
  check_gaps_read_as_zeros(*e, "/mem");
}

TEST(mem_env, directory_lock_is_exclusive) {
  auto e = make_mem_env();
  check_lock_is_exclusive(*e, "/mem");
}

TEST(mem_env, list_dir_shows_only_direct_children) {
  auto e = make_mem_env();
  ASSERT_TRUE(e->create_file("/d/a"));
  ASSERT_TRUE(e->create_file("/d/sub/b"));
  ASSERT_TRUE(e->create_file("/other/c"));
  EXPECT_EQ(sorted_names(*e, "/d/"), std::vector<std::string>{"a"});
}

TEST(fault_env, crash_keeps_synced_bytes_and_drops_the_rest) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  ASSERT_TRUE(f->write_at(0, std::string_view("durable")));
  ASSERT_TRUE(f->sync());
  ASSERT_TRUE(e.sync_dir("/d"));
  ASSERT_TRUE(f->write_at(7, std::string_view(" and lost")));
  e.crash();
  EXPECT_FALSE(e.open_file("/d/a"));  // down until restart
  e.restart();
  EXPECT_EQ(contents(e, "/d/a"), "durable");
  EXPECT_EQ(f->write_at(0, std::string_view("x")).error(), errc::crashed);  // stale handle
}

TEST(fault_env, crash_removes_files_whose_creation_was_not_dir_synced) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  ASSERT_TRUE(f->write_at(0, std::string_view("synced data, unsynced name")));
  ASSERT_TRUE(f->sync());
  e.crash();
  e.restart();
  EXPECT_TRUE(sorted_names(e, "/d").empty());
}

TEST(fault_env, crash_brings_back_a_removal_that_was_not_dir_synced) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  ASSERT_TRUE(f->write_at(0, std::string_view("kept")));
  ASSERT_TRUE(f->sync());
  ASSERT_TRUE(e.sync_dir("/d"));
  ASSERT_TRUE(e.remove_file("/d/a"));
  e.crash();
  e.restart();
  EXPECT_EQ(contents(e, "/d/a"), "kept");

  ASSERT_TRUE(e.remove_file("/d/a"));
  ASSERT_TRUE(e.sync_dir("/d"));
  e.crash();
  e.restart();
  EXPECT_TRUE(sorted_names(e, "/d").empty());
}

TEST(fault_env, injected_errors_hit_the_chosen_call) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  const auto enospc = make_error_code(boost::system::errc::no_space_on_device);
  const auto eio = make_error_code(boost::system::errc::io_error);
  e.inject(fault_env::op::write, 2, enospc, 3);
  e.inject(fault_env::op::sync, 1, eio);
  ASSERT_TRUE(f->write_at(0, std::string_view("first")));
  auto w = f->write_at(5, std::string_view("second"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), enospc);
  EXPECT_EQ(contents(e, "/d/a"), "firstsec");  // short write: 3 bytes then the error
  EXPECT_EQ(f->sync().error(), eio);
  EXPECT_TRUE(f->sync());
  EXPECT_EQ(e.calls(fault_env::op::write), 2u);
  EXPECT_EQ(e.calls(fault_env::op::sync), 2u);
}

TEST(fault_env, a_failed_sync_makes_nothing_durable) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  ASSERT_TRUE(e.sync_dir("/d"));
  e.inject(fault_env::op::sync, 1, make_error_code(boost::system::errc::io_error));
  ASSERT_TRUE(f->write_at(0, std::string_view("data")));
  EXPECT_FALSE(f->sync());
  e.crash();
  e.restart();
  EXPECT_EQ(contents(e, "/d/a"), "");
}

TEST(fault_env, held_syncs_wait_for_release) {
  fault_env e;
  auto f = *e.create_file("/d/a");
  e.hold_syncs();
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_TRUE(f->sync());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(done);
  e.release_syncs();
  t.join();
  EXPECT_TRUE(done);
}

TEST(fault_env, crash_after_k_mutating_calls) {
  fault_env e;
  e.crash_after(2);
  auto f = *e.create_file("/d/a");                     // 1
  ASSERT_TRUE(f->write_at(0, std::string_view("x")));  // 2
  EXPECT_EQ(f->sync().error(), errc::crashed);         // 3: crashes instead
  EXPECT_TRUE(e.is_down());
}

}  // namespace
}  // namespace sqsrelay::wal
