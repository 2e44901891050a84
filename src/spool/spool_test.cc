#include "spool/spool.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include "spool/codec.h"
#include "spool/spool_format.h"
#include "spool/test_util.h"
#include "wal/codec.h"
#include "wal/fault_env.h"
#include "wal/wal_format.h"

namespace sqsrelay::spool {
namespace {

using namespace std::chrono_literals;
using testing::append_wait;
using testing::eventually;
using testing::owned_record;
using testing::read_all;
using testing::record_for;

// Bytes a group of these records takes in a segment (wal header, group header, lengths).
uint64_t group_bytes(const std::vector<std::string>& records) {
  uint64_t n = wal::record_header_size + group_header_size;
  for (const std::string& r : records) n += record_length_size + r.size();
  return n;
}

class spool_test : public ::testing::Test {
 protected:
  spool_test() {
    opts_.dir = "/spool";
    opts_.segment_bytes = 4096;
    opts_.position_interval = 1h;  // positions persist when the test says so (or at close)
  }

  std::unique_ptr<spool> open() {
    auto s = spool::open(opts_, env_);
    EXPECT_TRUE(s.has_value()) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }

  std::filesystem::path segment_path(uint32_t n) const {
    return opts_.dir / log_dir_name / wal::segment_file_name(n);
  }

  // Overwrites bytes of a file durably (the spool must be closed).
  void poke(const std::filesystem::path& p, uint64_t offset, std::string_view bytes) {
    auto f = env_.open_file(p);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE((*f)->write_at(offset, bytes));
    ASSERT_TRUE((*f)->sync());
  }

  std::string contents(const std::filesystem::path& p) {
    auto f = env_.open_file(p);
    if (!f) return {};
    std::string s((*f)->size().value(), '\0');
    EXPECT_TRUE((*f)->read_at(0, s));
    return s;
  }

  wal::fault_env env_;
  options opts_;
};

TEST_F(spool_test, records_come_back_in_order_with_consecutive_seqs) {
  auto s = open();
  auto a = append_wait(*s, {"one", "two"});
  EXPECT_FALSE(a.ec);
  EXPECT_EQ(a.first_seq, 1u);
  auto b = append_wait(*s, {"three", ""});
  EXPECT_EQ(b.first_seq, 3u);
  EXPECT_EQ(read_all(*s),
            (std::vector<owned_record>{{1, "one"}, {2, "two"}, {3, "three"}, {4, ""}}));
  const stats st = s->get_stats();
  EXPECT_EQ(st.appended_records, 4u);
  EXPECT_EQ(st.synced_records, 4u);
  EXPECT_EQ(st.read_records, 4u);
  EXPECT_EQ(st.last_seq, 4u);
  EXPECT_EQ(st.durable_seq, 4u);
}

TEST_F(spool_test, read_respects_max_and_resumes_inside_a_group) {
  auto s = open();
  std::vector<std::string> recs;
  for (int i = 0; i < 10; ++i) recs.push_back(record_for(i, 50));
  ASSERT_FALSE(append_wait(*s, recs).ec);
  std::vector<record> out;
  std::vector<owned_record> got;
  for (;;) {
    auto n = s->read(3, out);
    ASSERT_TRUE(n.has_value());
    EXPECT_LE(*n, 3u);
    if (*n == 0) break;
    for (const record& r : out) got.push_back({r.seq, std::string(r.data)});
  }
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(got[i], (owned_record{i + 1, recs[i]}));
}

TEST_F(spool_test, records_larger_than_a_chunk_or_a_segment_come_back_whole) {
  opts_.read_chunk_bytes = 4096;
  auto s = open();
  const std::vector<std::string> recs{record_for(1, 100), record_for(2, 50000), record_for(3, 10)};
  for (const std::string& r : recs) ASSERT_FALSE(append_wait(*s, {r}).ec);
  ASSERT_FALSE(append_wait(*s, {record_for(4, 9000), record_for(5, 9000)}).ec);
  const auto got = read_all(*s, 2);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[1], (owned_record{2, recs[1]}));
  EXPECT_EQ(got[4], (owned_record{5, record_for(5, 9000)}));
  s.reset();
  s = open();  // and after recovery, from the persisted position (nothing marked)
  EXPECT_EQ(read_all(*s).size(), 5u);
}

TEST_F(spool_test, acknowledgement_and_reading_wait_for_the_sync) {
  auto s = open();
  env_.hold_syncs();
  std::atomic<bool> done{false};
  const std::vector<std::string_view> recs{"x"};
  s->append(recs, [&](error_code ec, uint64_t) {
    EXPECT_FALSE(ec);
    done = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(done.load());
  std::vector<record> out;
  EXPECT_EQ(s->read(10, out).value(), 0u);  // written but not durable: not handed out
  env_.release_syncs();
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "x"}}));
}

TEST_F(spool_test, concurrent_appends_share_fdatasyncs) {
  // One segment holds them all: each batch syncs every segment it touched, so with the
  // fixture's 4 KiB segments the count would depend on how the writes fell across rolls.
  opts_.segment_bytes = 1 << 20;
  auto s = open();
  env_.hold_syncs();
  const uint64_t syncs_before = env_.calls(wal::fault_env::op::sync);
  constexpr int threads = 4, per_thread = 50;
  std::mutex mu;
  std::map<uint64_t, std::string> by_seq;
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto rec = std::make_shared<std::string>(record_for(t * 1000 + i, 20 + i));
        const std::string_view v = *rec;
        s->append(std::span<const std::string_view>(&v, 1), [&, rec](error_code ec, uint64_t seq) {
          EXPECT_FALSE(ec);
          std::lock_guard lock(mu);
          by_seq[seq] = *rec;
          ++done;
        });
      }
    });
  }
  for (auto& t : ts) t.join();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(done.load(), 0);
  env_.release_syncs();
  ASSERT_TRUE(eventually([&] { return done.load() == threads * per_thread; }));
  // The held sync plus one for everything appended meanwhile (a third, or on a loaded
  // machine a fourth, if the writer was still writing when the second started): far fewer
  // than the 200 appends.
  EXPECT_LE(env_.calls(wal::fault_env::op::sync) - syncs_before, 4u);
  const auto got = read_all(*s, 64);
  ASSERT_EQ(got.size(), by_seq.size());
  size_t i = 0;
  for (const auto& [seq, data] : by_seq) EXPECT_EQ(got[i++], (owned_record{seq, data}));
  EXPECT_LT(s->get_stats().groups_written, uint64_t{threads * per_thread});
}

TEST_F(spool_test, out_of_order_marks_move_the_position_over_a_complete_prefix_only) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}).ec);
  std::vector<record> out;
  ASSERT_EQ(s->read(6, out).value(), 6u);
  EXPECT_EQ(s->mark_delivered(7), errc::not_read);
  ASSERT_TRUE(s->mark_delivered(3));
  ASSERT_TRUE(s->mark_delivered(1));
  ASSERT_TRUE(s->mark_delivered(5));
  EXPECT_EQ(s->get_stats().delivered_seq, 1u);
  ASSERT_TRUE(s->mark_delivered(2));
  EXPECT_EQ(s->get_stats().delivered_seq, 3u);
  ASSERT_TRUE(s->mark_delivered(4));
  ASSERT_TRUE(s->mark_delivered(4));  // repeats are harmless
  EXPECT_EQ(s->get_stats().delivered_seq, 5u);
  ASSERT_TRUE(s->persist_position());
  EXPECT_EQ(s->get_stats().persisted_seq, 5u);
  s.reset();
  s = open();
  EXPECT_EQ(s->recovery().position, 5u);
  EXPECT_EQ(s->recovery().undelivered, 5u);
  const auto got = read_all(*s);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front(), (owned_record{6, "6"}));
  EXPECT_EQ(got.back(), (owned_record{10, "10"}));
}

TEST_F(spool_test, ranges_of_marks_merge) {
  auto s = open();
  std::vector<std::string> recs(100, "r");
  ASSERT_FALSE(append_wait(*s, recs).ec);
  ASSERT_EQ(read_all(*s).size(), 100u);
  ASSERT_TRUE(s->mark_delivered(50, 60));
  ASSERT_TRUE(s->mark_delivered(20, 30));
  ASSERT_TRUE(s->mark_delivered(31, 49));
  ASSERT_TRUE(s->mark_delivered(62, 100));
  EXPECT_EQ(s->get_stats().delivered_seq, 0u);
  ASSERT_TRUE(s->mark_delivered(1, 19));
  EXPECT_EQ(s->get_stats().delivered_seq, 60u);
  ASSERT_TRUE(s->mark_delivered(61));
  EXPECT_EQ(s->get_stats().delivered_seq, 100u);
}

TEST_F(spool_test, unpersisted_deliveries_come_again_after_a_crash) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"a", "b", "c", "d", "e", "f"}).ec);
  ASSERT_EQ(read_all(*s).size(), 6u);
  ASSERT_TRUE(s->mark_delivered(1, 2));
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(s->mark_delivered(3, 4));  // delivered, position not persisted
  env_.crash();
  s.reset();
  env_.restart();
  s = open();
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}}));
}

TEST_F(spool_test, the_position_persists_by_itself_while_it_moves) {
  opts_.position_interval = 5ms;
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"a", "b"}).ec);
  ASSERT_EQ(read_all(*s).size(), 2u);
  ASSERT_TRUE(s->mark_delivered(1, 2));
  ASSERT_TRUE(eventually([&] { return s->get_stats().persisted_seq == 2; }));
  const uint64_t writes = s->get_stats().position_writes;
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(s->get_stats().position_writes, writes);  // nothing moved: nothing written
}

TEST_F(spool_test, delivered_segments_are_deleted_once_the_position_is_durable) {
  auto s = open();
  for (int i = 0; i < 60; ++i) ASSERT_FALSE(append_wait(*s, {record_for(i, 300)}).ec);
  const stats before = s->get_stats();
  EXPECT_GE(before.segments, 4u);
  ASSERT_EQ(read_all(*s).size(), 60u);
  ASSERT_TRUE(s->mark_delivered(1, 60));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s->get_stats().segments_deleted, 0u);  // the position is not durable yet
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(eventually([&] { return s->get_stats().segments == 1; }));
  const stats after = s->get_stats();
  EXPECT_EQ(after.segments_deleted, before.segments - 1);
  EXPECT_LT(after.bytes_on_disk, 4096u);
  auto names = env_.list_dir(opts_.dir / log_dir_name);
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(std::count_if(names->begin(), names->end(),
                          [](const std::string& n) { return wal::parse_segment_file_name(n); }),
            1);  // the active segment
  // Seqs continue after a restart even though no record is left to tell.
  env_.crash();
  s.reset();
  env_.restart();
  s = open();
  EXPECT_TRUE(read_all(*s).empty());
  EXPECT_EQ(append_wait(*s, {"next"}).first_seq, 61u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{61, "next"}}));
}

TEST_F(spool_test, full_budget_fails_fast_and_space_returns_after_delivery) {
  opts_.budget_bytes = 64 << 10;  // segments of 16 KiB
  auto s = open();
  uint64_t accepted = 0;
  error_code ec;
  while (!ec) {
    ec = append_wait(*s, {record_for(accepted, 1000)}).ec;
    if (!ec) ++accepted;
    ASSERT_LT(accepted, 100u);
  }
  EXPECT_EQ(ec, errc::spool_full);
  EXPECT_GE(accepted, 50u);
  EXPECT_LE(s->get_stats().bytes_on_disk, opts_.budget_bytes);
  EXPECT_EQ(s->get_stats().rejected_full, 1u);
  ASSERT_EQ(read_all(*s).size(), accepted);
  ASSERT_TRUE(s->mark_delivered(1, accepted));
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(eventually([&] { return s->get_stats().bytes_on_disk < 20 << 10; }));
  EXPECT_FALSE(append_wait(*s, {record_for(0, 1000)}).ec);
}

TEST_F(spool_test, oversized_and_empty_appends) {
  opts_.max_append_bytes = 1000;
  auto s = open();
  auto big = append_wait(*s, {std::string(997, 'x')});
  EXPECT_EQ(big.ec, errc::record_too_large);
  EXPECT_FALSE(append_wait(*s, {std::string(996, 'x')}).ec);
  auto none = append_wait(*s, {});
  EXPECT_FALSE(none.ec);
  EXPECT_EQ(none.first_seq, 0u);
  EXPECT_EQ(read_all(*s).size(), 1u);
}

TEST_F(spool_test, on_readable_fires_when_records_arrive_after_an_empty_read) {
  auto s = open();
  std::atomic<int> calls{0};
  s->on_readable([&] { ++calls; });
  std::vector<record> out;
  EXPECT_EQ(s->read(10, out).value(), 0u);
  ASSERT_FALSE(append_wait(*s, {"a"}).ec);
  EXPECT_EQ(calls.load(), 1);  // before the acknowledgement
  ASSERT_FALSE(append_wait(*s, {"b"}).ec);
  EXPECT_EQ(calls.load(), 1);  // the reader has not come back yet
  EXPECT_EQ(s->read(10, out).value(), 2u);
  EXPECT_EQ(s->read(10, out).value(), 0u);
  EXPECT_FALSE(s->wait_readable(1ms));
  ASSERT_FALSE(append_wait(*s, {"c"}).ec);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_TRUE(s->wait_readable(1ms));
}

TEST_F(spool_test, torn_tail_is_cut_and_appends_continue) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"keep"}).ec);
  s.reset();
  const std::string seg = contents(segment_path(1));
  poke(segment_path(1), seg.size(), std::string("\x11\x22\x33\x44\x30\x00\x00\x00\x01xx", 11));
  s = open();
  EXPECT_EQ(s->recovery().truncated_bytes, 11u);
  EXPECT_EQ(s->recovery().corrupt_ranges, 0u);
  EXPECT_EQ(append_wait(*s, {"more"}).first_seq, 2u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "keep"}, {2, "more"}}));
}

TEST_F(spool_test, corrupt_group_is_quarantined_counted_and_stepped_over) {
  auto s = open();
  const std::vector<std::string> g1{"first"}, g2{"second", "third"}, g3{"fourth"};
  ASSERT_FALSE(append_wait(*s, g1).ec);
  ASSERT_FALSE(append_wait(*s, g2).ec);
  ASSERT_FALSE(append_wait(*s, g3).ec);
  s.reset();
  const uint64_t g2_at = wal::segment_header_size + group_bytes(g1);
  poke(segment_path(1), g2_at + 30, "X");  // inside "second"
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_bytes, group_bytes(g2));
  EXPECT_EQ(s->recovery().quarantined_bytes, group_bytes(g2));
  const auto got = read_all(*s);
  EXPECT_EQ(got, (std::vector<owned_record>{{1, "first"}, {4, "fourth"}}));
  // The lost seqs count as delivered: the position moves over them.
  ASSERT_TRUE(s->mark_delivered(1));
  ASSERT_TRUE(s->mark_delivered(4));
  EXPECT_EQ(s->get_stats().delivered_seq, 4u);
  EXPECT_EQ(s->get_stats().corrupt_ranges, 1u);
  // The damaged bytes are in the quarantine file, with where they were.
  const std::string q = contents(opts_.dir / quarantine_file_name);
  ASSERT_GT(q.size(), quarantine_magic.size());
  EXPECT_EQ(q.substr(0, quarantine_magic.size()), quarantine_magic);
  size_t size = 0;
  auto e = decode_quarantine_entry(std::string_view(q).substr(quarantine_magic.size()), &size);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->segment, 1u);
  EXPECT_EQ(e->offset, g2_at);
  EXPECT_EQ(e->damaged_length, group_bytes(g2));
  EXPECT_EQ(std::string(e->copied.begin(), e->copied.end()),
            contents(segment_path(1)).substr(g2_at, group_bytes(g2)));
  // A second open finds the same damage again (it is counted and skipped) but does not
  // copy it into the quarantine file a second time.
  s.reset();
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().quarantined_bytes, 0u);
  EXPECT_EQ(contents(opts_.dir / quarantine_file_name), q);
  EXPECT_TRUE(read_all(*s).empty());  // 1 and 4 were delivered and persisted at close
}

TEST_F(spool_test, damage_found_by_the_reader_after_open_is_stepped_over) {
  auto s = open();
  const std::vector<std::string> g1{"first"}, g2{"second"}, g3{"third"};
  ASSERT_FALSE(append_wait(*s, g1).ec);
  ASSERT_FALSE(append_wait(*s, g2).ec);
  ASSERT_FALSE(append_wait(*s, g3).ec);
  // Rot under an open spool: the reader checks every record again.
  const uint64_t g2_at = wal::segment_header_size + group_bytes(g1);
  poke(segment_path(1), g2_at + 25, "X");
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "first"}, {3, "third"}}));
  const stats st = s->get_stats();
  EXPECT_EQ(st.corrupt_ranges, 1u);
  EXPECT_EQ(st.corrupt_bytes, group_bytes(g2));
  EXPECT_EQ(st.quarantined_bytes, group_bytes(g2));
}

TEST_F(spool_test, damage_at_the_end_of_an_older_segment_is_skipped) {
  auto s = open();
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(append_wait(*s, {record_for(i, 500)}).ec);
  s.reset();
  // Garbage after segment 1's last record (a tail torn before segment 2 began).
  const std::string seg1 = contents(segment_path(1));
  poke(segment_path(1), seg1.size(), std::string(100, '\x5a'));
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_bytes, 100u);
  const auto got = read_all(*s);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(got[i], (owned_record{uint64_t(i) + 1, record_for(i, 500)}));
}

// A damaged wal header loses only itself: the groups after it are delivered, and the header
// is a corrupt range like any other damage (quarantined, counted), never a silent loss.
TEST_F(spool_test, damaged_segment_header_is_quarantined_and_the_groups_after_it_delivered) {
  auto s = open();
  for (int i = 0; i < 30; ++i) ASSERT_FALSE(append_wait(*s, {record_for(i, 500)}).ec);
  ASSERT_GE(s->get_stats().segments, 3u);
  s.reset();
  const std::string original = contents(segment_path(2));
  poke(segment_path(2), 0, "XXXX");
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_bytes, wal::segment_header_size);
  EXPECT_EQ(s->recovery().quarantined_bytes, wal::segment_header_size);
  EXPECT_EQ(s->recovery().undelivered, 30u);
  EXPECT_EQ(s->recovery().stray_files, 0u);
  EXPECT_EQ(s->get_stats().corrupt_ranges, 1u);
  const auto got = read_all(*s);
  ASSERT_EQ(got.size(), 30u);
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(got[i], (owned_record{uint64_t(i) + 1, record_for(i, 500)}));
  const std::string q = contents(opts_.dir / quarantine_file_name);
  size_t size = 0;
  auto e = decode_quarantine_entry(std::string_view(q).substr(quarantine_magic.size()), &size);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->segment, 2u);
  EXPECT_EQ(e->offset, 0u);
  EXPECT_EQ(e->damaged_length, wal::segment_header_size);
  EXPECT_EQ(std::string(e->copied.begin(), e->copied.end()),
            "XXXX" + original.substr(4, wal::segment_header_size - 4));
  // Once delivered, the damaged segment is deleted like the others.
  ASSERT_TRUE(s->mark_delivered(1, 30));
  ASSERT_TRUE(s->persist_position());
  EXPECT_TRUE(eventually([&] { return !env_.open_file(segment_path(2)).has_value(); }));
}

TEST_F(spool_test, damaged_header_of_the_only_segment_loses_only_the_header) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"one", "two"}).ec);
  ASSERT_FALSE(append_wait(*s, {"three"}).ec);
  s.reset();
  poke(segment_path(1), 0, "XXXX");
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().undelivered, 3u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "one"}, {2, "two"}, {3, "three"}}));
  // Appends go to a new segment and get new seqs.
  auto a = append_wait(*s, {"four"});
  ASSERT_FALSE(a.ec);
  EXPECT_EQ(a.first_seq, 4u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{4, "four"}}));
}

TEST_F(spool_test, damage_from_the_header_into_the_first_group_is_one_range) {
  auto s = open();
  const std::vector<std::string> g1{"first"}, g2{"second"};
  ASSERT_FALSE(append_wait(*s, g1).ec);
  ASSERT_FALSE(append_wait(*s, g2).ec);
  s.reset();
  poke(segment_path(1), 0, std::string(wal::segment_header_size + 5, 'X'));
  s = open();
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_bytes, wal::segment_header_size + group_bytes(g1));
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{2, "second"}}));
}

TEST_F(spool_test, stray_files_are_ignored_counted_and_kept) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"a"}).ec);
  s.reset();
  for (const auto& p : {opts_.dir / "junk", opts_.dir / log_dir_name / "wal-1.log",
                        opts_.dir / log_dir_name / "notes.txt"}) {
    auto f = env_.create_file(p);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE((*f)->write_at(0, std::string_view("stray")));
  }
  s = open();
  EXPECT_EQ(s->recovery().stray_files, 3u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "a"}}));
  EXPECT_TRUE(env_.open_file(opts_.dir / "junk").has_value());
}

class spool_missing_test : public spool_test {
 protected:
  // Appends seqs 1..60 (four or more segments), delivers and persists up to `delivered`,
  // closes the spool and returns which seqs each segment held.
  std::map<uint32_t, std::vector<uint64_t>> fill(uint64_t delivered = 0) {
    std::map<uint32_t, std::vector<uint64_t>> held;
    auto s = open();
    for (int i = 0; i < 60; ++i) EXPECT_FALSE(append_wait(*s, {record_for(i, 300)}).ec);
    EXPECT_GE(s->get_stats().segments, 4u);
    if (delivered > 0) {
      EXPECT_EQ(read_all(*s).size(), 60u);
      EXPECT_TRUE(s->mark_delivered(1, delivered));
      EXPECT_TRUE(s->persist_position());
    }
    s.reset();
    // Which segment holds which seq, from the files.
    for (uint32_t n = 1; n < 100; ++n) {
      const std::string bytes = contents(segment_path(n));
      if (bytes.size() <= wal::segment_header_size) continue;
      for (uint64_t at = wal::segment_header_size; at < bytes.size();) {
        const uint32_t len = wal::get_u32(bytes.data() + at + 4);
        auto g = parse_group({bytes.data() + at + wal::record_header_size, len});
        EXPECT_TRUE(g.has_value());
        if (!g) break;
        for (uint64_t q = g->first_seq; q <= g->last_seq(); ++q) held[n].push_back(q);
        at += wal::record_header_size + len;
      }
    }
    return held;
  }

  void check_truncated_middle_segment(uint64_t size) {
    auto held = fill();
    {
      auto f = env_.open_file(segment_path(3));
      ASSERT_TRUE(f.has_value());
      ASSERT_TRUE((*f)->truncate(size));
      ASSERT_TRUE((*f)->sync());
    }
    auto s = open();
    ASSERT_EQ(s->recovery().missing.size(), 1u);
    EXPECT_EQ(s->recovery().missing[0].first_segment, 3u);
    EXPECT_EQ(s->recovery().missing[0].first_seq, held[3].front());
    EXPECT_EQ(s->recovery().missing[0].last_seq, held[3].back());
    EXPECT_EQ(s->get_stats().missing_seqs, held[3].size());
    EXPECT_EQ(read_all(*s).size(), 60u - held[3].size());
  }
};

TEST_F(spool_missing_test, a_deleted_middle_segment_is_counted_and_its_seqs_named) {
  auto held = fill();
  ASSERT_TRUE(env_.remove_file(segment_path(2)));
  auto s = open();
  ASSERT_EQ(s->recovery().missing.size(), 1u);
  const missing_range m = s->recovery().missing[0];
  EXPECT_EQ(m.first_segment, 2u);
  EXPECT_EQ(m.last_segment, 2u);
  EXPECT_EQ(m.first_seq, held[2].front());
  EXPECT_EQ(m.last_seq, held[2].back());
  EXPECT_EQ(s->recovery().missing_ranges, 1u);
  EXPECT_EQ(s->recovery().missing_seqs, held[2].size());
  EXPECT_EQ(s->get_stats().missing_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_ranges, 0u);
  // Never refuses to start: everything else is delivered, and seqs go on.
  EXPECT_EQ(read_all(*s).size(), 60u - held[2].size());
  EXPECT_EQ(append_wait(*s, {"next"}).first_seq, 61u);
}

TEST_F(spool_missing_test, a_middle_segment_truncated_to_nothing_is_counted) {
  check_truncated_middle_segment(0);
}

TEST_F(spool_missing_test, a_middle_segment_truncated_to_its_header_is_counted) {
  check_truncated_middle_segment(wal::segment_header_size);
}

TEST_F(spool_missing_test, a_deleted_oldest_undelivered_segment_is_counted) {
  auto held = fill(5);  // seqs 1..5 delivered, segment 1 holds more
  ASSERT_GT(held[1].back(), 5u);
  ASSERT_TRUE(env_.remove_file(segment_path(1)));
  auto s = open();
  ASSERT_EQ(s->recovery().missing.size(), 1u);
  EXPECT_EQ(s->recovery().missing[0].first_segment, 0u);  // where it started is unknown
  EXPECT_EQ(s->recovery().missing[0].last_segment, 1u);
  EXPECT_EQ(s->recovery().missing[0].first_seq, 6u);
  EXPECT_EQ(s->recovery().missing[0].last_seq, held[1].back());
}

TEST_F(spool_missing_test, segments_deleted_after_delivery_are_not_missing) {
  auto held = fill();
  auto s = open();
  EXPECT_TRUE(s->recovery().missing.empty());
  // Deliver into the middle of segment 3: segments 1 and 2 go.
  const uint64_t upto = held[3][1];
  std::vector<owned_record> got = read_all(*s);
  ASSERT_EQ(got.size(), 60u);
  ASSERT_TRUE(s->mark_delivered(1, upto));
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(eventually([&] { return s->get_stats().segments_deleted == 2; }));
  s.reset();
  EXPECT_FALSE(env_.open_file(segment_path(1)).has_value());
  s = open();
  EXPECT_TRUE(s->recovery().missing.empty());
  EXPECT_EQ(s->get_stats().missing_ranges, 0u);
  EXPECT_EQ(read_all(*s).size(), 60u - upto);
  // Also after a crash, and after everything was delivered.
  ASSERT_TRUE(s->mark_delivered(upto + 1, 60));
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(eventually([&] { return s->get_stats().segments == 1; }));
  env_.crash();
  s.reset();
  env_.restart();
  s = open();
  EXPECT_TRUE(s->recovery().missing.empty());
  EXPECT_EQ(append_wait(*s, {"next"}).first_seq, 61u);
}

TEST_F(spool_test, damaged_position_file_redelivers_everything) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"a", "b"}).ec);
  ASSERT_EQ(read_all(*s).size(), 2u);
  ASSERT_TRUE(s->mark_delivered(1));
  s.reset();
  poke(opts_.dir / position_file_name, 0, std::string(position_file_size, '\0'));
  s = open();
  EXPECT_TRUE(s->recovery().position_reset);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "a"}, {2, "b"}}));
  EXPECT_EQ(append_wait(*s, {"c"}).first_seq, 3u);
}

TEST_F(spool_test, torn_slot_write_keeps_the_previous_position) {
  auto s = open();
  ASSERT_FALSE(append_wait(*s, {"a", "b", "c"}).ec);
  ASSERT_EQ(read_all(*s).size(), 3u);
  ASSERT_TRUE(s->mark_delivered(1));
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(s->mark_delivered(2));
  ASSERT_TRUE(s->persist_position());
  s.reset();
  // Tear the newest slot (the one holding position 2).
  const std::string pf = contents(opts_.dir / position_file_name);
  size_t newest = 0;
  uint64_t gen = 0;
  for (size_t i = 0; i < position_slots; ++i) {
    auto v = decode_position_slot(std::string_view(pf).substr(i * position_slot_size));
    ASSERT_TRUE(v);
    if (v->generation > gen) gen = v->generation, newest = i;
  }
  poke(opts_.dir / position_file_name, newest * position_slot_size + 20, "torn");
  s = open();
  EXPECT_FALSE(s->recovery().position_reset);
  EXPECT_EQ(s->recovery().position, 1u);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{2, "b"}, {3, "c"}}));
}

TEST_F(spool_test, a_second_open_of_the_same_directory_is_refused) {
  auto s = open();
  EXPECT_FALSE(spool::open(opts_, env_).has_value());
}

TEST(spool_posix, round_trip_on_real_files) {
  std::string tmpl = "/tmp/sqsrelay_spool_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  options opts;
  opts.dir = tmpl;
  opts.segment_bytes = 8192;
  {
    auto s = spool::open(opts, wal::default_posix_env());
    ASSERT_TRUE(s.has_value()) << s.error().message();
    for (int i = 0; i < 50; ++i) {
      ASSERT_FALSE(append_wait(**s, {record_for(i, 400), record_for(i + 1000, 10)}).ec);
    }
    std::vector<record> out;
    ASSERT_EQ((*s)->read(30, out).value(), 30u);
    ASSERT_TRUE((*s)->mark_delivered(1, 30));
  }
  {
    auto s = spool::open(opts, wal::default_posix_env());
    ASSERT_TRUE(s.has_value()) << s.error().message();
    const auto got = read_all(**s);
    ASSERT_EQ(got.size(), 70u);
    EXPECT_EQ(got.front().seq, 31u);
    EXPECT_EQ(got.front().data, record_for(15, 400));
    EXPECT_EQ((*s)->get_stats().segments, (*s)->recovery().segments);
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace sqsrelay::spool
