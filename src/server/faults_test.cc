// Fault specs: parsing, errors that name the bad item, queue precedence, rates and seeds.
#include "server/faults.h"

#include <gtest/gtest.h>

namespace sqsrelay::server {
namespace {

using namespace std::chrono_literals;

std::string fmt_seed(uint64_t seed) {
  return "throttle=0.1,error5xx=0.05,drop=0.02,drop_after=0.01,seed=" + std::to_string(seed);
}

TEST(fault_spec, parses_every_key) {
  std::string err;
  auto r = parse_fault_rule(
      "queue=orders, latency=10ms,jitter=500us,throttle=0.1,error5xx=0.05,drop=0.01,"
      "drop_after=0.02,partial=0.25,seed=42",
      err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->queue, "orders");
  EXPECT_EQ(r->latency, 10ms);
  EXPECT_EQ(r->jitter, 500us);
  EXPECT_DOUBLE_EQ(r->throttle, 0.1);
  EXPECT_DOUBLE_EQ(r->error5xx, 0.05);
  EXPECT_DOUBLE_EQ(r->drop, 0.01);
  EXPECT_DOUBLE_EQ(r->drop_after, 0.02);
  EXPECT_DOUBLE_EQ(r->partial, 0.25);
  EXPECT_EQ(r->seed, 42u);
  EXPECT_EQ(format_fault_rule(*r),
            "queue=orders,latency=10ms,jitter=500us,throttle=0.1,error5xx=0.05,drop=0.01,"
            "drop_after=0.02,partial=0.25,seed=42");
  auto bare = parse_fault_rule("latency=2,jitter=1s", err);
  ASSERT_TRUE(bare) << err;
  EXPECT_EQ(bare->latency, 2ms);
  EXPECT_EQ(bare->jitter, 1s);
}

TEST(fault_spec, errors_name_the_item) {
  std::string err;
  EXPECT_FALSE(parse_fault_rule("partial=1.5", err));
  EXPECT_NE(err.find("partial=1.5"), std::string::npos) << err;
  EXPECT_FALSE(parse_fault_rule("latency=fast", err));
  EXPECT_NE(err.find("latency=fast"), std::string::npos) << err;
  EXPECT_FALSE(parse_fault_rule("bogus=1", err));
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
  EXPECT_FALSE(parse_fault_rule("throttle", err));
  EXPECT_FALSE(parse_fault_rule("", err));
  EXPECT_FALSE(parse_fault_rule("throttle=0.6,error5xx=0.6", err));
  EXPECT_FALSE(parse_fault_rule("seed=-1", err));
  auto many = parse_fault_rules("# comment\nthrottle=0.1\n\nqueue=a,drop=x\n", err);
  EXPECT_FALSE(many);
  EXPECT_NE(err.find("line 4"), std::string::npos) << err;
}

TEST(fault_injector, inactive_until_set_and_queue_rule_wins) {
  fault_injector f;
  EXPECT_FALSE(f.active());
  EXPECT_EQ(f.decide("q").action, fault_action::none);
  std::string err;
  f.set({*parse_fault_rule("throttle=1", err), *parse_fault_rule("queue=calm,latency=1ms", err)});
  EXPECT_TRUE(f.active());
  EXPECT_EQ(f.decide("other").action, fault_action::throttle);
  auto calm = f.decide("calm");
  EXPECT_EQ(calm.action, fault_action::none);
  EXPECT_EQ(calm.delay, 1ms);
  EXPECT_EQ(f.stats().throttled.load(), 1u);
  f.set({});
  EXPECT_FALSE(f.active());
}

TEST(fault_injector, rates_are_honoured_and_seeds_repeat) {
  std::string err;
  auto run = [&](uint64_t seed) {
    fault_injector f;
    f.set({*parse_fault_rule(fmt_seed(seed), err)});
    std::vector<int> kinds(5, 0);
    size_t failed = 0;
    for (int i = 0; i < 20000; ++i) {
      kinds[static_cast<int>(f.decide("q").action)] += 1;
      failed += f.fail_entry(0.3);
    }
    kinds.push_back(static_cast<int>(failed));
    return kinds;
  };
  auto a = run(7), b = run(7);
  EXPECT_EQ(a, b);
  // 20,000 draws: each rate within a few standard deviations.
  EXPECT_NEAR(a[static_cast<int>(fault_action::throttle)], 2000, 250);
  EXPECT_NEAR(a[static_cast<int>(fault_action::error5xx)], 1000, 200);
  EXPECT_NEAR(a[static_cast<int>(fault_action::drop)], 400, 120);
  EXPECT_NEAR(a[static_cast<int>(fault_action::drop_after)], 200, 90);
  EXPECT_NEAR(a[5], 6000, 400);
}

}  // namespace
}  // namespace sqsrelay::server
