// Behaviour of the log: round trips, group commit, durability, recovery, faults, deletion.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "base/hash.h"
#include "wal/codec.h"
#include "wal/fault_env.h"
#include "wal/log.h"
#include "wal/test_util.h"

namespace sqsrelay::wal {
namespace {

using namespace std::chrono_literals;
using testing::payload_for;
using testing::record;
using testing::replay_all;
using testing::temp_dir;

const error_code eio = make_error_code(boost::system::errc::io_error);
const error_code enospc = make_error_code(boost::system::errc::no_space_on_device);

// Blocks until `l` reports on `lsn`; returns what it reported (or a timeout failure).
error_code wait_durable(log& l, uint64_t lsn) {
  std::promise<error_code> p;
  auto f = p.get_future();
  l.when_durable(lsn, [p = std::move(p)](error_code ec) mutable { p.set_value(ec); });
  if (f.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "no durability report for lsn " << lsn;
    return make_error_code(boost::system::errc::timed_out);
  }
  return f.get();
}

template <class Pred>
bool eventually(Pred pred) {
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(1ms)) {
    if (pred()) return true;
  }
  return pred();
}

class wal_test : public ::testing::Test {
 protected:
  wal_test() {
    opts_.dir = "/wal";
    opts_.segment_bytes = 4096;
  }

  std::unique_ptr<log> open_log() {
    auto l = log::open(opts_, env_);
    EXPECT_TRUE(l.has_value()) << l.error().message();
    return l ? std::move(*l) : nullptr;
  }

  // Opens and replays, so that segment deletion is enabled.
  std::unique_ptr<log> open_replayed(std::vector<record>* out = nullptr,
                                     recovery_stats* st = nullptr) {
    auto l = open_log();
    auto recs = replay_all(*l, st);
    if (out) *out = std::move(recs);
    return l;
  }

  // Appends record `id` (its payload derived from the id) and remembers it. By default the
  // record is live (holds a reference), so its segment is never deleted.
  log::appended put(log& l, uint64_t id, size_t size = 100, uint32_t refs = 1) {
    std::string p = payload_for(id, size);
    auto a = l.append(static_cast<uint8_t>(id), p, refs);
    EXPECT_TRUE(a.has_value()) << a.error().message();
    if (!a) return {};
    written_.push_back({static_cast<uint8_t>(id), p, a->loc});
    return *a;
  }

  // Simulates power loss under `l`, which is then destroyed, and brings the env back.
  void crash(std::unique_ptr<log>& l) {
    env_.crash();
    l.reset();
    env_.restart();
  }

  size_t segment_files() {
    auto names = env_.list_dir(opts_.dir);
    return static_cast<size_t>(std::count_if(names->begin(), names->end(), [](auto& n) {
      return parse_segment_file_name(n).has_value();
    }));
  }

  bool has_segment(uint32_t n) {
    return env_.open_file(opts_.dir / segment_file_name(n)).has_value();
  }

  fault_env env_;
  options opts_;
  std::vector<record> written_;
};

TEST_F(wal_test, records_round_trip_across_segment_rolls) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 200; ++id) put(*l, id, id * 7 % 500);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  EXPECT_GT(l->get_stats().segments_created, 5u);
  l.reset();

  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.records, 200u);
  EXPECT_EQ(st.segments, segment_files());
  EXPECT_EQ(st.corrupt_records + st.truncated_bytes + st.ignored_files, 0u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].loc.segment, written_[i].loc.segment);
    EXPECT_EQ(got[i].loc.offset, written_[i].loc.offset);
  }
}

TEST_F(wal_test, read_returns_a_payload_or_any_range_inside_it) {
  auto l = open_replayed();
  put(*l, 1, 10);
  auto a = l->append(9, std::array<std::string_view, 3>{"hello", " ", "world"});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->loc.length, 11u);
  std::string out(11, '\0');
  ASSERT_TRUE(l->read(a->loc, out.data()));
  EXPECT_EQ(out, "hello world");
  location world{a->loc.segment, 5, a->loc.offset + 6};
  out.assign(5, '\0');
  ASSERT_TRUE(l->read(world, out.data()));
  EXPECT_EQ(out, "world");
}

TEST_F(wal_test, read_rejects_ranges_that_are_not_written_data) {
  auto l = open_replayed();
  auto a = put(*l, 1, 10);
  char buf[64];
  auto bad = [&](location loc) {
    auto r = l->read(loc, buf);
    return !r && r.error() == errc::bad_location;
  };
  EXPECT_TRUE(bad({}));                                              // segment 0
  EXPECT_TRUE(bad({a.loc.segment, 11, a.loc.offset}));               // past the end
  EXPECT_TRUE(bad({a.loc.segment, 4, 2}));                           // segment header
  EXPECT_TRUE(bad({a.loc.segment + 1, 1, a.loc.offset}));            // no such segment
  EXPECT_TRUE(bad({a.loc.segment, 1, UINT64_MAX}));                  // overflow
  EXPECT_TRUE(l->read({a.loc.segment, 0, a.loc.offset + 10}, buf));  // empty range at end
}

TEST_F(wal_test, record_larger_than_a_segment_gets_a_segment_of_its_own) {
  auto l = open_replayed();
  auto small1 = put(*l, 1, 10);
  auto big = put(*l, 2, 10000);
  auto small2 = put(*l, 3, 10);
  EXPECT_NE(small1.loc.segment, big.loc.segment);
  EXPECT_NE(big.loc.segment, small2.loc.segment);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  l.reset();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
}

TEST_F(wal_test, group_commit_shares_one_sync_among_concurrent_appends) {
  auto l = open_replayed();
  env_.hold_syncs();  // every append below lands while the first sync is stuck
  constexpr uint64_t threads = 8, per_thread = 50;
  std::atomic<uint64_t> ok{0};
  std::vector<std::thread> ts;
  ts.reserve(threads);
  for (uint64_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < per_thread; ++i) {
        auto a = l->append(1, payload_for(t * 1000 + i, 64));
        ASSERT_TRUE(a);
        l->when_durable(a->lsn, [&](error_code ec) { ok += ec ? 0 : 1; });
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, 0u);
  env_.release_syncs();
  EXPECT_TRUE(eventually([&] { return ok == threads * per_thread; }));
  auto st = l->get_stats();
  EXPECT_EQ(st.appends, threads * per_thread);
  EXPECT_LE(st.syncs, 3u);
}

TEST_F(wal_test, durability_callback_runs_only_after_the_sync) {
  auto l = open_replayed();
  EXPECT_EQ(wait_durable(*l, put(*l, 1).lsn), error_code{});
  env_.hold_syncs();
  const uint64_t syncs_before = env_.calls(fault_env::op::sync);
  auto a = put(*l, 2);
  std::atomic<bool> called{false};
  l->when_durable(a.lsn, [&](error_code ec) {
    EXPECT_FALSE(ec);
    EXPECT_GT(env_.calls(fault_env::op::sync), syncs_before);
    called = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(called);
  EXPECT_LT(l->durable_lsn(), a.lsn);
  env_.release_syncs();
  EXPECT_TRUE(eventually([&] { return called.load(); }));
  EXPECT_GE(l->durable_lsn(), a.lsn);
}

TEST_F(wal_test, when_durable_answers_inline_for_known_outcomes) {
  auto l = open_replayed();
  error_code got = errc::crashed;
  l->when_durable(0, [&](error_code ec) { got = ec; });
  EXPECT_EQ(got, error_code{});
  l->when_durable(5, [&](error_code ec) { got = ec; });
  EXPECT_EQ(got, errc::bad_lsn);
}

TEST_F(wal_test, crash_keeps_exactly_the_synced_prefix) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 60; ++id) put(*l, id, 150);  // several segments
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  const auto durable = written_;
  env_.hold_syncs();
  for (uint64_t id = 60; id < 90; ++id) put(*l, id, 150);  // rolls again, never synced
  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, durable);
}

TEST_F(wal_test, closing_the_log_makes_everything_appended_durable) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 100; ++id) put(*l, id, 77);
  l.reset();
  env_.crash();
  env_.restart();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
}

TEST_F(wal_test, lazy_appends_start_no_sync_but_ride_on_the_next_one) {
  auto l = open_replayed();
  EXPECT_EQ(wait_durable(*l, put(*l, 1).lsn), error_code{});
  const uint64_t syncs = env_.calls(fault_env::op::sync);
  const std::string lazy = payload_for(2, 50);
  std::string_view part(lazy);
  auto a = l->append(2, std::span(&part, 1), 0, sync_mode::lazy);
  ASSERT_TRUE(a);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(env_.calls(fault_env::op::sync), syncs);  // nobody asked: no fdatasync
  EXPECT_LT(l->durable_lsn(), a->lsn);
  auto b = put(*l, 3);  // a `now` append syncs both
  EXPECT_EQ(wait_durable(*l, b.lsn), error_code{});
  EXPECT_GE(l->durable_lsn(), a->lsn);
  auto st = l->get_stats();
  EXPECT_EQ(st.lazy_appends, 1u);
  EXPECT_EQ(st.synced_appends, 3u);
}

TEST_F(wal_test, waiting_for_a_lazy_append_syncs_it) {
  auto l = open_replayed();
  const std::string lazy = payload_for(1, 50);
  std::string_view part(lazy);
  auto a = l->append(1, std::span(&part, 1), 0, sync_mode::lazy);
  ASSERT_TRUE(a);
  EXPECT_EQ(wait_durable(*l, a->lsn), error_code{});
  EXPECT_GE(env_.calls(fault_env::op::sync), 1u);
}

TEST_F(wal_test, lazy_appends_are_lost_in_a_crash_only_if_nothing_synced_them) {
  auto l = open_replayed();
  const std::string p1 = payload_for(1, 40), p2 = payload_for(2, 40);
  std::string_view v1(p1), v2(p2);
  ASSERT_TRUE(l->append(1, std::span(&v1, 1), 0, sync_mode::lazy));
  EXPECT_EQ(wait_durable(*l, put(*l, 5).lsn), error_code{});  // syncs the lazy one too
  ASSERT_TRUE(l->append(2, std::span(&v2, 1), 0, sync_mode::lazy));
  std::this_thread::sleep_for(20ms);
  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, p1);
  EXPECT_EQ(got[1], written_[0]);
}

TEST_F(wal_test, closing_the_log_makes_lazy_appends_durable) {
  auto l = open_replayed();
  const std::string p = payload_for(1, 40);
  std::string_view v(p);
  ASSERT_TRUE(l->append(1, std::span(&v, 1), 0, sync_mode::lazy));
  l.reset();
  env_.crash();
  env_.restart();
  std::vector<record> got;
  l = open_replayed(&got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, p);
}

TEST_F(wal_test, linger_gathers_appends_that_keep_arriving_into_one_sync) {
  opts_.sync_linger_gap = 200ms;
  opts_.sync_linger_max = 5s;
  auto l = open_replayed();
  // The first sync is held while two more appends land, so the next wake-up finds more
  // than a lone append waiting and lingers.
  env_.hold_syncs();
  put(*l, 1);
  std::this_thread::sleep_for(5ms);
  put(*l, 2);
  put(*l, 3);
  env_.release_syncs();
  std::atomic<uint64_t> ok{0};
  for (uint64_t i = 0; i < 20; ++i) {
    auto a = put(*l, 10 + i);
    l->when_durable(a.lsn, [&](error_code ec) { ok += ec ? 0 : 1; });
    std::this_thread::sleep_for(1ms);  // well inside the gap: the sync thread keeps waiting
  }
  EXPECT_TRUE(eventually([&] { return ok == 20; }));
  auto st = l->get_stats();
  EXPECT_LE(st.syncs, 3u) << "linger_waits " << st.linger_waits;
  EXPECT_GE(st.linger_waits, 1u);
}

TEST_F(wal_test, lingering_never_reports_durable_before_the_sync) {
  opts_.sync_linger_gap = 1ms;
  opts_.sync_linger_max = 10ms;
  auto l = open_replayed();
  env_.hold_syncs();
  std::atomic<uint64_t> done{0};
  uint64_t last = 0;
  for (uint64_t i = 0; i < 5; ++i) {
    last = put(*l, i).lsn;
    l->when_durable(last, [&](error_code ec) { done += ec ? 0 : 1; });
  }
  std::this_thread::sleep_for(50ms);  // well past the linger: the sync is held, not skipped
  EXPECT_EQ(done, 0u);
  EXPECT_LT(l->durable_lsn(), last);
  env_.release_syncs();
  EXPECT_TRUE(eventually([&] { return done == 5; }));
  EXPECT_GE(l->durable_lsn(), last);
}

TEST_F(wal_test, linger_never_delays_a_lone_append) {
  opts_.sync_linger_gap = 500ms;
  opts_.sync_linger_max = 5s;
  auto l = open_replayed();
  for (uint64_t i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(wait_durable(*l, put(*l, i).lsn), error_code{});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 400ms);
  }
  EXPECT_EQ(l->get_stats().linger_waits, 0u);
}

TEST_F(wal_test, torn_tail_is_truncated_and_appends_continue_after_it) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 5; ++id) put(*l, id, 30);
  const uint32_t seg = l->active_segment();
  l.reset();
  {  // a crash in the middle of a write: a header announcing 100 bytes, and 10 of them
    auto f = *env_.open_file(opts_.dir / segment_file_name(seg));
    const uint64_t end = *f->size();
    std::string torn(record_header_size, '\0');
    put_u32(torn.data() + 4, 100);
    torn += std::string(10, 'x');
    ASSERT_TRUE(f->write_at(end, torn));
    ASSERT_TRUE(f->sync());
  }
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.truncated_bytes, record_header_size + 10);
  EXPECT_EQ(st.corrupt_records, 0u);
  EXPECT_EQ(l->active_segment(), seg);
  put(*l, 5, 30);
  put(*l, 6, 30);
  l.reset();
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.truncated_bytes, 0u);
}

TEST_F(wal_test, corrupt_record_in_the_middle_is_skipped_counted_and_the_rest_kept) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 8; ++id) put(*l, id, 40);  // all in one segment
  l.reset();
  {
    auto f = *env_.open_file(opts_.dir / segment_file_name(written_[3].loc.segment));
    ASSERT_TRUE(f->write_at(written_[3].loc.offset + 7, std::string_view("\xff")));
    ASSERT_TRUE(f->sync());
  }
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  auto expected = written_;
  expected.erase(expected.begin() + 3);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(st.corrupt_records, 1u);
  EXPECT_EQ(st.skipped_bytes, record_header_size + 40);
  EXPECT_EQ(st.truncated_bytes, 0u);
}

// Sets the length field of written_[i]'s record so that it announces `length` bytes.
void set_length(env& e, const options& opts, const record& r, uint32_t length) {
  auto f = *e.open_file(opts.dir / segment_file_name(r.loc.segment));
  std::string field(4, '\0');
  put_u32(field.data(), length);
  ASSERT_TRUE(f->write_at(r.loc.offset - record_header_size + 4, field));
  ASSERT_TRUE(f->sync());
}

TEST_F(wal_test, length_damaged_to_point_at_a_later_record_loses_only_that_record) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 8; ++id) put(*l, id, 40 + id);  // all in one segment
  l.reset();
  const uint64_t to_record_6 = written_[6].loc.offset - written_[3].loc.offset;
  set_length(env_, opts_, written_[3], static_cast<uint32_t>(to_record_6 - record_header_size));
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  auto expected = written_;
  expected.erase(expected.begin() + 3);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(st.corrupt_records, 1u);
  EXPECT_EQ(st.skipped_bytes, record_header_size + 43);
  EXPECT_EQ(st.truncated_bytes, 0u);
}

// The damaged length points at the end of the segment, where appends after the restart go:
// the records after the damage must be kept at this open and at every later one.
TEST_F(wal_test, length_damaged_to_point_at_the_end_keeps_the_later_records_for_good) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 8; ++id) put(*l, id, 40 + id);
  const uint32_t seg = l->active_segment();
  l.reset();
  const uint64_t end = *(*env_.open_file(opts_.dir / segment_file_name(seg)))->size();
  set_length(env_, opts_, written_[3], static_cast<uint32_t>(end - written_[3].loc.offset));
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  auto expected = written_;
  expected.erase(expected.begin() + 3);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(st.corrupt_records, 1u);
  EXPECT_EQ(st.truncated_bytes, 0u);
  EXPECT_EQ(l->active_segment(), seg);

  put(*l, 8, 40);  // lands exactly where the damaged length points
  put(*l, 9, 40);
  expected.insert(expected.end(), written_.end() - 2, written_.end());
  l.reset();
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(st.corrupt_records, 1u);
  EXPECT_EQ(st.skipped_bytes, record_header_size + 43);
  EXPECT_EQ(st.truncated_bytes, 0u);
}

TEST_F(wal_test, stray_files_are_ignored_counted_and_kept) {
  auto l = open_replayed();
  put(*l, 1);
  l.reset();
  auto make = [&](const std::string& name, const std::string& data) {
    auto f = *env_.create_file(opts_.dir / name);
    ASSERT_TRUE(f->write_at(0, data));
  };
  make("notes.txt", "hello");
  make("wal-1.log", std::string(40, 'x'));                 // not the canonical name
  make(segment_file_name(7), std::string(40, 'x'));        // right name, damaged header
  make(segment_file_name(3), std::string("SQRLWAL9", 8));  // short, not a torn header
  std::string wrong_number(encode_segment_header(4).data(), segment_header_size);
  make(segment_file_name(5), wrong_number);  // a renamed segment

  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.ignored_files, 4u);
  EXPECT_EQ(st.damaged_headers, 1u);  // segment 7: scanned, nothing intact in it
  EXPECT_EQ(st.corrupt_records, 2u);  // its header and the 20 bytes after it
  EXPECT_EQ(st.skipped_bytes, 40u);
  EXPECT_EQ(l->active_segment(), 8u);  // numbered past every segment-like name
  put(*l, 2);
  l.reset();
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.ignored_files, 4u);
  EXPECT_TRUE(env_.open_file(opts_.dir / "notes.txt"));
  EXPECT_TRUE(has_segment(7));
}

// A damaged header loses only itself: the records after it have their own checksums, so
// they are replayed (the scan resyncs as after any damaged record) and the header counts as
// a damaged stretch. The segment is never appended to again.
TEST_F(wal_test, records_after_a_damaged_segment_header_are_replayed_and_counted) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 120; ++id) put(*l, id, 200);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  const uint32_t last = l->active_segment();
  ASSERT_GE(last, 3u);
  l.reset();
  for (uint32_t n : {1u, last}) {  // an older segment and the newest
    auto f = *env_.open_file(opts_.dir / segment_file_name(n));
    ASSERT_TRUE(f->write_at(0, std::string_view("XXXX")));
  }
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.damaged_headers, 2u);
  EXPECT_EQ(st.corrupt_records, 2u);
  EXPECT_EQ(st.skipped_bytes, 2 * segment_header_size);
  EXPECT_EQ(st.ignored_files, 0u);
  EXPECT_EQ(l->damaged_header_segments(), (std::vector<uint32_t>{1u, last}));
  EXPECT_EQ(l->active_segment(), last + 1);  // not appended to a damaged segment
  std::string header(segment_header_size, '\0');
  ASSERT_TRUE(l->read({1, static_cast<uint32_t>(segment_header_size), 0}, header.data()));
  EXPECT_EQ(header.substr(0, 4), "XXXX");
  put(*l, 500);
  l.reset();
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.damaged_headers, 2u);
}

TEST_F(wal_test, torn_segment_creation_is_finished_at_open) {
  auto l = open_replayed();
  put(*l, 1);
  const uint32_t next = l->active_segment() + 1;
  l.reset();
  auto f = *env_.create_file(opts_.dir / segment_file_name(next));
  ASSERT_TRUE(f->write_at(0, std::span<const char>(encode_segment_header(next).data(), 7)));
  recovery_stats st;
  std::vector<record> got;
  l = open_replayed(&got, &st);
  EXPECT_EQ(st.truncated_bytes, 7u);
  EXPECT_EQ(st.ignored_files, 0u);
  EXPECT_EQ(l->active_segment(), next);
  put(*l, 2);
  l.reset();
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
}

TEST_F(wal_test, newer_format_version_refuses_to_open) {
  auto f = *env_.create_file(opts_.dir / segment_file_name(1));
  segment_header h = encode_segment_header(1);
  put_u32(h.data() + 8, format_version + 1);
  put_u32(h.data() + 16, mask_crc(crc32c(h.data(), 16)));
  ASSERT_TRUE(f->write_at(0, h));
  auto l = log::open(opts_, env_);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error(), errc::unsupported_version);
}

TEST_F(wal_test, failed_fdatasync_fails_the_waiters_and_the_log_for_good) {
  auto l = open_replayed();
  auto first = put(*l, 1);
  EXPECT_EQ(wait_durable(*l, first.lsn), error_code{});
  env_.inject(fault_env::op::sync, env_.calls(fault_env::op::sync) + 1, eio);
  auto second = put(*l, 2);
  EXPECT_EQ(wait_durable(*l, second.lsn), eio);
  EXPECT_TRUE(l->failed());
  EXPECT_EQ(l->get_stats().sync_errors, 1u);
  auto a = l->append(1, "more");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), errc::log_failed);
  EXPECT_EQ(wait_durable(*l, first.lsn), error_code{});  // durable before the failure
  EXPECT_EQ(wait_durable(*l, second.lsn), eio);

  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  ASSERT_GE(got.size(), 1u);
  EXPECT_EQ(got[0], written_[0]);
  EXPECT_FALSE(l->failed());
}

TEST_F(wal_test, enospc_fails_the_append_cuts_the_partial_record_and_loses_nothing) {
  auto l = open_replayed();
  for (uint64_t id = 0; id < 10; ++id) put(*l, id, 50);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 1, enospc, 20);
  auto a = l->append(1, payload_for(99, 50));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), enospc);
  EXPECT_FALSE(l->failed());  // space may come back
  EXPECT_EQ(l->get_stats().write_errors, 1u);
  put(*l, 10, 50);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  crash(l);
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.corrupt_records + st.truncated_bytes, 0u);
}

// Numbers of live segments skip only where a file went missing: an owner (the spool) counts
// such a gap as lost data. A roll that fails and leaves no file gives its number to the next.
TEST_F(wal_test, a_failed_roll_that_left_no_file_gives_its_number_to_the_next_roll) {
  auto l = open_replayed();
  put(*l, 1, 3000);
  const uint32_t first = l->active_segment();
  env_.inject(fault_env::op::create, env_.calls(fault_env::op::create) + 1, enospc);
  EXPECT_FALSE(l->append(1, payload_for(2, 3000), 1));  // the creation fails
  env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 1, enospc);
  EXPECT_FALSE(l->append(1, payload_for(3, 3000), 1));  // the header write fails
  EXPECT_EQ(l->active_segment(), first);
  put(*l, 4, 3000);
  EXPECT_EQ(l->active_segment(), first + 1);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  l.reset();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
  EXPECT_TRUE(has_segment(first + 1));
}

TEST_F(wal_test, append_failing_right_after_a_roll_still_wakes_the_sync_thread) {
  auto l = open_replayed();
  put(*l, 1, 3000);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  std::this_thread::sleep_for(10ms);  // the sync thread is asleep with nothing to do
  // The roll's header write succeeds and leaves a segment to sync; the record's write fails.
  env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 2, enospc);
  EXPECT_FALSE(l->append(1, payload_for(2, 3000), 1));
  put(*l, 3, 10);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
}

TEST_F(wal_test, write_error_that_cannot_be_undone_fails_the_log) {
  auto l = open_replayed();
  put(*l, 1);
  env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 1, eio, 5);
  env_.inject(fault_env::op::truncate, env_.calls(fault_env::op::truncate) + 1, eio);
  EXPECT_FALSE(l->append(1, "x"));
  EXPECT_TRUE(l->failed());
  EXPECT_EQ(l->append(1, "y").error(), errc::log_failed);
}

// Write-behind: appends reach the file with the group commit, one write per commit.
TEST_F(wal_test, write_behind_reads_unwritten_records_and_writes_once_per_group_commit) {
  opts_.write_behind = true;
  auto l = open_replayed();
  env_.hold_syncs();  // the sync thread blocks before its first fdatasync
  const uint64_t writes_before = env_.calls(fault_env::op::write);
  for (uint64_t id = 0; id < 20; ++id) put(*l, id, 100);
  // Before any write reached the file every record reads back from memory, whole or a range.
  for (const record& r : written_) {
    std::string out(r.payload.size(), '\0');
    ASSERT_TRUE(l->read(r.loc, out.data()));
    EXPECT_EQ(out, r.payload);
  }
  const location mid{written_[7].loc.segment, 10, written_[7].loc.offset + 30};
  std::string part(10, '\0');
  ASSERT_TRUE(l->read(mid, part.data()));
  EXPECT_EQ(part, written_[7].payload.substr(30, 10));
  env_.release_syncs();
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  const auto st = l->get_stats();
  EXPECT_EQ(st.appends, 20u);
  EXPECT_LT(st.writes, 20u);  // rolls write what is pending too, so a few
  EXPECT_EQ(env_.calls(fault_env::op::write) - writes_before, st.writes);
  crash(l);
  std::vector<record> got;
  recovery_stats st2;
  l = open_replayed(&got, &st2);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st2.corrupt_records + st2.truncated_bytes, 0u);
}

TEST_F(wal_test, write_behind_write_error_fails_the_log_and_its_waiters) {
  opts_.write_behind = true;
  auto l = open_replayed();
  auto first = put(*l, 1);
  EXPECT_EQ(wait_durable(*l, first.lsn), error_code{});
  env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 1, enospc, 7);
  auto second = put(*l, 2);  // the append succeeds: nothing is written yet
  EXPECT_EQ(wait_durable(*l, second.lsn), enospc);
  EXPECT_TRUE(l->failed());
  EXPECT_EQ(l->get_stats().write_errors, 1u);
  EXPECT_EQ(l->append(1, "more").error(), errc::log_failed);
  // The record that never reached the file still reads back right, from memory.
  std::string out(written_[1].payload.size(), '\0');
  ASSERT_TRUE(l->read(second.loc, out.data()));
  EXPECT_EQ(out, written_[1].payload);
  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], written_[0]);
}

TEST_F(wal_test, write_behind_writes_lazy_records_soon_without_a_sync) {
  opts_.write_behind = true;
  opts_.lazy_write_delay = 5ms;
  auto l = open_replayed();
  const std::string lazy = payload_for(1, 100);
  std::string_view part(lazy);
  const uint64_t syncs = env_.calls(fault_env::op::sync);
  auto a = l->append(1, std::span(&part, 1), 0, sync_mode::lazy);
  ASSERT_TRUE(a);
  // Written to the file (what a killed process leaves behind), not synced.
  ASSERT_TRUE(eventually([&] { return l->get_stats().lazy_writes == 1; }));
  EXPECT_EQ(env_.calls(fault_env::op::sync), syncs);
  EXPECT_LT(l->durable_lsn(), a->lsn);
  auto f = env_.open_file(opts_.dir / segment_file_name(a->loc.segment));
  ASSERT_TRUE(f);
  std::string on_disk(lazy.size(), '\0');
  ASSERT_TRUE((*f)->read_at(a->loc.offset, std::span<char>(on_disk.data(), on_disk.size())));
  EXPECT_EQ(on_disk, lazy);
  // Later lazy records are written too.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l->append(1, std::span(&part, 1), 0, sync_mode::lazy));
  ASSERT_TRUE(eventually([&] { return l->get_stats().lazy_writes >= 2; }));
  EXPECT_EQ(env_.calls(fault_env::op::sync), syncs);
}

TEST_F(wal_test, write_behind_lazy_records_past_the_limit_start_a_commit) {
  opts_.write_behind = true;
  opts_.write_behind_bytes = 1000;
  opts_.lazy_write_delay = 1h;  // only the limit makes them leave memory here
  auto l = open_replayed();
  const std::string lazy = payload_for(1, 100);
  std::string_view part(lazy);
  const uint64_t syncs = env_.calls(fault_env::op::sync);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(l->append(1, std::span(&part, 1), 0, sync_mode::lazy));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(env_.calls(fault_env::op::sync), syncs);  // 545 bytes pending: under the limit
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(l->append(1, std::span(&part, 1), 0, sync_mode::lazy));
  EXPECT_TRUE(eventually([&] { return l->durable_lsn() == 10; }));
  EXPECT_GT(env_.calls(fault_env::op::sync), syncs);
}

// A preparation that fails (a full disk) is not retried before the next roll: no loop of
// create, write, fail, remove on every append.
TEST_F(wal_test, failed_preparation_waits_for_the_next_roll) {
  opts_.preallocate = true;
  auto l = open_replayed();
  const uint64_t creates = env_.calls(fault_env::op::create);
  env_.inject(fault_env::op::create, creates + 1, enospc);
  put(*l, 1, 1100);  // past a quarter of the 4 KiB segment: preparation starts, and fails
  EXPECT_TRUE(eventually([&] { return l->get_stats().prepare_errors == 1; }));
  for (uint64_t id = 2; id < 8; ++id) put(*l, id, 100);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(env_.calls(fault_env::op::create), creates + 1);  // no retries
  EXPECT_EQ(l->get_stats().prepare_errors, 1u);
  put(*l, 8, 3000);  // rolls (creating the next segment), then preparation is tried again
  EXPECT_TRUE(eventually([&] { return l->get_stats().segments_prepared == 1; }));
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  l.reset();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
}

TEST_F(wal_test, no_preparation_without_two_segments_of_free_space) {
  opts_.preallocate = true;
  env_.set_available_bytes(2 * opts_.segment_bytes - 1);
  auto l = open_replayed();
  const uint64_t creates = env_.calls(fault_env::op::create);
  put(*l, 1, 1100);  // past the threshold
  EXPECT_TRUE(eventually([&] { return l->get_stats().prepare_errors == 1; }));
  EXPECT_EQ(env_.calls(fault_env::op::create), creates);  // no prepared.tmp was started
  EXPECT_EQ(l->get_stats().segments_prepared, 0u);
  env_.set_available_bytes(2 * opts_.segment_bytes);
  put(*l, 2, 3000);  // rolls; with room again the next preparation goes through
  EXPECT_TRUE(eventually([&] { return l->get_stats().segments_prepared == 1; }));
}

TEST_F(wal_test, a_roll_that_cannot_use_the_prepared_file_waits_before_preparing_again) {
  opts_.preallocate = true;
  auto l = open_replayed();
  put(*l, 1, 1100);
  ASSERT_TRUE(eventually([&] { return l->get_stats().segments_prepared == 1; }));
  env_.inject(fault_env::op::rename, env_.calls(fault_env::op::rename) + 1, eio);
  put(*l, 2, 100);  // rolls into the prepared file: the rename fails, a plain segment is made
  EXPECT_EQ(l->get_stats().prepare_errors, 1u);
  const uint64_t creates = env_.calls(fault_env::op::create);
  put(*l, 3, 1500);  // past the threshold in the new segment
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(env_.calls(fault_env::op::create), creates);  // not before the next roll
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  l.reset();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
}

// A crash can make a roll's rename durable before the header written over the zeros: the
// newest file then starts with 20 zero bytes. Its creation is finished at open.
TEST_F(wal_test, preallocated_segment_without_its_header_is_finished_at_open) {
  auto l = open_replayed();
  put(*l, 1, 100);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  const uint32_t next = l->active_segment() + 1;
  l.reset();
  {
    auto f = env_.create_file(opts_.dir / segment_file_name(next));
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write_at(0, std::string(opts_.segment_bytes, '\0')));
    ASSERT_TRUE((*f)->sync());
    ASSERT_TRUE(env_.sync_dir(opts_.dir));
  }
  std::vector<record> got;
  recovery_stats st;
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.ignored_files, 0u);
  EXPECT_EQ(st.truncated_bytes, segment_header_size);
  EXPECT_EQ(l->active_segment(), next);  // appends continue in it
  auto a = put(*l, 2, 100);
  EXPECT_EQ(a.loc.segment, next);
  EXPECT_EQ(wait_durable(*l, a.lsn), error_code{});
  crash(l);
  l = open_replayed(&got, &st);
  EXPECT_EQ(got, written_);
  EXPECT_EQ(st.corrupt_records + st.truncated_bytes + st.ignored_files, 0u);
}

TEST_F(wal_test, segments_are_deleted_oldest_first_once_unreferenced_and_durable) {
  auto l = open_replayed();
  std::vector<log::appended> a;
  for (uint64_t id = 0; id < 4; ++id) a.push_back(put(*l, id, 3000, 1));  // one per segment
  ASSERT_EQ(a[3].loc.segment, a[0].loc.segment + 3);
  const uint32_t s0 = a[0].loc.segment;
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});

  l->release(s0 + 1);  // not the oldest: stays
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(has_segment(s0 + 1));
  EXPECT_EQ(l->get_stats().segments_deleted, 0u);

  l->release(s0);  // now the prefix s0, s0+1 can go
  EXPECT_TRUE(eventually([&] { return l->get_stats().segments_deleted == 2; }));
  EXPECT_FALSE(has_segment(s0));
  EXPECT_FALSE(has_segment(s0 + 1));
  char buf[1];
  EXPECT_EQ(l->read({s0, 1, a[0].loc.offset}, buf).error(), errc::bad_location);

  l->release(s0 + 3);  // the active segment is never deleted
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(has_segment(s0 + 3));
  EXPECT_EQ(l->get_stats().segments_deleted, 2u);
}

TEST_F(wal_test, no_segment_is_deleted_before_replay) {
  auto l = open_log();  // never replayed: nothing may be deleted in this session
  for (uint64_t id = 0; id < 3; ++id) put(*l, id, 3000, 0);  // three unreferenced segments
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(l->get_stats().segments_deleted, 0u);
  l.reset();

  l = open_log();  // the owner has not re-taken its references yet
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(segment_files(), 3u);
  EXPECT_EQ(replay_all(*l, nullptr, false), written_);  // takes none: all but the active go
  EXPECT_TRUE(eventually([&] { return segment_files() == 1; }));
}

TEST_F(wal_test, deletion_waits_until_the_releasing_record_is_durable) {
  auto l = open_replayed();
  auto a = put(*l, 1, 3000, 1);
  put(*l, 2, 3000, 1);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  env_.hold_syncs();
  put(*l, 3, 10, 0);  // the "delete" record for record 1, not yet durable
  l->release(a.loc.segment);
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(has_segment(a.loc.segment));
  env_.release_syncs();
  EXPECT_TRUE(eventually([&] { return !has_segment(a.loc.segment); }));
}

TEST_F(wal_test, deletion_lost_in_a_crash_brings_the_segment_back_whole) {
  auto l = open_replayed();
  auto a = put(*l, 1, 3000, 1);
  put(*l, 2, 3000, 1);
  EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
  env_.inject(fault_env::op::sync_dir, env_.calls(fault_env::op::sync_dir) + 1, eio);
  l->release(a.loc.segment);
  EXPECT_TRUE(eventually([&] { return l->failed(); }));  // the unlink is not durable
  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);  // the unlink was undone: the segment is back, no hole
}

TEST_F(wal_test, durable_deletion_survives_a_crash) {
  auto l = open_replayed();
  auto a = put(*l, 1, 3000, 1);
  put(*l, 2, 3000, 1);
  l->release(a.loc.segment);
  EXPECT_TRUE(eventually([&] { return l->get_stats().segments_deleted == 1; }));
  crash(l);
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, std::vector<record>(written_.begin() + 1, written_.end()));
}

TEST_F(wal_test, replay_is_allowed_once_and_only_before_appending) {
  auto l = open_log();
  ASSERT_TRUE(l->append(1, "x"));
  auto r = l->replay([](uint8_t, std::span<const char>, location) {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::replay_not_allowed);
  l.reset();
  l = open_replayed();
  EXPECT_EQ(l->replay([](uint8_t, std::span<const char>, location) {}).error(),
            errc::replay_not_allowed);
}

TEST_F(wal_test, a_second_open_of_the_same_directory_is_refused) {
  auto l = open_log();
  auto second = log::open(opts_, env_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::locked);
  l.reset();
  EXPECT_TRUE(log::open(opts_, env_));
}

TEST_F(wal_test, callbacks_may_append_and_wait_again) {
  auto l = open_replayed();
  std::promise<error_code> done;
  l->when_durable(put(*l, 1).lsn, [&](error_code) {
    auto a = l->append(2, "from the callback");
    ASSERT_TRUE(a);
    l->when_durable(a->lsn, [&](error_code ec) { done.set_value(ec); });
  });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), error_code{});
}

TEST_F(wal_test, without_sync_appends_are_durable_at_once_and_nothing_is_synced) {
  opts_.sync = false;
  auto l = open_replayed();
  auto a = put(*l, 1);
  bool called = false;
  l->when_durable(a.lsn, [&](error_code ec) { called = !ec; });
  EXPECT_TRUE(called);  // inline
  EXPECT_EQ(l->durable_lsn(), a.lsn);
  l.reset();
  EXPECT_EQ(env_.calls(fault_env::op::sync), 0u);
  EXPECT_EQ(env_.calls(fault_env::op::sync_dir), 0u);
}

TEST_F(wal_test, records_of_every_size_and_type_survive) {
  auto l = open_replayed();
  for (uint64_t size : {0, 1, 8, 9, 4095, 4096, 4097, 70000}) put(*l, size % 256, size);
  std::string huge_part(100000, 'h');
  std::vector<std::string_view> many(50, std::string_view("part"));
  many.push_back(huge_part);
  auto a = l->append(255, many, 1);
  ASSERT_TRUE(a);
  written_.push_back({255,
                      [&] {
                        std::string s;
                        for (auto p : many) s += p;
                        return s;
                      }(),
                      a->loc});
  l.reset();
  std::vector<record> got;
  l = open_replayed(&got);
  EXPECT_EQ(got, written_);
}

// The same log on real files: rolls, reopen, reads, and a directory with a segment's name.
TEST(wal_posix, round_trip_on_real_files) {
  temp_dir dir;
  options opts;
  opts.dir = dir.path() / "wal";
  opts.segment_bytes = 64 << 10;
  std::vector<record> written;
  {
    auto l = *log::open(opts, default_posix_env());
    replay_all(*l);
    for (uint64_t id = 0; id < 300; ++id) {
      std::string p = payload_for(id, 1000);
      auto a = l->append(3, p, 1);
      ASSERT_TRUE(a);
      written.push_back({3, p, a->loc});
    }
    EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
    std::string out(1000, '\0');
    ASSERT_TRUE(l->read(written[5].loc, out.data()));
    EXPECT_EQ(out, written[5].payload);
  }
  std::filesystem::create_directory(opts.dir / segment_file_name(999));
  auto l = *log::open(opts, default_posix_env());
  recovery_stats st;
  EXPECT_EQ(replay_all(*l, &st), written);
  EXPECT_EQ(st.ignored_files, 1u);
  EXPECT_EQ(l->active_segment(), 1000u);
}

// Preallocation on real files: the log moves into a prepared segment of zeros, whose file
// keeps its full size while records fill it, and recovery finds the records before the
// zeros with nothing counted as damage.
TEST(wal_posix, preallocated_segments_round_trip) {
  temp_dir dir;
  options opts;
  opts.dir = dir.path() / "wal";
  opts.segment_bytes = 256 << 10;
  opts.preallocate = true;
  opts.write_behind = true;
  std::vector<record> written;
  {
    auto l = *log::open(opts, default_posix_env());
    replay_all(*l);
    const auto prepared = [&](uint64_t n) {
      return eventually([&] { return l->get_stats().segments_prepared >= n; });
    };
    for (uint64_t id = 0; id < 600; ++id) {
      std::string p = payload_for(id, 900);
      auto a = l->append(3, p, 1);
      ASSERT_TRUE(a);
      written.push_back({3, p, a->loc});
      // Past a quarter of the first segment a file is prepared, and the next append moves
      // into it; past half of that one the next is prepared.
      if (id == 100) {
        EXPECT_TRUE(prepared(1));
      }
      if (id == 300) {
        EXPECT_TRUE(prepared(2));
      }
    }
    EXPECT_EQ(wait_durable(*l, l->last_lsn()), error_code{});
    const auto st = l->get_stats();
    EXPECT_GE(st.segments_prepared, 2u);
    EXPECT_EQ(st.prepare_errors, 0u);
    // The active segment was prepared: its file is full size, its data shorter.
    const uint32_t active = l->active_segment();
    EXPECT_EQ(std::filesystem::file_size(opts.dir / segment_file_name(active)), opts.segment_bytes);
    const auto sizes = l->segment_sizes();
    EXPECT_LT(sizes.back().second, opts.segment_bytes);
    std::string out(900, '\0');
    ASSERT_TRUE(l->read(written[400].loc, out.data()));
    EXPECT_EQ(out, written[400].payload);
  }
  auto l = *log::open(opts, default_posix_env());
  EXPECT_FALSE(std::filesystem::exists(opts.dir / prepared_file_name));  // deleted at open
  recovery_stats st;
  EXPECT_EQ(replay_all(*l, &st), written);
  EXPECT_EQ(st.corrupt_records + st.truncated_bytes + st.skipped_bytes + st.ignored_files, 0u);
  // Appends continue after the last record, inside the preallocated file.
  std::string p = payload_for(1000, 900);
  auto a = l->append(3, p, 1);
  ASSERT_TRUE(a);
  written.push_back({3, p, a->loc});
  EXPECT_EQ(wait_durable(*l, a->lsn), error_code{});
  l.reset();
  l = *log::open(opts, default_posix_env());
  EXPECT_EQ(replay_all(*l, &st), written);
  EXPECT_EQ(st.corrupt_records + st.truncated_bytes + st.skipped_bytes, 0u);
}

TEST(wal_posix, group_commit_on_real_files_shares_syncs) {
  temp_dir dir;
  options opts;
  opts.dir = dir.path();
  auto l = *log::open(opts, default_posix_env());
  replay_all(*l);
  constexpr uint64_t threads = 8, per_thread = 100;
  std::vector<std::thread> ts;
  ts.reserve(threads);
  for (uint64_t t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (uint64_t i = 0; i < per_thread; ++i) {
        auto a = l->append(1, std::string(256, 'x'));
        ASSERT_TRUE(a);
        EXPECT_EQ(wait_durable(*l, a->lsn), error_code{});
      }
    });
  }
  for (auto& t : ts) t.join();
  auto st = l->get_stats();
  EXPECT_EQ(st.appends, threads * per_thread);
  EXPECT_LT(st.syncs, st.appends);
}

}  // namespace
}  // namespace sqsrelay::wal
