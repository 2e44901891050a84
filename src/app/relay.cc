#include "app/relay.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/ingest_dead_letters.h"
#include "app/spool_record.h"
#include "base/prometheus.h"
#include "spool/async_append.h"
#include "wal/env.h"

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

using awaitable_token = asio::as_tuple_t<asio::use_awaitable_t<>>;

}  // namespace

// Waiters of ack = delivered batches: each covers a range of seqs and fires when every one
// of them has ended (delivered or dead-lettered), with the seqs that were dead-lettered and
// why. Completions may come before the waiter registers (the reader can deliver a record as
// soon as it is durable, before the append's coroutine resumes): those seqs wait in `early`
// (only records flagged ack = delivered are reported here, and each such record's batch
// registers a waiter, so `early` stays small).
struct relay::ack_tracker {
  struct failure {
    std::string code, detail;
  };
  using failures = std::vector<std::pair<uint64_t, failure>>;  // seq, why; in seq order
  struct waiter {
    uint64_t last = 0;
    size_t remaining = 0;
    failures failed;
    std::function<void(failures)> done;  // empty once the waiter gave up (a tombstone)
    std::function<void()> wake;          // stop waiting now (shutdown): cancels its timer
  };
  std::mutex mu;
  std::map<uint64_t, waiter> waiters;  // by first seq
  std::map<uint64_t, std::optional<failure>> early;
  bool released = false;  // shutting down: nobody waits for delivery any more

  static std::optional<failure> failure_of(const pipeline::outcome& o) {
    if (o.what != pipeline::outcome::kind::dead_lettered) return std::nullopt;
    if (!o.reason) return failure{"DeadLettered", "dead-lettered"};
    return failure{o.reason->code, o.reason->message};
  }

  void ended(uint64_t seq, const pipeline::outcome& o) {
    std::function<void(failures)> fire;
    failures failed;
    {
      std::lock_guard lock(mu);
      auto it = waiters.upper_bound(seq);
      if (it != waiters.begin() && std::prev(it)->second.last >= seq) {
        --it;
        if (auto f = failure_of(o)) it->second.failed.emplace_back(seq, std::move(*f));
        if (--it->second.remaining == 0) {
          fire = std::move(it->second.done);
          failed = std::move(it->second.failed);
          waiters.erase(it);
        }
      } else {
        early.emplace(seq, failure_of(o));
      }
    }
    if (fire) fire(std::move(failed));
  }

  // Registers a waiter for seqs [first, first + n); false (nothing registered, `done` not
  // called) when shutdown released the waiters and some of the seqs have not ended yet.
  bool add(uint64_t first, size_t n, std::function<void(failures)> done,
           std::function<void()> wake) {
    failures failed;
    {
      std::lock_guard lock(mu);
      size_t already = 0;
      for (auto it = early.lower_bound(first); it != early.end() && it->first < first + n;) {
        if (it->second) failed.emplace_back(it->first, std::move(*it->second));
        it = early.erase(it);
        ++already;
      }
      if (already < n) {
        if (released) return false;
        waiters[first] = waiter{first + n - 1, n - already, std::move(failed), std::move(done),
                                std::move(wake)};
        return true;
      }
    }
    done(std::move(failed));
    return true;
  }

  // Shutdown: every waiter stops waiting (and answers that the data stays spooled).
  void release() {
    std::vector<std::function<void()>> wakes;
    {
      std::lock_guard lock(mu);
      released = true;
      for (auto& [first, w] : waiters)
        if (w.done && w.wake) wakes.push_back(std::move(w.wake));
    }
    for (auto& wake : wakes) wake();
  }

  bool is_released() {
    std::lock_guard lock(mu);
    return released;
  }

  void give_up(uint64_t first) {
    std::lock_guard lock(mu);
    if (auto it = waiters.find(first); it != waiters.end()) it->second.done = nullptr;
  }
};

class relay::spool_sink final : public sources::ingest_sink {
 public:
  spool_sink(relay& r, std::string endpoint) : relay_(r), endpoint_(std::move(endpoint)) {}

  asio::awaitable<sources::submit_result> async_submit(sources::ingest_target target,
                                                       sources::ingest_batch batch) override {
    auto& stats = relay_.stats_;
    const sources::ingest_batch* batch_ptr = &batch;
    if (!batch.dead_letters().empty()) {
      std::vector<refused_message> none;
      auto ec = co_await write_ingest_dead_letters(*relay_.dead_letters_, target.queue,
                                                   batch_ptr, std::move(none));
      if (ec)
        co_return sources::submit_result::retry_later(
            relay_.opts_.retry_after, "the dead-letter file could not be written: " + ec.message());
      stats.dead_lettered += batch.dead_letters().size();
    }
    auto msgs = batch.messages();
    if (msgs.empty()) co_return sources::submit_result::accepted();
    bool wait_delivery = target.ack == sources::ack_mode::delivered;
    std::string buf;
    buf.reserve(batch.bytes() + msgs.size() * (32 + target.queue.size() + endpoint_.size()));
    std::vector<size_t> ends;
    ends.reserve(msgs.size());
    spool_message_view v;
    v.flags = wait_delivery ? spool_flag_ack_delivered : 0;
    v.endpoint = endpoint_;
    v.queue = target.queue;
    for (const auto& m : msgs) {
      v.body = m.body;
      v.attributes.assign(m.attributes.begin(), m.attributes.end());
      v.group_id = m.group_id;
      v.dedup_id = m.dedup_id;
      encode_spool_record(buf, v);
      ends.push_back(buf.size());
    }
    std::vector<std::string_view> records;
    records.reserve(ends.size());
    size_t begin = 0;
    for (size_t e : ends) {
      records.emplace_back(buf.data() + begin, e - begin);
      begin = e;
    }
    std::span<const std::string_view> record_span(records);
    auto [ec, first] = co_await spool::async_append(*relay_.spool_, record_span);
    if (ec == spool::errc::spool_full) {
      stats.spool_full += 1;
      co_return sources::submit_result::retry_later(relay_.opts_.retry_after,
                                                    "the spool is full");
    }
    if (ec == spool::errc::record_too_large) {
      // Many tiny elements can spool larger than their body (each record carries its route);
      // sending the same request again can never succeed, so not a 503.
      stats.spool_errors += 1;
      co_return sources::submit_result::refused(
          413, fmt::format("{} messages spool as {} bytes, more than one append may hold ({} "
                           "bytes); send them in smaller requests",
                           records.size(), buf.size() + 4 * records.size(),
                           relay_.opts_.spool.max_append_bytes));
    }
    if (ec) {
      stats.spool_errors += 1;
      co_return sources::submit_result::retry_later(relay_.opts_.retry_after,
                                                    "the spool could not store it: " + ec.message());
    }
    stats.spooled += records.size();
    if (!wait_delivery) co_return sources::submit_result::accepted();

    // ack = delivered: wait until every record ended (or the timeout: the data stays spooled
    // and will be delivered; the client may send it again, so at least once).
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex);
    auto ended = std::make_shared<delivery_state>();
    timer->expires_after(relay_.opts_.ack_delivered_timeout);
    auto cancel = [timer, ex] { asio::post(ex, [timer] { timer->cancel(); }); };
    bool waiting = relay_.acks_->add(
        first, records.size(),
        [ended, cancel](ack_tracker::failures f) {
          ended->failed = std::move(f);
          ended->done.store(true, std::memory_order_release);
          cancel();
        },
        cancel);
    if (waiting) {
      auto [tec] = co_await timer->async_wait(awaitable_token{});
      (void)tec;
    }
    if (!ended->done.load(std::memory_order_acquire)) {
      relay_.acks_->give_up(first);
      if (!ended->done.load(std::memory_order_acquire)) {
        if (relay_.acks_->is_released()) {
          stats.ack_released += 1;
          co_return sources::submit_result::retry_later(
              relay_.opts_.retry_after,
              "shutting down: stored in the spool, delivered to SQS after the restart");
        }
        stats.ack_timeouts += 1;
        co_return sources::submit_result::retry_later(
            relay_.opts_.retry_after, "stored, but not delivered to SQS within the timeout");
      }
    }
    co_return delivery_result(first, msgs, ended->failed);
  }

 private:
  // What the ack tracker reported, handed from the sender's thread to the coroutine: written
  // before `done` is set (release), read after it is seen (acquire).
  struct delivery_state {
    std::atomic<bool> done{false};
    ack_tracker::failures failed;
  };

  // accepted, listing the messages that were dead-lettered instead of delivered.
  sources::submit_result delivery_result(uint64_t first,
                                         std::span<const sources::ingest_batch::message> msgs,
                                         const ack_tracker::failures& failed) {
    auto r = sources::submit_result::accepted();
    r.undelivered.reserve(failed.size());
    for (const auto& [seq, f] : failed) {
      const auto& m = msgs[seq - first];
      r.undelivered.push_back({m.index, m.offset, f.code, f.detail});
    }
    std::sort(r.undelivered.begin(), r.undelivered.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    relay_.stats_.ack_undelivered += failed.size();
    return r;
  }

  relay& relay_;
  std::string endpoint_;
};

std::unique_ptr<relay> relay::open(relay_options o, std::string& err) {
  std::unique_ptr<relay> r(new relay);
  r->opts_ = std::move(o);
  auto& opts = r->opts_;
  if (opts.endpoints.empty()) {
    err = "no endpoints configured";
    return nullptr;
  }
  auto sp = spool::spool::open(opts.spool, wal::default_posix_env());
  if (!sp) {
    err = fmt::format("spool {}: {}", opts.spool.dir.string(), sp.error().message());
    return nullptr;
  }
  r->spool_ = std::move(*sp);
  std::string dlf = opts.dead_letter_file.empty()
                        ? (opts.spool.dir / "dead-letters.ndjson").string()
                        : opts.dead_letter_file;
  auto f = pipeline::ndjson_dead_letter_file::open(dlf);
  if (!f) {
    err = fmt::format("dead-letter file {}: {}", dlf, f.error().message());
    return nullptr;
  }
  r->dead_letters_ = std::move(*f);
  r->acks_ = std::make_unique<ack_tracker>();
  for (const auto& ep : opts.endpoints) {
    auto st = std::make_unique<endpoint_state>();
    st->name = ep.name;
    auto conn = pipeline::sqs_connection::create(r->io_.get_executor(), ep.connection, err);
    if (!conn) {
      err = fmt::format("endpoint '{}': {}", ep.name, err);
      return nullptr;
    }
    st->connection = std::move(*conn);
    st->sender = std::make_unique<pipeline::sender>(
        r->io_.get_executor(), st->connection->transport(), ep.sender, r->dead_letters_.get());
    st->sink = std::make_unique<spool_sink>(*r, ep.name);
    r->endpoints_.push_back(std::move(st));
  }
  r->io_thread_ = std::thread([rp = r.get()] {
    auto guard = asio::make_work_guard(rp->io_);
    rp->io_.run();
  });
  r->reader_ = std::thread([rp = r.get()] { rp->read_loop(); });
  auto rec = r->spool_->recovery();
  spdlog::info("spool {}: {} records to deliver (position {}, {} corrupt ranges quarantined, {} "
               "torn bytes cut)",
               opts.spool.dir.string(), rec.undelivered, rec.position, rec.corrupt_ranges,
               rec.truncated_bytes);
  for (const spool::missing_range& m : rec.missing) {
    spdlog::warn("spool {}: {}; those records are lost", opts.spool.dir.string(),
                 spool::describe(m));
  }
  if (rec.position_reset) {
    spdlog::warn(
        "spool {}: the position file was damaged and reset to 0: every record still "
        "spooled is delivered again",
        opts.spool.dir.string());
  }
  if (rec.stray_files > 0) {
    spdlog::info("spool {}: {} stray files ignored (kept)", opts.spool.dir.string(),
                 rec.stray_files);
  }
  return r;
}

relay::~relay() { stop(std::chrono::seconds(10)); }

sources::ingest_sink* relay::sink(std::string_view endpoint) {
  for (auto& ep : endpoints_)
    if (ep->name == endpoint) return ep->sink.get();
  return nullptr;
}

void relay::read_loop() {
  std::vector<spool::record> recs;
  while (!stopping_.load()) {
    auto n = spool_->read(opts_.read_batch, recs);
    if (!n) {
      spdlog::warn("spool read failed: {} (retrying)", n.error().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (*n == 0) {
      spool_->wait_readable(std::chrono::milliseconds(100));
      continue;
    }
    for (const auto& rec : recs) {
      if (stopping_.load()) return;  // handed out, not sent: delivered again after restart
      deliver(rec.seq, rec.data);
    }
  }
}

void relay::deliver(uint64_t seq, std::string_view data) {
  auto m = decode_spool_record(data);
  endpoint_state* ep = nullptr;
  if (m)
    for (auto& e : endpoints_)
      if (e->name == m->endpoint) ep = e.get();
  if (!m || !ep) {
    // Not ours to send (damaged beyond its checksum's reach, or its endpoint is gone from
    // the configuration): kept in the dead-letter file with the reason, never dropped.
    stats_.undecodable += 1;
    auto body = std::make_shared<pipeline::outbound_message>();
    body->body = std::string(data);
    auto why = std::make_shared<pipeline::rejection>(pipeline::rejection{
        pipeline::reject_reason::request_rejected, m ? "UnknownEndpoint" : "UndecodableRecord",
        m ? fmt::format("spool record {} is for endpoint '{}', which is not configured", seq,
                        m->endpoint)
          : fmt::format("spool record {} cannot be decoded", seq)});
    std::vector<pipeline::dead_letter_record> recs{{m ? m->queue : "", body.get(), why.get(), 0}};
    bool ack = m && (m->flags & spool_flag_ack_delivered);
    dead_letters_->write(std::move(recs), [this, seq, ack, body, why](error_code ec) {
      if (ec) return;  // not marked: tried again after a restart
      pipeline::outcome o;
      o.what = pipeline::outcome::kind::dead_lettered;
      o.reason = *why;
      finished(seq, ack, o);
    });
    return;
  }
  pipeline::outbound_message om;
  om.body = std::string(m->body);
  om.attributes.reserve(m->attributes.size());
  for (const auto& a : m->attributes)
    om.attributes.push_back({std::string(a.name), std::string(a.data_type), std::string(a.value)});
  om.group_id = std::string(m->group_id);
  om.dedup_id = std::string(m->dedup_id);
  bool ack = m->flags & spool_flag_ack_delivered;
  // Blocks while the sender is full: back-pressure reaches the spool, which keeps growing
  // on disk (to its budget) instead of memory.
  ep->sender->submit(m->queue, std::move(om),
                     [this, seq, ack](const pipeline::outcome& o) { finished(seq, ack, o); });
}

void relay::finished(uint64_t seq, bool ack_waiter, const pipeline::outcome& o) {
  switch (o.what) {
    case pipeline::outcome::kind::delivered:
      stats_.delivered += 1;
      break;
    case pipeline::outcome::kind::dead_lettered:
      stats_.dead_lettered += 1;
      break;
    case pipeline::outcome::kind::abandoned:
      stats_.abandoned += 1;  // stays in the spool: sent again after a restart
      return;
  }
  if (auto r = spool_->mark_delivered(seq); !r)
    spdlog::warn("spool: marking {} delivered failed: {}", seq, r.error().message());
  if (ack_waiter) acks_->ended(seq, o);
}

void relay::release_ack_waiters() {
  if (acks_) acks_->release();
}

void relay::stop(std::chrono::steady_clock::duration timeout) {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Senders first: a reader blocked in submit() returns once its sender is stopping.
  for (auto& ep : endpoints_) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (ep->sender) ep->sender->stop(std::max<std::chrono::steady_clock::duration>(left, {}));
  }
  if (reader_.joinable()) reader_.join();
  // A relay whose open() failed half-way has no spool (nor anything to persist).
  if (spool_) {
    if (auto r = spool_->persist_position(); !r)
      spdlog::warn("spool: persisting the delivery position failed: {}", r.error().message());
  }
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  io_.destroy_handlers();  // requests still on the wire, while their connections' pool lives
  for (auto& ep : endpoints_) {
    ep->sender.reset();
    ep->connection.reset();
  }
}

std::string relay::metrics_text() const {
  std::string out;
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  auto gauge = [&](std::string_view name, std::string_view help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  counter("sqsrelay_relay_spooled_total", "Messages appended to the spool and synced.",
          stats_.spooled);
  counter("sqsrelay_relay_delivered_total", "Spooled messages SQS accepted.", stats_.delivered);
  counter("sqsrelay_relay_dead_lettered_total", "Messages written to the dead-letter file.",
          stats_.dead_lettered);
  counter("sqsrelay_relay_abandoned_total",
          "Messages left in the spool at shutdown (sent after restart).", stats_.abandoned);
  counter("sqsrelay_relay_undecodable_total",
          "Spool records that could not be sent (damaged or unknown endpoint).",
          stats_.undecodable);
  counter("sqsrelay_relay_spool_full_total", "Batches refused because the spool was full.",
          stats_.spool_full);
  counter("sqsrelay_relay_spool_errors_total", "Batches the spool failed to store.",
          stats_.spool_errors);
  counter("sqsrelay_relay_ack_released_total",
          "ack = delivered batches answered 503 at shutdown before SQS took them all (they "
          "stay spooled and are delivered after the restart).",
          stats_.ack_released);
  counter("sqsrelay_relay_ack_timeouts_total",
          "ack = delivered batches not delivered within the timeout.", stats_.ack_timeouts);
  counter("sqsrelay_relay_ack_undelivered_total",
          "Messages of ack = delivered batches dead-lettered instead of delivered.",
          stats_.ack_undelivered);
  auto s = spool_->get_stats();
  gauge("sqsrelay_spool_bytes", "Spool bytes on disk.", s.bytes_on_disk);
  gauge("sqsrelay_spool_budget_bytes", "Spool disk budget.", s.budget_bytes);
  gauge("sqsrelay_spool_segments", "Spool segment files.", s.segments);
  gauge("sqsrelay_spool_backlog_records", "Records spooled and not yet delivered.",
        s.durable_seq > s.delivered_seq ? s.durable_seq - s.delivered_seq : 0);
  counter("sqsrelay_spool_fsyncs_total", "Spool group commits.", s.fsyncs);
  counter("sqsrelay_spool_corrupt_ranges_total", "Damaged spool ranges quarantined.",
          s.corrupt_ranges);
  counter("sqsrelay_spool_missing_ranges_total",
          "Seq ranges past the delivery position found in no spool segment at open (a segment "
          "deleted or emptied).",
          s.missing_ranges);
  counter("sqsrelay_spool_missing_records_total",
          "Seqs in those ranges (at most the records lost).", s.missing_seqs);
  // One metric family per counter, one sample per endpoint: Prometheus' text format allows
  // a single HELP/TYPE per family.
  using counters = pipeline::sender_counters;
  struct sender_metric {
    std::string_view name, help;
    uint64_t counters::*field;
  };
  static constexpr sender_metric sender_metrics[] = {
      {"sqsrelay_sender_api_calls_total", "SendMessageBatch requests.", &counters::api_calls},
      {"sqsrelay_sender_entries_total", "Entries sent in those requests.", &counters::entries_sent},
      {"sqsrelay_sender_retried_total", "Entry re-sends.", &counters::retried},
      {"sqsrelay_sender_billing_units_total", "64 KiB request billing units.",
       &counters::billing_units},
      {"sqsrelay_sender_request_errors_total", "Whole-request failures.",
       &counters::request_errors},
      {"sqsrelay_sender_throttled_total", "Throttling answers.", &counters::throttled},
      {"sqsrelay_sender_missing_queue_retries_total",
       "QueueDoesNotExist answers retried during [sender] missing_queue_grace.",
       &counters::missing_queue_retries},
  };
  std::vector<std::pair<std::string, counters>> per_endpoint;
  for (const auto& ep : endpoints_) {
    if (ep->sender) per_endpoint.emplace_back(prometheus_label_value(ep->name), ep->sender->counters());
  }
  if (per_endpoint.empty()) return out;
  for (const sender_metric& m : sender_metrics) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", m.name, m.help, m.name);
    for (const auto& [label, c] : per_endpoint) {
      out += fmt::format("{}{{endpoint=\"{}\"}} {}\n", m.name, label, c.*m.field);
    }
  }
  return out;
}

}  // namespace sqsrelay::app
