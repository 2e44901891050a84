// The index of one queue's live messages, keyed by sequence number, with a memory cost that
// stays flat as a queue grows to millions of messages.
//
// A queue's seqs are dense (each queue allocates its own, in increasing order), so the index
// is an array indexed by seq, cut into chunks of 1024 slots that are allocated when the first
// message of their range arrives and freed when the last one leaves. A slot is 32 bytes: the
// message's location in the WAL, its send time, tag and state. What only received or delayed
// messages need (visibility deadline, receive count and times, receive generation) lives in a
// side map holding entries just for those messages. A queue of never-received messages costs
// 32 bytes per message, with no rehashing steps; a chunk whose messages are consumed out of
// order stays allocated until its last message goes (at most 32 KiB per straggler).
//
// Not thread-safe: the owning queue's mutex guards it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "wal/log.h"

namespace sqsrelay::server {

enum class message_state : uint8_t { delayed, ready, inflight };

// One message's index state, as the queue reads and writes it.
struct message_entry {
  wal::location loc;
  int64_t sent_ms = 0;
  int64_t due_ms = 0;  // delayed: visible from; in flight: visibility deadline
  int64_t first_receive_ms = 0;
  int64_t last_receive_ms = 0;
  uint32_t receive_count = 0;
  uint32_t gen = 0;  // receives since this process started; part of the receipt handle
  uint32_t tag = 0;  // low bits of the message id: a handle names this message, not its seq
  message_state state = message_state::ready;
  bool expiry_tracked = false;  // in the queue's heap of out-of-order expiries (see queue.h)
};

class message_index {
 public:
  message_index() = default;
  message_index(const message_index&) = delete;
  message_index& operator=(const message_index&) = delete;
  ~message_index();

  size_t size() const { return size_; }
  bool contains(uint64_t seq) const { return slot_of(seq) != nullptr; }
  std::optional<message_entry> get(uint64_t seq) const;
  // Only the state and tag (no side-map lookup): the common checks on hot paths.
  bool peek(uint64_t seq, message_state& state, uint32_t& tag) const;
  // Inserts; false (and nothing changes) when seq is present.
  bool insert(uint64_t seq, const message_entry& e);
  // Overwrites a present entry or inserts a new one.
  void put(uint64_t seq, const message_entry& e);
  // Removes; false when absent.
  bool erase(uint64_t seq);
  void clear();

  // fn(seq, const message_entry&) for every entry, in seq order. fn must not modify the index.
  template <class F>
  void for_each(F&& fn) const;

  // Bytes held (chunks and side map), for tests and metrics.
  size_t memory_bytes() const;

 private:
  static constexpr unsigned chunk_bits = 10;
  static constexpr uint64_t chunk_slots = uint64_t{1} << chunk_bits;

  struct slot {  // 32 bytes
    uint64_t offset;
    uint32_t segment;
    uint32_t length;
    int64_t sent_ms;
    uint32_t tag;
    uint8_t state;  // message_state + 1; 0 = empty
    uint8_t has_info;
    uint8_t expiry_tracked;
    uint8_t unused;
  };
  static_assert(sizeof(slot) == 32);

  struct info {  // what only received, in-flight or delayed messages need
    int64_t due_ms;
    int64_t first_receive_ms;
    int64_t last_receive_ms;
    uint32_t receive_count;
    uint32_t gen;
  };

  struct chunk {
    slot slots[chunk_slots];
    uint32_t live = 0;
  };

  const slot* slot_of(uint64_t seq) const;
  slot* slot_of(uint64_t seq) {
    return const_cast<slot*>(static_cast<const message_index*>(this)->slot_of(seq));
  }
  chunk& chunk_for(uint64_t seq);
  void store(uint64_t seq, slot& s, const message_entry& e);
  message_entry load(uint64_t seq, const slot& s) const;

  boost::unordered_flat_map<uint64_t, std::unique_ptr<chunk>> chunks_;
  boost::unordered_flat_map<uint64_t, info> info_;
  size_t size_ = 0;
  // The chunk of the last lookup: consecutive operations mostly hit the same one.
  mutable uint64_t cached_key_ = UINT64_MAX;
  mutable chunk* cached_ = nullptr;
};

template <class F>
void message_index::for_each(F&& fn) const {
  std::vector<uint64_t> keys;
  keys.reserve(chunks_.size());
  for (const auto& [k, c] : chunks_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (uint64_t k : keys) {
    const chunk& c = *chunks_.find(k)->second;
    for (uint64_t i = 0; i < chunk_slots; ++i) {
      if (c.slots[i].state == 0) continue;
      const uint64_t seq = (k << chunk_bits) | i;
      fn(seq, load(seq, c.slots[i]));
    }
  }
}

}  // namespace sqsrelay::server
