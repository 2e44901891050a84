#include "server/message_index.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

namespace sqsrelay::server {
namespace {

message_entry entry(uint64_t seq) {
  message_entry e;
  e.loc = {static_cast<uint32_t>(1 + seq % 7), static_cast<uint32_t>(200 + seq % 13), seq * 3};
  e.sent_ms = static_cast<int64_t>(seq) + 1000;
  e.tag = static_cast<uint32_t>(seq * 2654435761u);
  e.state = message_state::ready;
  return e;
}

void expect_equal(const message_entry& a, const message_entry& b) {
  EXPECT_EQ(a.loc.segment, b.loc.segment);
  EXPECT_EQ(a.loc.length, b.loc.length);
  EXPECT_EQ(a.loc.offset, b.loc.offset);
  EXPECT_EQ(a.sent_ms, b.sent_ms);
  EXPECT_EQ(a.due_ms, b.due_ms);
  EXPECT_EQ(a.first_receive_ms, b.first_receive_ms);
  EXPECT_EQ(a.last_receive_ms, b.last_receive_ms);
  EXPECT_EQ(a.receive_count, b.receive_count);
  EXPECT_EQ(a.gen, b.gen);
  EXPECT_EQ(a.tag, b.tag);
  EXPECT_EQ(a.state, b.state);
}

TEST(MessageIndex, InsertGetPutErase) {
  message_index idx;
  const uint64_t base = 1'795'240'985'000'000;  // seqs start at a clock in microseconds
  EXPECT_FALSE(idx.get(base));
  EXPECT_TRUE(idx.insert(base, entry(base)));
  EXPECT_FALSE(idx.insert(base, entry(base + 1)));  // present: unchanged
  expect_equal(*idx.get(base), entry(base));
  message_entry e = entry(base);
  e.state = message_state::inflight;
  e.due_ms = 5000;
  e.receive_count = 3;
  e.gen = 2;
  e.first_receive_ms = 4000;
  e.last_receive_ms = 4500;
  idx.put(base, e);
  expect_equal(*idx.get(base), e);
  message_state st{};
  uint32_t tag = 0;
  ASSERT_TRUE(idx.peek(base, st, tag));
  EXPECT_EQ(st, message_state::inflight);
  EXPECT_EQ(tag, e.tag);
  idx.put(base, entry(base));  // back to no receive state: the side entry goes
  expect_equal(*idx.get(base), entry(base));
  EXPECT_TRUE(idx.erase(base));
  EXPECT_FALSE(idx.erase(base));
  EXPECT_FALSE(idx.contains(base));
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_LE(idx.memory_bytes(), 4096u);  // the chunk went with its last message
}

TEST(MessageIndex, MemoryIsFlatAndFreedWithTheMessages) {
  message_index idx;
  const uint64_t base = 1'000'000'007;
  const uint64_t n = 200'000;
  for (uint64_t s = base; s < base + n; ++s) ASSERT_TRUE(idx.insert(s, entry(s)));
  EXPECT_EQ(idx.size(), n);
  // 32 bytes a message plus at most two partly used chunks of 1024 slots.
  EXPECT_LE(idx.memory_bytes(), n * 32 + 2 * 1024 * 32 + 4096);
  for (uint64_t s = base; s < base + n; ++s) ASSERT_TRUE(idx.erase(s));
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_LE(idx.memory_bytes(), 4096u);  // every chunk freed (the side map may keep buckets)
}

TEST(MessageIndex, MatchesAMapUnderRandomOperations) {
  message_index idx;
  std::map<uint64_t, message_entry> model;
  std::mt19937_64 rng(7);
  const uint64_t base = 1u << 20;
  for (int i = 0; i < 200'000; ++i) {
    const uint64_t seq = base + rng() % 5000;
    switch (rng() % 4) {
      case 0: {
        bool inserted = model.emplace(seq, entry(seq)).second;
        EXPECT_EQ(idx.insert(seq, entry(seq)), inserted);
        break;
      }
      case 1: {
        message_entry e = entry(seq);
        e.state = static_cast<message_state>(rng() % 3);
        e.receive_count = static_cast<uint32_t>(rng() % 2);
        e.due_ms = static_cast<int64_t>(rng() % 2) * 77;
        e.gen = static_cast<uint32_t>(rng() % 2);
        model[seq] = e;
        idx.put(seq, e);
        break;
      }
      case 2:
        EXPECT_EQ(idx.erase(seq), model.erase(seq) == 1);
        break;
      default: {
        auto got = idx.get(seq);
        auto it = model.find(seq);
        ASSERT_EQ(got.has_value(), it != model.end());
        if (got) expect_equal(*got, it->second);
      }
    }
  }
  EXPECT_EQ(idx.size(), model.size());
  std::vector<uint64_t> seen;
  idx.for_each([&](uint64_t seq, const message_entry& e) {
    seen.push_back(seq);
    expect_equal(e, model.at(seq));
  });
  std::vector<uint64_t> expected;
  for (auto& [s, e] : model) expected.push_back(s);
  EXPECT_EQ(seen, expected);  // every entry, in seq order
  idx.clear();
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_FALSE(idx.contains(base));
}

}  // namespace
}  // namespace sqsrelay::server
