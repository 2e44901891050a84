#include "server/queue.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/hash.h"
#include "server/store_format.h"

namespace sqsrelay::server {

uint32_t message_tag(const message_id& id) {
  uint32_t t;
  std::memcpy(&t, id.data(), sizeof t);
  return t;
}

queue::queue(queue_metadata meta, queue_context& ctx)
    : id_(meta.id),
      name_(meta.name),
      ctx_(ctx),
      meta_(std::move(meta)),
      attrs_(std::make_shared<const queue_attributes>(meta_.attributes)),
      next_seq_(ctx.next_seq.load()) {}

queue_metadata queue::metadata() const {
  std::lock_guard lock(mu_);
  return meta_;
}

std::shared_ptr<const queue_attributes> queue::attributes() const {
  std::lock_guard lock(mu_);
  return attrs_;
}

void queue::update_metadata(const std::function<void(queue_metadata&)>& fn) {
  std::lock_guard lock(mu_);
  fn(meta_);
  attrs_ = std::make_shared<const queue_attributes>(meta_.attributes);
}

void queue::start_seqs(uint64_t floor) {
  std::lock_guard lock(mu_);
  next_seq_ = std::max(floor, max_seq_ + 1);
}

void queue::mark_deleted() {
  deleted_ = true;
  std::lock_guard lock(mu_);
  wake_waiters(waiters_.size());
}

bool queue::expired(const message_entry& e, int64_t now_ms) const {
  return e.sent_ms + int64_t{meta_.attributes.message_retention_period} * 1000 <= now_ms;
}

result<uint64_t> queue::send(std::span<const prepared_message> msgs, int64_t now_ms,
                             std::string_view sender_id) {
  std::lock_guard lock(mu_);
  scratch_.clear();
  put_u64(scratch_, id_);
  put_u16(scratch_, static_cast<uint16_t>(msgs.size()));
  // Blob offsets inside the payload, to turn the record's location into per-message ones.
  std::array<std::pair<uint32_t, uint32_t>, 16> spans{};
  uint64_t first_seq = next_seq_.fetch_add(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    size_t len_at = scratch_.size();
    put_u32(scratch_, 0);
    size_t n = encode_message(scratch_, msgs[i], first_seq + i, now_ms, sender_id);
    uint32_t n32 = static_cast<uint32_t>(n);
    std::memcpy(scratch_.data() + len_at, &n32, 4);  // little-endian host (x86-64, arm64)
    spans[i] = {static_cast<uint32_t>(len_at + 4), n32};
  }
  std::string_view part(scratch_);
  auto appended = ctx_.log->append(store_format::send_batch, std::span(&part, 1),
                                    static_cast<uint32_t>(msgs.size()));
  if (!appended) return appended.error();
  size_t became_ready = 0;
  for (size_t i = 0; i < msgs.size(); ++i) {
    message_entry e;
    e.loc = appended->loc;
    e.loc.offset += spans[i].first;
    e.loc.length = spans[i].second;
    e.sent_ms = now_ms;
    e.tag = message_tag(msgs[i].id);
    uint64_t seq = first_seq + i;
    if (msgs[i].delay_seconds > 0) {
      e.state = message_state::delayed;
      e.due_ms = now_ms + int64_t{msgs[i].delay_seconds} * 1000;
      delayed_.push({e.due_ms, seq, 0});
      ++n_delayed_;
      messages_.insert(seq, e);
    } else {
      e.state = message_state::ready;
      ready_.push_back(seq);
      ++n_ready_;
      ++became_ready;
      messages_.insert(seq, e);
    }
  }
  max_seq_ = std::max(max_seq_, first_seq + msgs.size() - 1);
  wake_waiters(became_ready);
  return appended->lsn;
}

void queue::make_ready(uint64_t seq, message_entry& e) {
  if (e.state == message_state::delayed) --n_delayed_;
  if (e.state == message_state::inflight) --n_inflight_;
  e.state = message_state::ready;
  e.due_ms = 0;
  ++n_ready_;
  ready_.push_back(seq);
  if (!e.expiry_tracked) {
    e.expiry_tracked = true;
    late_expiry_.push({e.sent_ms, seq, 0});
  }
}

void queue::promote_due(int64_t now_ms) {
  auto drain = [&](min_heap& h, message_state from) {
    size_t n = 0;
    while (!h.empty() && h.top().due_ms <= now_ms) {
      timed t = h.top();
      h.pop();
      auto e = messages_.get(t.seq);
      if (!e || e->state != from || e->gen != t.gen || e->due_ms != t.due_ms)
        continue;  // stale heap entry
      make_ready(t.seq, *e);
      messages_.put(t.seq, *e);
      ++n;
    }
    return n;
  };
  size_t n = drain(delayed_, message_state::delayed) + drain(inflight_, message_state::inflight);
  if (n) wake_waiters(n);
}

std::array<char, 40> queue::encode_handle(uint64_t seq, const message_entry& e) const {
  static_assert(4 * ((handle_bytes + 2) / 3) == 40);
  char raw[handle_bytes];
  const uint32_t epoch = ctx_.epoch;
  std::memcpy(raw, &id_, 8);  // little-endian host, as put_u64 writes
  std::memcpy(raw + 8, &seq, 8);
  std::memcpy(raw + 16, &e.gen, 4);
  std::memcpy(raw + 20, &epoch, 4);
  std::memcpy(raw + 24, &e.tag, 4);
  std::array<char, 40> text;
  base64_encode_to(std::string_view(raw, handle_bytes), text.data());
  return text;
}

std::optional<queue::decoded_handle> queue::decode_handle(std::string_view h) {
  // Reused per thread: a decoded handle (28 bytes) does not fit the small-string buffer.
  thread_local std::string raw;
  if (h.size() != 4 * ((handle_bytes + 2) / 3) || !base64_decode(h, raw) ||
      raw.size() != handle_bytes)
    return std::nullopt;
  byte_reader r(raw);
  decoded_handle d;
  if (!r.u64(d.queue_id) || !r.u64(d.seq) || !r.u32(d.gen) || !r.u32(d.epoch) ||
      !r.u32(d.tag))
    return std::nullopt;
  return d;
}

queue::handle_status queue::resolve_handle(std::string_view h, uint64_t& seq) const {
  auto d = decode_handle(h);
  if (!d || d->queue_id != id_) return handle_status::invalid;
  seq = d->seq;
  auto e = messages_.get(d->seq);
  if (!e || e->tag != d->tag) return handle_status::stale_or_gone;
  // A handle from before a restart still names the latest receive if nobody received the
  // message since.
  bool current = d->epoch == ctx_.epoch ? e->gen == d->gen : e->gen == 0;
  return current ? handle_status::ok : handle_status::stale_or_gone;
}

queue::receive_result queue::receive(const receive_options& o) {
  receive_result out;
  std::lock_guard lock(mu_);
  promote_due(o.now_ms);
  if (n_inflight_ >= max_inflight_messages) {
    out.error = sqs::errors::over_limit(
        fmt::format("Too many messages in flight (limit {}).", max_inflight_messages));
    return out;
  }
  scratch_.clear();
  if (!ready_.empty()) out.messages.reserve(static_cast<size_t>(o.max_messages));
  while (out.messages.size() < static_cast<size_t>(o.max_messages) && !ready_.empty()) {
    uint64_t seq = ready_.front();
    ready_.pop_front();
    auto found = messages_.get(seq);
    if (!found || found->state != message_state::ready) continue;
    message_entry& e = *found;
    if (expired(e, o.now_ms)) {
      --n_ready_;
      erase_locked(seq);
      continue;
    }
    if (o.dead_letter && meta_.attributes.max_receive_count > 0 &&
        e.receive_count >= static_cast<uint32_t>(meta_.attributes.max_receive_count)) {
      uint64_t new_seq = o.dead_letter->allocate_seqs(1);
      put_u64(scratch_, id_);
      put_u64(scratch_, seq);
      put_u64(scratch_, o.dead_letter->id());
      put_u64(scratch_, new_seq);
      std::string_view part(scratch_);
      auto appended = ctx_.log->append(store_format::move, std::span(&part, 1));
      scratch_.clear();
      if (appended) {
        out.moved.emplace_back(new_seq, e);
        --n_ready_;
        unindex_locked(seq);
        out.lsn = appended->lsn;
        continue;
      }
    }
    ++e.receive_count;
    ++e.gen;
    if (e.first_receive_ms == 0) e.first_receive_ms = o.now_ms;
    e.last_receive_ms = o.now_ms;
    e.state = message_state::inflight;
    --n_ready_;
    ++n_inflight_;
    e.due_ms = o.now_ms + int64_t{o.visibility_timeout} * 1000;
    inflight_.push({e.due_ms, seq, e.gen});
    messages_.put(seq, e);
    auto& r = out.messages.emplace_back(received_message{
        seq, e.loc, e.receive_count, e.first_receive_ms, encode_handle(seq, e), {}});
    if (!dead_letter_sources_.empty()) {
      auto src = dead_letter_sources_.find(seq);
      if (src != dead_letter_sources_.end()) r.dead_letter_source = source_arns_[src->second];
    }
  }
  if (!out.messages.empty()) log_receives(out.messages, o.now_ms);
  if (out.messages.empty() && o.park_if_empty) waiters_.push_back(o.park_if_empty);
  return out;
}

// Receive counts survive restarts through a `receive` record. It is not awaited: a crash
// may lose the last receives' counts (counts are approximate in SQS too), never a message.
void queue::log_receives(const std::vector<received_message>& msgs, int64_t now_ms) {
  scratch_.clear();
  put_u64(scratch_, id_);
  put_u64(scratch_, static_cast<uint64_t>(now_ms));
  put_u16(scratch_, static_cast<uint16_t>(msgs.size()));
  for (const auto& m : msgs) put_u64(scratch_, m.seq);
  std::string_view part(scratch_);
  (void)ctx_.log->append(store_format::receive, std::span(&part, 1), 0, wal::sync_mode::lazy);
}

void queue::note_receive(uint64_t seq, int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto e = messages_.get(seq);
  if (!e) return;
  ++e->receive_count;
  if (e->first_receive_ms == 0) e->first_receive_ms = now_ms;
  messages_.put(seq, *e);
}

void queue::unpark(queue_waiter* w) {
  std::lock_guard lock(mu_);
  std::erase(waiters_, w);
}

void queue::wake_waiters(size_t n) {
  while (n-- > 0 && !waiters_.empty()) {
    waiters_.front()->wake();
    waiters_.erase(waiters_.begin());
  }
}

void queue::erase_locked(uint64_t seq) {
  auto e = messages_.get(seq);
  if (!e) return;
  ctx_.log->release(e->loc.segment);
  unindex_locked(seq);
}

void queue::unindex_locked(uint64_t seq) {
  messages_.erase(seq);
  if (!dead_letter_sources_.empty()) dead_letter_sources_.erase(seq);
}

void queue::note_source_locked(uint64_t seq, std::string_view source_arn) {
  if (source_arn.empty()) return;
  // Few distinct sources feed one dead-letter queue: a linear scan finds the interned ARN.
  auto it = std::find(source_arns_.begin(), source_arns_.end(), source_arn);
  if (it == source_arns_.end()) it = source_arns_.insert(source_arns_.end(), std::string(source_arn));
  dead_letter_sources_[seq] = static_cast<uint32_t>(it - source_arns_.begin());
}

queue::delete_result queue::delete_messages(std::span<const std::string_view> handles) {
  delete_result out;
  out.status.reserve(handles.size());
  std::lock_guard lock(mu_);
  scratch_.clear();
  put_u64(scratch_, id_);
  put_u16(scratch_, 0);
  uint16_t count = 0;
  std::array<uint64_t, 16> seqs{};
  bool gone = false;
  for (auto h : handles) {
    uint64_t seq = 0;
    auto st = resolve_handle(h, seq);
    out.status.push_back(st);
    gone = gone || st == handle_status::stale_or_gone;
    if (st != handle_status::ok) continue;
    if (std::find(seqs.begin(), seqs.begin() + count, seq) != seqs.begin() + count) continue;
    put_u64(scratch_, seq);
    seqs[count++] = seq;
  }
  // Answering "deleted" for a message already gone must wait until whatever removed it is
  // durable, or a crash could bring back a message whose delete was acknowledged.
  if (gone) out.lsn = ctx_.log->last_lsn();
  if (count == 0) return out;
  std::memcpy(scratch_.data() + 8, &count, 2);
  std::string_view part(scratch_);
  auto appended = ctx_.log->append(store_format::delete_batch, std::span(&part, 1));
  if (!appended) {
    out.store_error = appended.error();
    return out;
  }
  for (uint16_t i = 0; i < count; ++i) {
    message_state state{};
    uint32_t tag = 0;
    (void)messages_.peek(seqs[i], state, tag);
    if (state == message_state::inflight) --n_inflight_;
    else if (state == message_state::ready) --n_ready_;
    else --n_delayed_;
    erase_locked(seqs[i]);
  }
  out.lsn = appended->lsn;
  return out;
}

std::optional<sqs::api_error> queue::change_visibility(std::string_view handle, int timeout_s,
                                                       int64_t now_ms) {
  std::lock_guard lock(mu_);
  promote_due(now_ms);
  auto d = decode_handle(handle);
  if (!d || d->queue_id != id_) return sqs::errors::receipt_handle_is_invalid(handle);
  uint64_t seq = d->seq;
  auto found = messages_.get(seq);
  if (!found || found->tag != d->tag) return sqs::errors::message_gone_for_visibility(handle);
  // As SQS answers (recorded against AWS in LocalStack's validated suite): any handle of
  // the message will do, also one from an earlier receive; when the message is not in
  // flight (its visibility ran out) the call succeeds and changes nothing.
  if (found->state != message_state::inflight) return std::nullopt;
  message_entry& e = *found;
  // The visibility timeout counts from the receive and cannot pass 12 hours after it.
  if (now_ms + int64_t{timeout_s} * 1000 > e.last_receive_ms + 43200 * 1000LL)
    return sqs::errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
        "for the message is beyond the limit [43200 seconds]",
        timeout_s));
  if (timeout_s == 0) {
    make_ready(seq, e);
    messages_.put(seq, e);
    wake_waiters(1);
    return std::nullopt;
  }
  e.due_ms = now_ms + int64_t{timeout_s} * 1000;
  inflight_.push({e.due_ms, seq, e.gen});
  messages_.put(seq, e);
  return std::nullopt;
}

std::variant<uint64_t, sqs::api_error> queue::purge(int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (last_purge_ms_ && now_ms - last_purge_ms_ < 60000) return sqs::errors::purge_in_progress(name_);
  scratch_.clear();
  put_u64(scratch_, id_);
  std::string_view part(scratch_);
  auto appended = ctx_.log->append(store_format::purge, std::span(&part, 1));
  if (!appended)
    return sqs::errors::service_unavailable("The message store rejected the purge: " +
                                            appended.error().message());
  last_purge_ms_ = now_ms;
  clear_locked();
  return appended->lsn;
}

queue_counts queue::counts(int64_t now_ms) {
  std::lock_guard lock(mu_);
  promote_due(now_ms);
  return {n_ready_, n_inflight_, n_delayed_};
}

int64_t queue::next_due_ms() {
  std::lock_guard lock(mu_);
  int64_t due = 0;
  if (!delayed_.empty()) due = delayed_.top().due_ms;
  if (!inflight_.empty() && (due == 0 || inflight_.top().due_ms < due))
    due = inflight_.top().due_ms;
  return due;
}

size_t queue::expire(int64_t now_ms) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  const int64_t retention_ms = int64_t{meta_.attributes.message_retention_period} * 1000;
  // Entries of messages deleted early stay until their expiry; past twice the live messages
  // they are dropped in one pass, so the heap stays in proportion to the queue.
  if (late_expiry_.size() > 2 * messages_.size() + 1024) {
    std::vector<timed> live;
    live.reserve(messages_.size());
    for (; !late_expiry_.empty(); late_expiry_.pop()) {
      const timed t = late_expiry_.top();
      auto e = messages_.get(t.seq);
      if (e && e->expiry_tracked && e->sent_ms == t.due_ms) live.push_back(t);
    }
    late_expiry_ = min_heap(std::greater<timed>(), std::move(live));
  }
  while (!late_expiry_.empty() && late_expiry_.top().due_ms + retention_ms <= now_ms) {
    const uint64_t seq = late_expiry_.top().seq;
    late_expiry_.pop();
    auto e = messages_.get(seq);
    if (!e) continue;
    // Expired wherever it is (SQS deletes it in flight too); stale heap entries skip it.
    if (e->state == message_state::ready) --n_ready_;
    if (e->state == message_state::inflight) --n_inflight_;
    if (e->state == message_state::delayed) --n_delayed_;
    erase_locked(seq);
    ++n;
  }
  while (!ready_.empty()) {
    auto e = messages_.get(ready_.front());
    if (e && e->state == message_state::ready) {
      if (!expired(*e, now_ms)) break;
      --n_ready_;
      erase_locked(ready_.front());
      ++n;
    }
    ready_.pop_front();
  }
  return n;
}

size_t queue::late_expiry_entries() const {
  std::lock_guard lock(mu_);
  return late_expiry_.size();
}

bool queue::restore(uint64_t seq, const message_entry& e) {
  std::lock_guard lock(mu_);
  max_seq_ = std::max(max_seq_, seq);
  return messages_.insert(seq, e);
}

void queue::rebuild(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> seqs;
  seqs.reserve(messages_.size());
  messages_.for_each([&](uint64_t seq, const message_entry&) { seqs.push_back(seq); });
  ready_.clear();
  late_expiry_ = {};
  delayed_ = {};
  inflight_ = {};
  n_ready_ = n_inflight_ = n_delayed_ = 0;
  int64_t newest_sent = INT64_MIN;
  for (uint64_t seq : seqs) {
    message_entry e = *messages_.get(seq);
    e.gen = 0;
    e.expiry_tracked = false;
    if (e.sent_ms < newest_sent) {  // moved in from a source queue: out of send order
      e.expiry_tracked = true;
      late_expiry_.push({e.sent_ms, seq, 0});
    }
    newest_sent = std::max(newest_sent, e.sent_ms);
    if (e.due_ms > now_ms && e.receive_count == 0) {
      e.state = message_state::delayed;
      delayed_.push({e.due_ms, seq, 0});
      ++n_delayed_;
    } else {
      e.state = message_state::ready;
      e.due_ms = 0;
      ready_.push_back(seq);
      ++n_ready_;
    }
    messages_.put(seq, e);
  }
}

void queue::forget(uint64_t seq) {
  std::lock_guard lock(mu_);
  erase_locked(seq);
}

std::optional<message_entry> queue::take(uint64_t seq) {
  std::lock_guard lock(mu_);
  auto e = messages_.get(seq);
  if (!e) return std::nullopt;
  unindex_locked(seq);
  return e;
}

bool queue::restore_moved(uint64_t seq, const message_entry& e, std::string_view source_arn) {
  std::lock_guard lock(mu_);
  max_seq_ = std::max(max_seq_, seq);
  if (!messages_.insert(seq, e)) return false;
  note_source_locked(seq, source_arn);
  return true;
}

void queue::adopt(uint64_t seq, message_entry e, int64_t now_ms, std::string_view source_arn) {
  std::lock_guard lock(mu_);
  note_source_locked(seq, source_arn);
  e.gen = 0;
  e.due_ms = now_ms;
  e.state = message_state::delayed;  // counted by make_ready below
  ++n_delayed_;
  make_ready(seq, e);
  messages_.put(seq, e);
  max_seq_ = std::max(max_seq_, seq);
  wake_waiters(1);
}

void queue::clear() {
  std::lock_guard lock(mu_);
  clear_locked();
}

void queue::clear_locked() {
  // One release per segment rather than per message (each takes the WAL's mutex).
  std::map<uint32_t, uint32_t> refs;
  messages_.for_each([&](uint64_t, const message_entry& e) { ++refs[e.loc.segment]; });
  for (auto [segment, n] : refs) ctx_.log->release(segment, n);
  messages_.clear();
  dead_letter_sources_.clear();
  ready_.clear();
  late_expiry_ = {};
  delayed_ = {};
  inflight_ = {};
  n_ready_ = n_inflight_ = n_delayed_ = 0;
}

}  // namespace sqsrelay::server
