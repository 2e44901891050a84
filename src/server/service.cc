#include "server/service.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/catalog.h"
#include "server/store_format.h"

namespace sqsrelay::server {

bool valid_queue_name(std::string_view name) {
  if (name.empty() || name.size() > 80) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

service::service(const service_options& o, const clock& clk, random_source& rng)
    : opts_(o), clk_(clk), rng_(rng) {
  ctx_.epoch = static_cast<uint32_t>(rng.next());
}

service::~service() = default;

result<std::unique_ptr<service>> service::open(const service_options& o, const clock& clk,
                                               random_source& rng, std::string* error) {
  std::unique_ptr<service> s(new service(o, clk, rng));
  auto r = s->recover(error);
  if (!r) return r.error();
  return s;
}

result<void> service::recover(std::string* error) {
  wal::options wo;
  wo.dir = opts_.data_dir / "wal";
  wo.segment_bytes = opts_.segment_bytes;
  wo.sync = opts_.sync && !opts_.in_memory;
  wo.sync_linger_gap = opts_.sync_linger_gap;
  wo.sync_linger_max = opts_.sync_linger_max;
  wo.write_behind = opts_.write_behind;
  wo.preallocate = opts_.preallocate;
  wal::env* env = nullptr;
  if (opts_.in_memory) {
    mem_env_ = wal::make_mem_env();
    env = mem_env_.get();
  } else {
    std::error_code ec;
    std::filesystem::create_directories(wo.dir, ec);
    if (ec) {
      *error = fmt::format("cannot create data directory {}: {}", wo.dir.string(), ec.message());
      return error_code(ec.value(), boost::system::system_category());
    }
    env = &wal::default_posix_env();
    auto cat = load_catalog(opts_.data_dir / "catalog.json", error);
    if (!cat) return cat.error();
    next_queue_id_ = cat->next_queue_id;
    for (auto& m : cat->queues) {
      auto q = std::make_shared<queue>(m, ctx_);
      by_name_[m.name] = q;
      by_id_[m.id] = q;
    }
  }
  auto log = wal::log::open(wo, *env);
  if (!log) {
    *error = fmt::format("cannot open the message log in {}: {}", wo.dir.string(),
                         log.error().message());
    return log.error();
  }
  log_ = std::move(*log);
  ctx_.log = log_.get();
  auto stats = log_->replay([this](uint8_t type, std::span<const char> payload,
                                   wal::location loc) { replay_record(type, payload, loc); });
  if (!stats) {
    *error = fmt::format("cannot replay the message log: {}", stats.error().message());
    return stats.error();
  }
  // Sequence numbers must not be reused after a restart: records holding the highest ones
  // may have been lost (power cut) or deleted (segment reclaim). Start above both the
  // highest seen and a floor from the clock (microseconds: more than any run can allocate).
  auto wall_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           clk_.wall().time_since_epoch())
                                           .count());
  ctx_.next_seq = std::max(max_seq_seen_ + 1, wall_us);
  replay_ghosts_.clear();
  // Queue ids are never reused, even when the catalog lost track of some (a lost or older
  // catalog.json): a new queue must not inherit an old queue's records at the next replay.
  next_queue_id_ = std::max(next_queue_id_, max_queue_id_seen_ + 1);
  recovery_.unknown_queue_ids = unknown_queue_ids_.size();
  unknown_queue_ids_.clear();
  int64_t now = clk_.wall_ms();
  for (auto& [id, q] : by_id_) {
    q->start_seqs(ctx_.next_seq);
    q->rebuild(now);
    recovery_.messages += q->counts(now).visible + q->counts(now).delayed;
  }
  recovery_.queues = by_id_.size();
  recovery_.records = stats->records;
  recovery_.corrupt_records = stats->corrupt_records;
  recovery_.truncated_bytes = stats->truncated_bytes;
  return {};
}

void service::replay_record(uint8_t type, std::span<const char> payload, wal::location loc) {
  byte_reader r(std::string_view(payload.data(), payload.size()));
  uint64_t queue_id = 0;
  if (!r.u64(queue_id)) return;
  auto it = by_id_.find(queue_id);
  queue* q = it == by_id_.end() ? nullptr : it->second.get();
  max_queue_id_seen_ = std::max(max_queue_id_seen_, queue_id);
  if (!q && queue_id >= next_queue_id_) {  // never handed out, as far as the catalog knows
    ++recovery_.unknown_queue_records;
    unknown_queue_ids_.insert(queue_id);
  }
  // A queue deleted since: its messages are kept aside for the rest of the replay, because
  // a later `move` record may have taken one into a dead-letter queue that still exists.
  auto* ghost = q ? nullptr : &replay_ghosts_[queue_id];
  if (type == store_format::send_batch) {
    uint16_t count = 0;
    if (!r.u16(count)) return;
    for (uint16_t i = 0; i < count; ++i) {
      uint32_t len = 0;
      std::string_view blob;
      if (!r.u32(len)) return;
      size_t at = r.position();
      if (!r.bytes(len, blob)) return;
      byte_reader b(blob);
      uint64_t seq = 0, sent = 0;
      uint32_t delay = 0;
      std::string_view id;
      if (!b.u64(seq) || !b.bytes(16, id) || !b.u64(sent) || !b.u32(delay)) return;
      max_seq_seen_ = std::max(max_seq_seen_, seq);
      message_entry e;
      e.loc = {loc.segment, len, loc.offset + at};
      e.sent_ms = static_cast<int64_t>(sent);
      if (delay > 0) e.due_ms = e.sent_ms + int64_t{delay} * 1000;
      message_id mid;
      std::memcpy(mid.data(), id.data(), mid.size());
      e.tag = message_tag(mid);
      if (q && q->restore(seq, e)) log_->add_ref(loc.segment);
      if (ghost) ghost->emplace(seq, e);
    }
  } else if (type == store_format::delete_batch) {
    uint16_t count = 0;
    if (!r.u16(count)) return;
    for (uint16_t i = 0; i < count; ++i) {
      uint64_t seq = 0;
      if (!r.u64(seq)) return;
      if (q) q->forget(seq);
      if (ghost) ghost->erase(seq);
    }
  } else if (type == store_format::move) {
    uint64_t seq = 0, to = 0, new_seq = 0;
    if (!r.u64(seq) || !r.u64(to) || !r.u64(new_seq)) return;
    max_seq_seen_ = std::max(max_seq_seen_, new_seq);
    auto dst = by_id_.find(to);
    if (q) {
      auto e = q->take(seq);
      if (e && dst != by_id_.end()) {
        if (!dst->second->restore_moved(new_seq, *e, queue_arn(q->name())))
          log_->release(e->loc.segment);
      } else if (e) {
        log_->release(e->loc.segment);
      }
      return;
    }
    // From a queue deleted since (its name, and so DeadLetterQueueSourceArn, is gone).
    auto g = ghost->find(seq);
    if (g == ghost->end()) return;
    if (dst != by_id_.end()) {
      if (dst->second->restore_moved(new_seq, g->second, {})) log_->add_ref(g->second.loc.segment);
    } else {
      replay_ghosts_[to].emplace(new_seq, g->second);  // a chain through deleted queues
    }
    ghost->erase(g);
  } else if (type == store_format::purge) {
    if (q) q->clear();
    if (ghost) ghost->clear();
  } else if (type == store_format::receive) {
    uint64_t now = 0;
    uint16_t count = 0;
    if (!r.u64(now) || !r.u16(count) || !q) return;
    for (uint16_t i = 0; i < count; ++i) {
      uint64_t seq = 0;
      if (!r.u64(seq)) return;
      q->note_receive(seq, static_cast<int64_t>(now));
    }
  }
}

std::string service::queue_arn(std::string_view name) const {
  return fmt::format("arn:aws:sqs:{}:{}:{}", opts_.region, opts_.account_id, name);
}

std::string service::queue_url(std::string_view host, std::string_view name) const {
  return fmt::format("{}://{}/{}/{}", opts_.url_scheme, host, opts_.account_id, name);
}

std::shared_ptr<queue> service::find(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::shared_ptr<queue> service::find_by_url(std::string_view url) const {
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  auto q = url.find('?');
  if (q != std::string_view::npos) url = url.substr(0, q);
  auto slash = url.rfind('/');
  std::string_view name = slash == std::string_view::npos ? url : url.substr(slash + 1);
  return find(name);
}

std::shared_ptr<queue> service::find_by_arn(std::string_view arn) const {
  std::string prefix = queue_arn("");
  if (arn.substr(0, prefix.size()) != prefix) return nullptr;
  return find(arn.substr(prefix.size()));
}

service::create_result service::create_queue(
    std::string_view name, const std::vector<std::pair<std::string, std::string>>& attrs,
    const std::map<std::string, std::string>& tags) {
  for (auto& [k, v] : attrs)
    if (k == "FifoQueue" && v == "true") {
      if (!name.ends_with(".fifo"))
        return sqs::errors::invalid_parameter_value(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or "
            "underscores, must end with .fifo suffix and be 1 to 80 in length.");
      return sqs::errors::unsupported_operation(
          "FIFO queues are not supported by this server yet.");
    }
  if (auto err = check_attribute_request(attrs, true)) return *err;
  if (!valid_queue_name(name))
    return sqs::errors::invalid_parameter_value(
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length");
  queue_attributes a;
  for (auto& [k, v] : attrs)
    if (auto err = a.set(k, v)) return *err;
  std::unique_lock lock(mu_);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    auto existing = it->second->metadata().attributes.settable();
    auto wanted = a.settable();
    for (auto& [k, v] : attrs) {
      (void)v;
      if (existing[k] != wanted[k]) return sqs::errors::queue_name_exists(k);
    }
    return it->second;
  }
  int64_t now_s = clk_.wall_ms() / 1000;
  queue_metadata m{next_queue_id_++, std::string(name), a, tags, now_s, now_s};
  auto q = std::make_shared<queue>(m, ctx_);
  by_name_[m.name] = q;
  by_id_[m.id] = q;
  if (auto r = persist_catalog_locked(); !r) {
    by_name_.erase(m.name);
    by_id_.erase(m.id);
    return sqs::errors::internal_failure("Could not persist the queue: " + r.error().message());
  }
  return q;
}

std::optional<sqs::api_error> service::delete_queue(const std::shared_ptr<queue>& q) {
  std::unique_lock lock(mu_);
  auto it = by_id_.find(q->id());
  if (it == by_id_.end()) return sqs::errors::queue_does_not_exist();
  by_id_.erase(it);
  by_name_.erase(q->name());
  if (auto r = persist_catalog_locked(); !r) {
    by_id_[q->id()] = q;
    by_name_[q->name()] = q;
    return sqs::errors::internal_failure("Could not persist the deletion: " +
                                         r.error().message());
  }
  q->mark_deleted();
  q->clear();
  return std::nullopt;
}

std::optional<sqs::api_error> service::update_queue(
    const std::shared_ptr<queue>& q, const std::function<void(queue_metadata&)>& fn) {
  std::unique_lock lock(mu_);
  if (q->deleted()) return sqs::errors::queue_does_not_exist();
  auto before = q->metadata();
  q->update_metadata([&](queue_metadata& m) {
    fn(m);
    m.modified_s = clk_.wall_ms() / 1000;
  });
  if (auto r = persist_catalog_locked(); !r) {
    q->update_metadata([&](queue_metadata& m) { m = before; });
    return sqs::errors::internal_failure("Could not persist the change: " + r.error().message());
  }
  return std::nullopt;
}

result<void> service::persist_catalog_locked() {
  if (opts_.in_memory) return {};
  catalog c;
  c.next_queue_id = next_queue_id_;
  for (auto& [id, q] : by_id_) c.queues.push_back(q->metadata());
  return save_catalog(opts_.data_dir / "catalog.json", c);
}

std::vector<std::shared_ptr<queue>> service::list(std::string_view prefix) const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<queue>> out;
  for (auto it = by_name_.lower_bound(prefix); it != by_name_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->second);
  }
  return out;
}

std::vector<std::shared_ptr<queue>> service::dead_letter_sources(std::string_view arn) const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<queue>> out;
  for (auto& [name, q] : by_name_)
    if (q->metadata().attributes.dead_letter_target_arn == arn) out.push_back(q);
  return out;
}

size_t service::expire_all() {
  std::vector<std::shared_ptr<queue>> qs;
  {
    std::shared_lock lock(mu_);
    for (auto& [id, q] : by_id_) qs.push_back(q);
  }
  size_t n = 0;
  int64_t now = clk_.wall_ms();
  for (auto& q : qs) n += q->expire(now);
  return n;
}

void service::note_store_refusal(std::string_view message) {
  const uint64_t n = ++store_refusals_;
  if (auto ec = log_->failure()) {
    if (!store_failure_logged_.exchange(true))
      spdlog::error(
          "store: the message log failed ({}): writes are answered with 503 "
          "ServiceUnavailable until sqsrelay restarts; reads go on. Fix the cause "
          "(free disk space), then restart: nothing acknowledged is lost",
          ec.message());
    return;
  }
  int64_t now = clk_.wall_ms();
  int64_t last = store_refusal_logged_ms_.load();
  if (now - last >= 10000 && store_refusal_logged_ms_.compare_exchange_strong(last, now))
    spdlog::warn("store: a write was refused: {} ({} refused so far)", message, n);
}

uint64_t service::live_messages() const {
  std::shared_lock lock(mu_);
  uint64_t n = 0;
  int64_t now = clk_.wall_ms();
  for (auto& [id, q] : by_id_) {
    auto c = q->counts(now);
    n += c.visible + c.inflight + c.delayed;
  }
  return n;
}

}  // namespace sqsrelay::server
