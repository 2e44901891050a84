// Random operations on a log over fault_env, checked against a model of what the owner
// (a message store) knows: appends, deletes through delete records and releases, reads,
// waits, injected faults, crashes at random system calls, and reopen + replay.
//
// After every reopen the replayed records must
//   (a) be records that were appended (successfully, or by an append that failed after its
//       bytes were written and synced), in append order, with their contents;
//   (b) include every acknowledged (durable) data record that was never deleted;
//   (c) never resurrect a record whose delete record was acknowledged;
//   (d) after a clean close, include every record whose segment still exists.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <map>
#include <random>
#include <set>

#include "wal/codec.h"
#include "wal/fault_env.h"
#include "wal/log.h"
#include "wal/test_util.h"

namespace sqsrelay::wal {
namespace {

using testing::payload_for;

constexpr uint8_t data_type = 1;
constexpr uint8_t delete_type = 2;

struct model_record {
  bool is_delete = false;
  uint64_t target = 0;  // delete records: the data record they delete
  size_t size = 0;      // data records: bytes after the id
  location loc;
  uint64_t lsn = 0;      // in the current session; 0 for replayed records
  bool acked = false;    // known durable
  bool deleted = false;  // data records: a delete record was appended for it
};

std::string encode_u64(uint64_t v) {
  std::string s(8, '\0');
  put_u32(s.data(), static_cast<uint32_t>(v));
  put_u32(s.data() + 4, static_cast<uint32_t>(v >> 32));
  return s;
}

uint64_t decode_u64(std::span<const char> p) {
  return get_u32(p.data()) | uint64_t{get_u32(p.data() + 4)} << 32;
}

class model_run {
 public:
  // `faults`: also inject I/O errors and crashes at random system calls.
  model_run(uint64_t seed, bool faults, bool write_behind = false) : rng_(seed), faults_(faults) {
    opts_.dir = "/wal";
    opts_.write_behind = write_behind;
    opts_.preallocate = write_behind;  // the server's settings, tested together
    opts_.write_behind_bytes = 2048;  // small, so lazy-free runs also hit the limit
    opts_.segment_bytes = 512 + rng_() % 4096;
    reopen(false);
  }

  ~model_run() {
    if (!::testing::Test::HasFailure()) reopen(!clean());  // final check
  }

  void step() {
    if (env_.is_down() || l_->failed()) return reopen(true);
    const unsigned dice = rng_() % 1000;
    if (dice < 450) return append_data();
    if (dice < 650) return delete_one();
    if (dice < 800) return read_one();
    if (dice < 900) return wait();
    if (dice < 930) return reopen(true);  // power loss
    if (dice < 950) return reopen(false);
    if (!faults_) return append_data();
    if (dice < 965) return inject_write_error();
    if (dice < 972) return inject_sync_error();
    if (dice < 985) return env_.crash_after(rng_() % 40);
    return hold_then_release();
  }

  log& l() { return *l_; }
  fault_env& env() { return env_; }

 private:
  bool clean() { return !env_.is_down() && !l_->failed(); }

  void append_data() {
    const uint64_t id = next_id_++;
    const size_t size = rng_() % 8 == 0 ? rng_() % 5000 : rng_() % 300;
    const std::string head = encode_u64(id), body = payload_for(id, size);
    const std::array<std::string_view, 2> parts{head, body};
    auto a = l_->append(data_type, parts, 1);
    // A failed append may still come back: a write can fail after writing the whole record,
    // and a concurrent fdatasync can make those bytes durable before the append cuts them
    // off again; an owner must treat it as "maybe stored" (at least once). It is known, not
    // live: only a replay that returns it makes it live.
    recs_[id] = {false, 0, size, a ? a->loc : location{}, a ? a->lsn : 0, false, false};
    if (!a) return;
    live_.insert(id);
  }

  // What the store does for DeleteMessage: a delete record, then the release.
  void delete_one() {
    if (live_.empty()) return;
    auto it = live_.begin();
    std::advance(it, static_cast<long>(rng_() % live_.size()));
    const uint64_t target = *it, id = next_id_++;
    const std::string head = encode_u64(id), body = encode_u64(target);
    const std::array<std::string_view, 2> parts{head, body};
    auto a = l_->append(delete_type, parts, 0);
    recs_[id] = {true, target, 8, a ? a->loc : location{}, a ? a->lsn : 0, false, false};
    if (!a) return;  // maybe stored, as a failed data append
    recs_[target].deleted = true;
    live_.erase(it);
    l_->release(recs_[target].loc.segment);
  }

  void read_one() {
    if (live_.empty()) return;
    auto it = live_.begin();
    std::advance(it, static_cast<long>(rng_() % live_.size()));
    const model_record& r = recs_[*it];
    std::string out(r.loc.length, '\0');
    auto ok = l_->read(r.loc, out.data());
    if (env_.is_down()) return;
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_EQ(out, encode_u64(*it) + payload_for(*it, r.size));
  }

  // Waits until everything appended is durable; the error if the log failed instead.
  error_code sync_all() {
    std::promise<error_code> p;
    auto f = p.get_future();
    l_->when_durable(l_->last_lsn(), [&p](error_code ec) { p.set_value(ec); });
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "sync_all timed out";
      return make_error_code(boost::system::errc::timed_out);
    }
    return f.get();
  }

  void wait() {
    std::promise<error_code> p;
    auto f = p.get_future();
    l_->when_durable(l_->last_lsn(), [&p](error_code ec) { p.set_value(ec); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }

  void inject_write_error() {
    const auto ec = make_error_code(boost::system::errc::no_space_on_device);
    env_.inject(fault_env::op::write, env_.calls(fault_env::op::write) + 1, ec, rng_() % 64);
    append_data();
    env_.clear_faults();  // unfired if a crash came first
  }

  void inject_sync_error() {
    const auto ec = make_error_code(boost::system::errc::io_error);
    env_.inject(fault_env::op::sync, env_.calls(fault_env::op::sync) + 1, ec);
  }

  void hold_then_release() {
    env_.hold_syncs();
    for (int i = 0; i < 5; ++i) append_data();
    env_.release_syncs();
  }

  // Closes the log (after a power loss if `crash`), reopens, replays and checks.
  void reopen(bool crash) {
    if (l_) {
      // A close is clean only if the log is still healthy once everything appended is
      // durable: a sync error armed earlier may fail it on the way out, and then records
      // still in memory (write-behind) never reach the file, as in a crash.
      if (!crash && !env_.is_down() && sync_all()) crash = true;
      const uint64_t durable = l_->durable_lsn();
      for (auto& [id, r] : recs_) r.acked = r.acked || (r.lsn != 0 && r.lsn <= durable);
      if (crash && !env_.is_down()) env_.crash();
      l_.reset();
      crash = crash || env_.is_down();  // a crash point may hit the final syncs
      env_.restart();
    }
    auto opened = log::open(opts_, env_);
    for (int retry = 0; !opened && retry < 3; ++retry) {
      if (env_.is_down()) {  // a crash point during open itself
        crash = true;
        env_.restart();
      }  // else an injected sync error (one-shot) hit open's own sync
      opened = log::open(opts_, env_);
    }
    ASSERT_TRUE(opened) << opened.error().message();
    l_ = std::move(*opened);
    check_replay(crash);
  }

  void check_replay(bool crashed) {
    std::vector<uint64_t> ids;
    std::map<uint64_t, location> replayed_data;
    std::set<uint64_t> deleted;
    auto st = l_->replay([&](uint8_t type, std::span<const char> payload, location loc) {
      const uint64_t id = decode_u64(payload);
      ASSERT_TRUE(recs_.contains(id)) << "replayed a record never appended: " << id;
      const model_record& r = recs_[id];
      ASSERT_EQ(type, r.is_delete ? delete_type : data_type);
      const std::string rest(payload.data() + 8, payload.size() - 8);
      ASSERT_EQ(rest, r.is_delete ? encode_u64(r.target) : payload_for(id, r.size));
      ASSERT_TRUE(ids.empty() || ids.back() < id) << "out of order";  // (a)
      ids.push_back(id);
      if (!r.is_delete) {
        l_->add_ref(loc.segment);
        replayed_data[id] = loc;
      } else if (auto it = replayed_data.find(r.target); it != replayed_data.end()) {
        l_->release(it->second.segment);
        deleted.insert(r.target);
      }
    });
    ASSERT_TRUE(st) << st.error().message();
    check_survivors(ids, replayed_data, deleted, crashed);
    rebuild(ids, replayed_data, deleted);
  }

  void check_survivors(const std::vector<uint64_t>& ids, const std::map<uint64_t, location>& data,
                       const std::set<uint64_t>& deleted, bool crashed) {
    const std::set<uint64_t> replayed(ids.begin(), ids.end());
    for (const auto& [id, r] : recs_) {
      const bool there = replayed.contains(id);
      if (!r.is_delete && r.acked && !r.deleted) {
        EXPECT_TRUE(there) << "lost acknowledged record " << id;  // (b)
      }
      if (r.is_delete && r.acked) {
        EXPECT_FALSE(data.contains(r.target) && !deleted.contains(r.target))
            << "resurrected record " << r.target;  // (c)
      }
      if (!crashed && !there) {
        EXPECT_FALSE(env_.open_file(opts_.dir / segment_file_name(r.loc.segment)))
            << "record " << id << " missing from a surviving segment";  // (d)
      }
    }
  }

  // After replay the owner knows exactly what was replayed, all of it durable.
  void rebuild(const std::vector<uint64_t>& ids, const std::map<uint64_t, location>& data,
               const std::set<uint64_t>& deleted) {
    std::map<uint64_t, model_record> kept;
    live_.clear();
    for (uint64_t id : ids) {
      model_record r = recs_[id];
      r.lsn = 0;
      r.acked = true;
      if (!r.is_delete) {
        r.loc = data.at(id);
        r.deleted = deleted.contains(id);
        if (!r.deleted) live_.insert(id);
      }
      kept[id] = r;
    }
    // A delete whose target is gone still counts: its record may be replayed later.
    recs_ = std::move(kept);
  }

  std::mt19937_64 rng_;
  const bool faults_;
  fault_env env_;
  options opts_;
  std::unique_ptr<log> l_;
  std::map<uint64_t, model_record> recs_;
  std::set<uint64_t> live_;
  uint64_t next_id_ = 1;
};

int seeds() {
  const char* s = std::getenv("SQSRELAY_WAL_SEEDS");  // NOLINT(concurrency-mt-unsafe)
  return s ? std::atoi(s) : 60;
}

// param: write-behind and preallocation (the server's settings), or neither.
class wal_model : public ::testing::TestWithParam<bool> {};

TEST_P(wal_model, random_operations_match_the_model) {
  const char* from = std::getenv("SQSRELAY_WAL_SEED_FROM");  // NOLINT(concurrency-mt-unsafe)
  for (int seed = from ? std::atoi(from) : 0; seed < seeds() && !::testing::Test::HasFailure();
       ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    model_run run(static_cast<uint64_t>(seed), true, GetParam());
    for (int i = 0; i < 400 && !::testing::Test::HasFailure(); ++i) run.step();
  }
}

// Crash-point sweep: the same workload crashed at every mutating system call in turn.
TEST_P(wal_model, crash_at_every_system_call_recovers) {
  uint64_t total = 0;
  for (uint64_t k = 0; k == 0 || k <= total; ++k) {
    SCOPED_TRACE("crash after call " + std::to_string(k));
    model_run run(1000, false, GetParam());
    if (k > 0) run.env().crash_after(k);
    for (int i = 0; i < 60 && !::testing::Test::HasFailure(); ++i) run.step();
    if (k == 0) {
      for (auto o : {fault_env::op::write, fault_env::op::sync, fault_env::op::sync_dir,
                     fault_env::op::create, fault_env::op::remove, fault_env::op::truncate,
                     fault_env::op::rename}) {
        total += run.env().calls(o);
      }
    }
    if (::testing::Test::HasFailure()) break;
  }
}

INSTANTIATE_TEST_SUITE_P(writes, wal_model, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "write_behind_preallocated" : "direct"; });

}  // namespace
}  // namespace sqsrelay::wal
