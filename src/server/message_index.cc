#include "server/message_index.h"

namespace sqsrelay::server {

message_index::~message_index() = default;

const message_index::slot* message_index::slot_of(uint64_t seq) const {
  const uint64_t key = seq >> chunk_bits;
  if (key != cached_key_) {
    auto it = chunks_.find(key);
    if (it == chunks_.end()) return nullptr;
    cached_key_ = key;
    cached_ = it->second.get();
  }
  const slot& s = cached_->slots[seq & (chunk_slots - 1)];
  return s.state ? &s : nullptr;
}

message_index::chunk& message_index::chunk_for(uint64_t seq) {
  const uint64_t key = seq >> chunk_bits;
  if (key == cached_key_) return *cached_;
  auto [it, inserted] = chunks_.try_emplace(key);
  // Value-initialised: every slot starts empty (state 0).
  if (inserted) it->second = std::make_unique<chunk>();
  cached_key_ = key;
  cached_ = it->second.get();
  return *cached_;
}

void message_index::store(uint64_t seq, slot& s, const message_entry& e) {
  s.offset = e.loc.offset;
  s.segment = e.loc.segment;
  s.length = e.loc.length;
  s.sent_ms = e.sent_ms;
  s.tag = e.tag;
  s.state = static_cast<uint8_t>(static_cast<uint8_t>(e.state) + 1);
  s.expiry_tracked = e.expiry_tracked ? 1 : 0;
  const bool needs_info =
      e.due_ms != 0 || e.first_receive_ms != 0 || e.last_receive_ms != 0 ||
      e.receive_count != 0 || e.gen != 0;
  if (needs_info) {
    info_[seq] = info{e.due_ms, e.first_receive_ms, e.last_receive_ms, e.receive_count, e.gen};
  } else if (s.has_info) {
    info_.erase(seq);
  }
  s.has_info = needs_info ? 1 : 0;
}

message_entry message_index::load(uint64_t seq, const slot& s) const {
  message_entry e;
  e.loc = {s.segment, s.length, s.offset};
  e.sent_ms = s.sent_ms;
  e.tag = s.tag;
  e.state = static_cast<message_state>(s.state - 1);
  e.expiry_tracked = s.expiry_tracked != 0;
  if (s.has_info) {
    const info& i = info_.find(seq)->second;
    e.due_ms = i.due_ms;
    e.first_receive_ms = i.first_receive_ms;
    e.last_receive_ms = i.last_receive_ms;
    e.receive_count = i.receive_count;
    e.gen = i.gen;
  }
  return e;
}

std::optional<message_entry> message_index::get(uint64_t seq) const {
  const slot* s = slot_of(seq);
  if (!s) return std::nullopt;
  return load(seq, *s);
}

bool message_index::peek(uint64_t seq, message_state& state, uint32_t& tag) const {
  const slot* s = slot_of(seq);
  if (!s) return false;
  state = static_cast<message_state>(s->state - 1);
  tag = s->tag;
  return true;
}

bool message_index::insert(uint64_t seq, const message_entry& e) {
  chunk& c = chunk_for(seq);
  slot& s = c.slots[seq & (chunk_slots - 1)];
  if (s.state) return false;
  s.has_info = 0;
  store(seq, s, e);
  ++c.live;
  ++size_;
  return true;
}

void message_index::put(uint64_t seq, const message_entry& e) {
  if (slot* s = slot_of(seq)) {
    store(seq, *s, e);
    return;
  }
  (void)insert(seq, e);
}

bool message_index::erase(uint64_t seq) {
  slot* s = slot_of(seq);
  if (!s) return false;
  if (s->has_info) info_.erase(seq);
  *s = slot{};
  --size_;
  // slot_of() left the chunk cached.
  if (--cached_->live == 0) {
    chunks_.erase(cached_key_);
    cached_key_ = UINT64_MAX;
    cached_ = nullptr;
  }
  return true;
}

void message_index::clear() {
  chunks_.clear();
  info_.clear();
  size_ = 0;
  cached_key_ = UINT64_MAX;
  cached_ = nullptr;
}

size_t message_index::memory_bytes() const {
  return chunks_.size() * sizeof(chunk) +
         info_.bucket_count() * (sizeof(uint64_t) + sizeof(info));
}

}  // namespace sqsrelay::server
