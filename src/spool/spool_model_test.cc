// Random operations on a spool over fault_env, checked against a model: appends (async,
// several in flight), reads of random sizes, delivery marks in random order, position
// persists, injected ENOSPC and fdatasync errors, crashes at random system calls, clean and
// crash reopens. Every record carries its id (ids grow in append order), so whatever comes
// back can be checked even when its append's outcome is unknown.
//
// Checked:
//   (a) nothing acknowledged is lost: every acknowledged seq past the position the spool
//       reopened at is handed out, in its place;
//   (b) order: within a run seqs and ids only grow; an acknowledged seq carries its id;
//   (c) nothing is handed out twice in one run; after a crash only records past the
//       persisted position come again (at least once);
//   (d) the reopened position lies between the last position known persisted and the
//       delivered position at the crash;
//   (e) no record that was refused (spool_full before writing) ever appears.
// SQSRELAY_SPOOL_SEEDS=N runs N seeds (default 12); SQSRELAY_SPOOL_OPS ops per seed.
#include <gtest/gtest.h>

#include <boost/system/errc.hpp>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "spool/codec.h"
#include "spool/spool.h"
#include "spool/test_util.h"
#include "wal/fault_env.h"

namespace sqsrelay::spool {
namespace {

using namespace std::chrono_literals;
using op = wal::fault_env::op;

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string record_with_id(uint64_t id, size_t size) {
  std::string s = testing::record_for(id, size + 8);
  put_u64(s.data(), id);
  return s;
}

// The id of a record made by record_with_id, or 0 if its bytes are not such a record.
uint64_t id_of(std::string_view r) {
  if (r.size() < 8) return 0;
  const uint64_t id = get_u64(r.data());
  return record_with_id(id, r.size() - 8) == r ? id : 0;
}

struct outcome {
  uint64_t first_id = 0;
  size_t count = 0;
  error_code ec;
  uint64_t first_seq = 0;
};

class model_run {
 public:
  explicit model_run(uint64_t seed) : rng_(seed) {
    opts_.dir = "/spool";
    opts_.segment_bytes = 4096 << (rng_() % 3);
    opts_.budget_bytes = rng_() % 3 == 0 ? 96 << 10 : 64 << 20;
    opts_.position_interval = rng_() % 2 ? 1h : 2ms;
    opts_.read_chunk_bytes = 4096 << (rng_() % 4);
    reopen(/*crashed=*/false);
  }

  ~model_run() {
    wait_acks();
    s_.reset();
  }

  void step() {
    const uint64_t r = rng_() % 100;
    if (r < 35) {
      append();
    } else if (r < 60) {
      read();
    } else if (r < 78) {
      mark();
    } else if (r < 82) {
      persist();
    } else if (r < 86) {
      wait_acks();
    } else if (r < 89) {
      inject_fault();
    } else if (r < 93) {
      crash();
    } else if (r < 95) {
      clean_reopen();
    } else {
      read();
    }
    take_outcomes();
    if (s_->failed() && rng_() % 4 == 0) clean_reopen();  // a failed spool must be reopened
  }

  std::string summary() const {
    return "acked " + std::to_string(acked_.size()) + ", refused " +
           std::to_string(refused_.size()) + ", handed out " + std::to_string(seen_seqs_.size()) +
           ", reopens " + std::to_string(reopens_) + ", last position " +
           std::to_string(persisted_);
  }

  // Drains everything after a clean reopen and checks (a) once more.
  void finish() {
    clean_reopen();
    env_.clear_faults();
    for (int i = 0; i < 1000; ++i) {
      if (!read()) break;
    }
    for (uint64_t seq : acked_) {
      if (seq > open_position_) {
        EXPECT_TRUE(seen_seqs_.count(seq)) << "acknowledged seq " << seq << " lost";
      }
    }
  }

 private:
  void append() {
    const size_t n = 1 + rng_() % 5;
    auto recs = std::make_shared<std::vector<std::string>>();
    for (size_t i = 0; i < n; ++i) {
      const size_t size = rng_() % 20 == 0 ? 2000 + rng_() % 2000 : rng_() % 300;
      recs->push_back(record_with_id(next_id_ + i, size));
    }
    std::vector<std::string_view> views(recs->begin(), recs->end());
    const uint64_t first_id = next_id_;
    next_id_ += n;
    ++in_flight_;
    s_->append(views, [this, recs, first_id, n](error_code ec, uint64_t seq) {
      std::lock_guard lock(mu_);
      outcomes_.push_back({first_id, n, ec, seq});
      cv_.notify_all();
    });
  }

  void take_outcomes() {
    std::deque<outcome> got;
    {
      std::lock_guard lock(mu_);
      got.swap(outcomes_);
    }
    for (const outcome& o : got) {
      --in_flight_;
      if (o.ec == errc::spool_full || o.ec == errc::record_too_large) {
        // Refused or cut off: never on disk (unless the disk-full path was a sync error).
        for (size_t i = 0; i < o.count; ++i) refused_.insert(o.first_id + i);
        continue;
      }
      if (o.ec) continue;  // outcome unknown: may or may not come back
      for (size_t i = 0; i < o.count; ++i) {
        const uint64_t seq = o.first_seq + i;
        acked_.insert(seq);
        id_by_seq_[seq] = o.first_id + i;
        // Acknowledged after the reader already passed it: it must have been handed out.
        if (seq > open_position_ && seq < last_seq_) {
          EXPECT_TRUE(run_seqs_.count(seq)) << "acknowledged seq " << seq << " skipped";
        }
        if (run_seqs_.count(seq)) {
          EXPECT_EQ(run_ids_.at(seq), o.first_id + i) << "seq " << seq;
        }
      }
    }
  }

  void wait_acks() {
    std::unique_lock lock(mu_);
    const bool done = cv_.wait_for(
        lock, 5s, [&] { return static_cast<int64_t>(outcomes_.size()) >= in_flight_; });
    EXPECT_TRUE(done) << "appends never completed";
    lock.unlock();
    take_outcomes();
  }

  // Returns whether it handed out anything.
  bool read() {
    std::vector<record> out;
    auto n = s_->read(1 + rng_() % 20, out);
    if (!n) {
      EXPECT_TRUE(env_.is_down()) << n.error().message();
      return false;
    }
    for (const record& r : out) {
      const uint64_t id = id_of(r.data);
      EXPECT_NE(id, 0u) << "seq " << r.seq << " holds bytes nobody appended";
      EXPECT_FALSE(refused_.count(id)) << "refused record " << id << " came back";
      EXPECT_GT(r.seq, last_seq_) << "seq order";
      EXPECT_GT(id, last_id_) << "append order";
      // Acknowledged seqs between the previous record and this one were skipped: lost.
      for (auto it = acked_.upper_bound(std::max(last_seq_, open_position_));
           it != acked_.end() && *it < r.seq; ++it) {
        ADD_FAILURE() << "acknowledged seq " << *it << " lost";
      }
      auto known = id_by_seq_.find(r.seq);
      if (known != id_by_seq_.end()) {
        EXPECT_EQ(known->second, id) << "seq " << r.seq;
      }
      last_seq_ = r.seq;
      last_id_ = id;
      run_seqs_.insert(r.seq);
      run_ids_[r.seq] = id;
      seen_seqs_.insert(r.seq);
      outstanding_.push_back(r.seq);
    }
    return *n > 0;
  }

  void mark() {
    if (outstanding_.empty()) return;
    const size_t n = 1 + rng_() % outstanding_.size();
    for (size_t i = 0; i < n; ++i) {
      const size_t at = rng_() % outstanding_.size();
      std::swap(outstanding_[at], outstanding_.back());
      EXPECT_TRUE(s_->mark_delivered(outstanding_.back()));
      outstanding_.pop_back();
    }
  }

  void persist() {
    const uint64_t delivered = s_->get_stats().delivered_seq;
    if (s_->persist_position()) persisted_ = std::max(persisted_, delivered);
  }

  void inject_fault() {
    const error_code enospc = make_error_code(boost::system::errc::no_space_on_device);
    const error_code eio = make_error_code(boost::system::errc::io_error);
    if (rng_() % 2) {
      env_.inject(op::write, env_.calls(op::write) + 1 + rng_() % 3, enospc, rng_() % 50);
    } else {
      env_.inject(op::sync, env_.calls(op::sync) + 1 + rng_() % 3, eio);
    }
  }

  void crash() {
    if (rng_() % 2) {
      env_.crash_after(rng_() % 20);
      for (int i = 0; i < 10 && !env_.is_down(); ++i) {
        rng_() % 2 ? append() : (void)read();
        take_outcomes();
      }
      if (!env_.is_down()) env_.crash();
    } else {
      env_.crash();
    }
    delivered_at_crash_ = s_->get_stats().delivered_seq;
    wait_acks();
    s_.reset();
    env_.restart();
    env_.clear_faults();
    reopen(/*crashed=*/true);
  }

  void clean_reopen() {
    wait_acks();
    const uint64_t delivered = s_->get_stats().delivered_seq;
    const bool failed = s_->failed();
    s_.reset();
    env_.clear_faults();
    reopen(/*crashed=*/false);
    // A clean close persists the delivery position exactly (it may fail only if a fault
    // was still armed for the position sync).
    if (!failed) {
      EXPECT_LE(s_->recovery().position, delivered);
    }
  }

  void reopen(bool crashed) {
    auto s = spool::open(opts_, env_);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    s_ = std::move(*s);
    const uint64_t p = s_->recovery().position;
    EXPECT_GE(p, persisted_) << "a persisted position went back";
    if (crashed) {
      EXPECT_LE(p, delivered_at_crash_) << "position past what was delivered";
    }
    persisted_ = p;
    open_position_ = p;
    ++reopens_;
    last_seq_ = p;
    last_id_ = 0;
    run_seqs_.clear();
    run_ids_.clear();
    outstanding_.clear();
  }

  std::mt19937_64 rng_;
  wal::fault_env env_;
  options opts_;
  std::unique_ptr<spool> s_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<outcome> outcomes_;  // guarded by mu_
  int64_t in_flight_ = 0;

  uint64_t next_id_ = 1;
  uint64_t reopens_ = 0;
  std::set<uint64_t> acked_;                // acknowledged seqs
  std::map<uint64_t, uint64_t> id_by_seq_;  // acknowledged seq -> id
  std::set<uint64_t> refused_;              // ids refused before being written
  std::set<uint64_t> seen_seqs_;            // handed out in any run since open_position_
  uint64_t persisted_ = 0;                  // known persisted position
  uint64_t delivered_at_crash_ = 0;
  uint64_t open_position_ = 0;  // position the current run started after
  uint64_t last_seq_ = 0;       // last handed out this run
  uint64_t last_id_ = 0;
  std::set<uint64_t> run_seqs_;
  std::map<uint64_t, uint64_t> run_ids_;
  std::vector<uint64_t> outstanding_;  // handed out, not marked
};

TEST(spool_model, random_operations_keep_the_contract) {
  const uint64_t seeds = env_number("SQSRELAY_SPOOL_SEEDS", 12);
  const uint64_t ops = env_number("SQSRELAY_SPOOL_OPS", 400);
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    model_run run(seed);
    for (uint64_t i = 0; i < ops && !::testing::Test::HasFailure(); ++i) run.step();
    run.finish();
    if (std::getenv("SQSRELAY_SPOOL_VERBOSE"))
      std::fprintf(stderr, "seed %lu: %s\n", seed, run.summary().c_str());
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace sqsrelay::spool
