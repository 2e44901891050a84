// The spool over a failing or crashing file system (wal::fault_env): fdatasync errors,
// ENOSPC, unsynced data dropped by a crash, and crash-point sweeps over append, segment
// roll, position persist, segment delete and recovery itself.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/system/errc.hpp>
#include <map>
#include <set>

#include "spool/spool.h"
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
using op = wal::fault_env::op;

const error_code eio = make_error_code(boost::system::errc::io_error);
const error_code enospc = make_error_code(boost::system::errc::no_space_on_device);

options test_options() {
  options o;
  o.dir = "/spool";
  o.segment_bytes = 4096;
  o.position_interval = 1h;
  return o;
}

std::unique_ptr<spool> open_spool(wal::env& e, const options& o = test_options()) {
  auto s = spool::open(o, e);
  EXPECT_TRUE(s.has_value()) << s.error().message();
  return s ? std::move(*s) : nullptr;
}

TEST(spool_fault, failed_fdatasync_fails_the_spool_and_acknowledges_nothing_unsynced) {
  wal::fault_env env;
  auto s = open_spool(env);
  ASSERT_FALSE(append_wait(*s, {"a"}).ec);
  env.inject(op::sync, env.calls(op::sync) + 1, eio);
  EXPECT_EQ(append_wait(*s, {"b"}).ec, errc::spool_failed);
  EXPECT_TRUE(s->failed());
  EXPECT_EQ(append_wait(*s, {"c"}).ec, errc::spool_failed);  // for good: reopen to recover
  // What was durable before the failure can still be delivered; "b" never is.
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "a"}}));
  ASSERT_TRUE(s->mark_delivered(1));
  EXPECT_TRUE(s->persist_position());  // the position file is not the log: still works
  const stats st = s->get_stats();
  EXPECT_TRUE(st.failed);
  EXPECT_EQ(st.synced_records, 1u);
  EXPECT_EQ(st.failed_records, 1u);
  // The failed sync may have lost "b": a crash drops it. Reopening recovers.
  env.crash();
  s.reset();
  env.restart();
  env.clear_faults();
  s = open_spool(env);
  EXPECT_FALSE(s->failed());
  EXPECT_TRUE(read_all(*s).empty());  // "a" was delivered and its position persisted
  auto d = append_wait(*s, {"d"});
  EXPECT_FALSE(d.ec);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{d.first_seq, "d"}}));
}

TEST(spool_fault, reopening_after_a_failed_sync_without_a_crash_may_bring_back_unacknowledged) {
  wal::fault_env env;
  auto s = open_spool(env);
  env.inject(op::sync, env.calls(op::sync) + 1, eio);
  EXPECT_EQ(append_wait(*s, {"b"}).ec, errc::spool_failed);
  s.reset();
  env.clear_faults();
  s = open_spool(env);
  // The page cache still held "b": recovery syncs and delivers it. It was never
  // acknowledged, so the producer retried it: at least once, not exactly once.
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "b"}}));
}

TEST(spool_fault, enospc_fails_only_that_append_and_the_reader_steps_over_its_seqs) {
  wal::fault_env env;
  auto s = open_spool(env);
  ASSERT_FALSE(append_wait(*s, {"a"}).ec);
  env.inject(op::write, env.calls(op::write) + 1, enospc, 10);  // a short write, then ENOSPC
  EXPECT_EQ(append_wait(*s, {"b", "b2"}).ec, errc::spool_full);
  auto c = append_wait(*s, {"c"});
  ASSERT_FALSE(c.ec);
  EXPECT_EQ(c.first_seq, 4u);
  EXPECT_FALSE(s->failed());
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "a"}, {4, "c"}}));
  ASSERT_TRUE(s->mark_delivered(4));
  ASSERT_TRUE(s->mark_delivered(1));
  EXPECT_EQ(s->get_stats().delivered_seq, 4u);
  EXPECT_EQ(s->get_stats().enospc_errors, 1u);
  EXPECT_EQ(s->get_stats().failed_records, 2u);
  s.reset();
  s = open_spool(env);
  EXPECT_EQ(s->recovery().corrupt_ranges, 0u);  // the partial record was cut off
  EXPECT_EQ(s->recovery().truncated_bytes, 0u);
}

TEST(spool_fault, enospc_creating_a_segment_fails_the_append_and_the_next_roll_succeeds) {
  wal::fault_env env;
  auto s = open_spool(env);
  ASSERT_FALSE(append_wait(*s, {record_for(1, 3000)}).ec);
  env.inject(op::create, env.calls(op::create) + 1, enospc);
  EXPECT_EQ(append_wait(*s, {record_for(2, 3000)}).ec, errc::spool_full);
  auto c = append_wait(*s, {record_for(3, 3000)});
  ASSERT_FALSE(c.ec);
  EXPECT_EQ(read_all(*s),
            (std::vector<owned_record>{{1, record_for(1, 3000)}, {3, record_for(3, 3000)}}));
}

TEST(spool_fault, a_crash_drops_unsynced_appends_which_were_never_acknowledged) {
  wal::fault_env env;
  auto s = open_spool(env);
  ASSERT_FALSE(append_wait(*s, {"acked"}).ec);
  env.hold_syncs();
  std::atomic<int> failed{0}, succeeded{0};
  for (int i = 0; i < 5; ++i) {
    const std::string_view v = "unsynced";
    s->append(std::span<const std::string_view>(&v, 1),
              [&](error_code ec, uint64_t) { ++(ec ? failed : succeeded); });
  }
  ASSERT_TRUE(eventually([&] { return s->get_stats().groups_written >= 2; }));
  env.crash();
  ASSERT_TRUE(eventually([&] { return failed.load() == 5; }));
  EXPECT_EQ(succeeded.load(), 0);
  s.reset();
  env.restart();
  s = open_spool(env);
  EXPECT_EQ(read_all(*s), (std::vector<owned_record>{{1, "acked"}}));
}

TEST(spool_fault, failed_position_write_keeps_the_segments_and_is_retried) {
  wal::fault_env env;
  auto s = open_spool(env);
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(append_wait(*s, {record_for(i, 600)}).ec);
  ASSERT_EQ(read_all(*s).size(), 20u);
  ASSERT_TRUE(s->mark_delivered(1, 20));
  env.inject(op::sync, env.calls(op::sync) + 1, eio);
  EXPECT_FALSE(s->persist_position());
  std::this_thread::sleep_for(20ms);
  stats st = s->get_stats();
  EXPECT_EQ(st.position_errors, 1u);
  EXPECT_EQ(st.persisted_seq, 0u);
  EXPECT_EQ(st.segments_deleted, 0u);
  EXPECT_FALSE(st.failed);  // only duplicates are at stake, not acknowledged data
  ASSERT_TRUE(s->persist_position());
  ASSERT_TRUE(eventually([&] { return s->get_stats().segments == 1; }));
}

// ---- crash-point sweeps ----------------------------------------------------------------

// Runs `scenario` on a fresh env with a crash after k mutating file-system calls, for
// k = 0, 1, ... until a run finishes without crashing. After each crash the spool must
// reopen (no crash loop) and `check` the recovered state.
// Returns how many crash points it tried.
template <class Setup, class Scenario, class Check>
uint64_t sweep(Setup setup, Scenario scenario, Check check) {
  for (uint64_t k = 0;; ++k) {
    if (k >= 500) {
      ADD_FAILURE() << "the scenario never finished";
      return k;
    }
    SCOPED_TRACE("crash after " + std::to_string(k) + " calls");
    wal::fault_env env;
    auto s = open_spool(env);
    if (!s) return k;
    auto state = setup(*s);
    env.crash_after(k);
    scenario(*s, env, state);
    const bool crashed = env.is_down();
    if (!crashed) env.crash();  // also check the final state after a crash
    s.reset();
    env.restart();
    s = open_spool(env);
    if (!s) return k;
    check(*s, state);
    // The reopened spool works: a new record gets a seq past everything seen.
    auto more = append_wait(*s, {"after"});
    EXPECT_FALSE(more.ec);
    EXPECT_GT(more.first_seq, state.max_seq);
    if (!crashed) return k;
  }
}

struct append_state {
  std::map<uint64_t, std::string> acked;     // seq -> record, acknowledged
  std::map<uint64_t, std::string> appended;  // every record that may be on disk
  uint64_t max_seq = 0;
};

void append_tracked(spool& s, append_state& st, const std::vector<std::string>& recs) {
  auto a = append_wait(s, recs);
  if (a.ec) return;
  for (size_t i = 0; i < recs.size(); ++i) {
    st.acked[a.first_seq + i] = recs[i];
    st.appended[a.first_seq + i] = recs[i];
    st.max_seq = std::max<uint64_t>(st.max_seq, a.first_seq + i);
  }
}

// What every recovery must show: records in seq order with the contents appended under
// those seqs, and every acknowledged record past the persisted position.
void check_recovered(spool& s, const append_state& st, uint64_t max_possible_seq) {
  const auto got = read_all(s);
  std::set<uint64_t> seen;
  uint64_t prev = s.recovery().position;
  for (const owned_record& r : got) {
    EXPECT_GT(r.seq, prev);
    prev = r.seq;
    seen.insert(r.seq);
    EXPECT_LE(r.seq, max_possible_seq);
    auto it = st.appended.find(r.seq);
    if (it != st.appended.end()) {
      EXPECT_EQ(r.data, it->second) << "seq " << r.seq;
    }
  }
  for (const auto& [seq, data] : st.acked) {
    if (seq > s.recovery().position) {
      EXPECT_TRUE(seen.count(seq)) << "acked seq " << seq << " lost";
    }
  }
}

TEST(spool_fault, crash_at_every_step_of_append_and_segment_roll) {
  const uint64_t points = sweep(
      [](spool& s) {
        append_state st;
        append_tracked(s, st, {record_for(0, 900), record_for(1, 900)});
        return st;
      },
      [](spool& s, wal::fault_env& env, append_state& st) {
        // 600-byte records in 4 KiB segments: several rolls (create, header write, sync of
        // the old segment, directory sync) fall inside the sweep.
        for (int i = 0; i < 14 && !env.is_down(); ++i) {
          const std::string r = record_for(100 + i, 600);
          // Seqs a failed append took may still reach the disk (written, sync failed).
          st.appended[st.max_seq + 1] = r;
          append_tracked(s, st, {r});
        }
      },
      [](spool& s, const append_state& st) { check_recovered(s, st, st.max_seq + 1); });
  // 14 appends (write + sync each, fewer when syncs are shared) and 2+ rolls (create,
  // header write, directory sync).
  EXPECT_GE(points, 25u);
}

struct delivery_state : append_state {
  uint64_t marked = 0;  // marked delivered: 1..marked
};

TEST(spool_fault, crash_at_every_step_of_position_persist_and_segment_delete) {
  const uint64_t points = sweep(
      [](spool& s) {
        delivery_state st;
        for (int i = 0; i < 16; ++i) append_tracked(s, st, {record_for(i, 700)});
        EXPECT_EQ(read_all(s).size(), 16u);
        st.marked = 10;
        EXPECT_TRUE(s.mark_delivered(1, st.marked));
        return st;
      },
      [](spool& s, wal::fault_env& env, delivery_state&) {
        (void)s.persist_position();
        // Deletions run on the reclaimer thread: wait for them (or the crash).
        eventually([&] { return env.is_down() || s.get_stats().segments_deleted >= 2; }, 2s);
      },
      [](spool& s, const delivery_state& st) {
        // Nothing undelivered is lost, and whatever is gone is covered by the position.
        EXPECT_LE(s.recovery().position, st.marked);
        check_recovered(s, st, st.max_seq);
      });
  // Position write + sync, then per deleted segment: truncate steps, remove, directory sync.
  EXPECT_GE(points, 6u);
}

TEST(spool_fault, crash_at_every_step_of_opening_a_damaged_spool) {
  for (uint64_t k = 0;; ++k) {
    ASSERT_LT(k, 200u);
    SCOPED_TRACE("crash after " + std::to_string(k) + " calls");
    wal::fault_env env;
    {
      auto s = open_spool(env);
      for (int i = 0; i < 3; ++i) ASSERT_FALSE(append_wait(*s, {record_for(i, 100)}).ec);
    }
    // Damage the middle group, so that opening writes the quarantine file.
    const auto seg = test_options().dir / log_dir_name / wal::segment_file_name(1);
    {
      auto f = env.open_file(seg);
      ASSERT_TRUE(f.has_value());
      const uint64_t second = wal::segment_header_size + wal::record_header_size +
                              group_header_size + record_length_size + 100;
      ASSERT_TRUE((*f)->write_at(second + 40, std::string_view("XX")));
      ASSERT_TRUE((*f)->sync());
    }
    env.crash_after(k);
    {
      auto s = spool::open(test_options(), env);
      std::vector<record> out;
      if (s) (void)(*s)->read(10, out);  // may fail: the env may be down
    }
    const bool crashed = env.is_down();
    if (!crashed) env.crash();
    env.restart();
    auto s = open_spool(env);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
    const auto got = read_all(*s);
    // Nothing was marked: both intact records come back, the damaged one never.
    EXPECT_EQ(got, (std::vector<owned_record>{{1, record_for(0, 100)}, {3, record_for(2, 100)}}));
    if (!crashed) return;
  }
}

}  // namespace
}  // namespace sqsrelay::spool
