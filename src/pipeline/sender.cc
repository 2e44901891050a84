#include "pipeline/sender.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <future>
#include <queue>
#include <unordered_map>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sqs/message.h"

namespace sqsrelay::pipeline {

namespace asio = boost::asio;
using steady_time = std::chrono::steady_clock::time_point;

namespace {

constexpr size_t billing_chunk = 65536;
constexpr std::string_view entry_ids[sqs::max_batch_entries] = {"0", "1", "2", "3", "4",
                                                                "5", "6", "7", "8", "9"};

// The entry's position in its batch, from the id we gave it; -1 for anything else.
int parse_entry_id(std::string_view id, size_t n) {
  if (id.size() != 1 || id[0] < '0' || id[0] > '9') return -1;
  int i = id[0] - '0';
  return static_cast<size_t>(i) < n ? i : -1;
}

bool throttling_code(std::string_view code) {
  return code == "RequestThrottled" || code == "ThrottlingException" ||
         code == "Throttling" || code == "AWS.SimpleQueueService.RequestThrottled" ||
         code == "RequestThrottledException" || code == "SlowDown";
}

// Reasons a dead-letter queue could accept: the message itself is valid SQS input.
bool sendable_to_dead_letter_queue(reject_reason r) {
  return r == reject_reason::oversize || r == reject_reason::sender_fault ||
         r == reject_reason::request_rejected || r == reject_reason::retry_limit;
}

// Relaxed atomics: written on the executor, read by anyone for metrics.
struct probe {
  std::atomic<uint64_t> accepted{0}, delivered{0}, retried{0}, dead_lettered{0}, abandoned{0},
      api_calls{0}, entries_sent{0}, billing_units{0}, payload_bytes{0}, request_errors{0},
      throttled{0}, entry_failures{0}, missing_entries{0}, unknown_entries{0},
      limit_lookups{0}, limit_lookup_errors{0}, dead_letter_write_errors{0}, in_flight{0},
      window{0}, max_window{0}, max_backoff_us{0}, missing_queue_retries{0};
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
};

}  // namespace

// All batching/flight state; lives on the executor. The inbox part (in_mu_) is what other
// threads touch.
class sender_engine : public std::enable_shared_from_this<sender_engine> {
 public:
  sender_engine(asio::any_io_executor ex, batch_transport& t, sender_options o,
                dead_letter_sink* dl, clock& clk, random_source* rnd)
      : ex_(ex),
        transport_(t),
        o_(std::move(o)),
        dead_letters_(dl),
        clock_(clk),
        rnd_(rnd ? rnd : &own_rnd_),
        window_(o_.window),
        timer_(ex) {
    probe_.window.store(window_.limit(), std::memory_order_relaxed);
    if (!o_.dead_letter_queue.empty()) dlq_id_ = intern_locked(o_.dead_letter_queue);
  }

  // --- any thread -------------------------------------------------------------------------

  // `admit`: take it beyond the pending limits (the executor's own thread, which must not
  // wait for room only it can make).
  sender::submit_status submit(std::string_view queue, outbound_message& m, completion& done,
                               bool block, bool admit = false) {
    std::optional<rejection> pre = check_message(m, SIZE_MAX);
    // SQS refuses a whole SendMessageBatch when one entry for a FIFO queue lacks its group
    // id: refuse that message alone, here.
    if (!pre && m.group_id.empty() && queue.ends_with(".fifo"))
      pre = rejection{reject_reason::invalid_input, "MissingParameter",
                      "a message for a FIFO queue needs a MessageGroupId"};
    size_t size = message_size(m);
    std::unique_lock lock(in_mu_);
    for (;;) {
      if (stopping_) return sender::submit_status::stopped;
      bool room = admit || (pending_msgs_ < o_.max_pending_messages &&
                            (pending_msgs_ == 0 || pending_bytes_ + size <= o_.max_pending_bytes));
      if (room) break;
      if (!block) return sender::submit_status::full;
      room_cv_.wait(lock);
    }
    ++pending_msgs_;
    pending_bytes_ += size;
    probe::add(probe_.accepted);
    uint32_t qid = intern_locked(queue);
    inbox_.push_back(submission{qid, std::move(m), std::move(done), std::move(pre), size});
    bool post = !drain_posted_;
    drain_posted_ = true;
    lock.unlock();
    if (post) post_to_engine([](sender_engine& e) { e.drain(); });
    return sender::submit_status::accepted;
  }

  bool flush(std::chrono::steady_clock::duration timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(in_mu_);
    ++flushers_;
    urgent_.store(true);
    lock.unlock();
    post_to_engine([](sender_engine& e) { e.after_event(); });
    lock.lock();
    bool done = idle_cv_.wait_until(lock, deadline, [&] { return pending_msgs_ == 0; });
    if (--flushers_ == 0 && !stopping_) urgent_.store(false);
    return done;
  }

  void stop(std::chrono::steady_clock::duration timeout) {
    auto deadline = clock_.steady() + timeout;
    {
      std::lock_guard lock(in_mu_);
      stopping_ = true;
      urgent_.store(true);
    }
    room_cv_.notify_all();
    post_to_engine([deadline](sender_engine& e) { e.request_stop(deadline); });
    std::unique_lock lock(in_mu_);
    idle_cv_.wait(lock, [&] { return pending_msgs_ == 0; });
  }

  size_t pending() const {
    std::lock_guard lock(in_mu_);
    return pending_msgs_;
  }

  sender_counters counters() const {
    sender_counters c;
    auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    c.accepted = ld(probe_.accepted);
    c.delivered = ld(probe_.delivered);
    c.retried = ld(probe_.retried);
    c.dead_lettered = ld(probe_.dead_lettered);
    c.abandoned = ld(probe_.abandoned);
    c.api_calls = ld(probe_.api_calls);
    c.entries_sent = ld(probe_.entries_sent);
    c.billing_units = ld(probe_.billing_units);
    c.payload_bytes = ld(probe_.payload_bytes);
    c.request_errors = ld(probe_.request_errors);
    c.throttled = ld(probe_.throttled);
    c.entry_failures = ld(probe_.entry_failures);
    c.missing_entries = ld(probe_.missing_entries);
    c.unknown_entries = ld(probe_.unknown_entries);
    c.limit_lookups = ld(probe_.limit_lookups);
    c.limit_lookup_errors = ld(probe_.limit_lookup_errors);
    c.dead_letter_write_errors = ld(probe_.dead_letter_write_errors);
    c.max_backoff_us = ld(probe_.max_backoff_us);
    c.missing_queue_retries = ld(probe_.missing_queue_retries);
    c.in_flight = ld(probe_.in_flight);
    c.window = ld(probe_.window);
    c.max_window = ld(probe_.max_window);
    std::lock_guard lock(in_mu_);
    c.pending = pending_msgs_;
    c.pending_bytes = pending_bytes_;
    return c;
  }

  // --- executor ---------------------------------------------------------------------------

  void request_stop(steady_time deadline) {
    {
      std::lock_guard lock(in_mu_);
      stopping_ = true;
      urgent_.store(true);
    }
    room_cv_.notify_all();
    stop_deadline_ = stop_deadline_ ? std::min(*stop_deadline_, deadline) : deadline;
    drain();
  }

  void process_due() {
    auto now = clock_.steady();
    for (size_t i = 0; i < limit_retries_.size();) {
      if (limit_retries_[i].first > now) {
        ++i;
        continue;
      }
      uint32_t qid = limit_retries_[i].second;
      limit_retries_[i] = limit_retries_.back();
      limit_retries_.pop_back();
      fetch_limit(qid, queue(qid));
    }
    while (!retries_.empty() && retries_.top().due <= now) {
      uint32_t idx = retries_.top().item;
      retries_.pop();
      if (items_[idx].used && !items_[idx].completed) requeue(idx);
    }
    after_event();
  }

  // Ends every message not yet completed as abandoned (stop deadline, or destruction).
  void abandon_all() {
    {
      std::lock_guard lock(in_mu_);
      drained_.swap(inbox_);
      drain_posted_ = false;
    }
    if (o_.dead_letter_abandoned && dead_letters_) write_abandoned();
    for (auto& s : drained_) admit_abandoned(s);
    drained_.clear();
    for (uint32_t i = 0; i < items_.size(); ++i) {
      item& it = items_[i];
      if (!it.used || it.completed) continue;
      outcome o;
      o.what = outcome::kind::abandoned;
      o.attempts = it.attempts;
      o.reason = abandoned_reason(it.attempts, it.last_code);
      probe::add(probe_.abandoned);
      finish(i, o);
    }
    ready_.clear();
    retries_ = {};
    limit_retries_.clear();
    dl_batch_.clear();
    for (auto& q : queues_) {
      if (!q) continue;
      q->open_n = 0;
      q->open_bytes = 0;
      q->waiting.clear();
      q->groups.clear();
    }
    release();
  }

 private:
  struct submission {
    uint32_t queue;
    outbound_message msg;
    completion done;
    std::optional<rejection> pre;
    size_t size;
  };

  struct item {
    outbound_message msg;
    completion done;
    uint32_t queue = 0;
    uint32_t origin_queue = 0;  // the queue it was submitted for (dead-letter redirects)
    size_t size = 0;
    uint32_t attempts = 0;
    bool used = false;
    bool completed = false;
    bool in_flight = false;
    bool dl_writing = false;
    bool redirected = false;   // dead-lettered into dead_letter_queue
    bool group_active = false; // FIFO: in its group's open or closed batch or retry wait
    uint64_t seq = 0;          // submission order (FIFO groups keep it)
    std::optional<rejection> dead_reason;
    std::string last_code;     // of the last retryable failure
  };

  // FIFO queues keep each message group in order across retries: a group's messages go out
  // in submission order, and while some of them are in a batch that has closed (in flight,
  // waiting for a retry) the later ones wait in `held`. Several of a group's messages may
  // share one batch (SQS keeps a batch's order), so a one-group stream still sends full
  // batches, one at a time; different groups go in parallel.
  struct group {
    std::deque<uint32_t> held;  // waiting their turn, in submission order
    uint32_t active = 0;        // batched or waiting for a retry, not yet ended
    uint32_t in_open = 0;       // of those, in the queue's open batch
    uint32_t retrying = 0;      // of those, waiting for a retry
    // Nothing of the group is in a closed batch or waiting for a retry.
    bool may_join() const { return active == in_open; }
  };

  struct queue_state {
    std::string name;
    bool fifo = false;  // the name or URL ends in ".fifo"
    std::unordered_map<std::string, group> groups;
    size_t limit = 0;
    bool limit_known = false;
    bool limit_fetching = false;
    uint32_t limit_attempts = 0;
    steady_time limit_at{};
    std::optional<steady_time> missing_since;  // first QueueDoesNotExist since an answer
    std::vector<uint32_t> waiting;  // items that arrived before the limit was known
    std::array<uint32_t, sqs::max_batch_entries> open{};
    uint8_t open_n = 0;
    size_t open_bytes = 0;
    steady_time opened_at{};
  };

  struct batch {
    uint32_t queue = 0;
    std::array<uint32_t, sqs::max_batch_entries> items{};
    uint8_t n = 0;
    size_t bytes = 0;
  };

  struct flight {
    batch b;
    steady_time sent{};
    bool used = false;
  };

  struct retry_entry {
    steady_time due;
    uint32_t item;
    bool operator>(const retry_entry& o) const { return due > o.due; }
  };

  template <class F>
  void post_to_engine(F f) {
    std::weak_ptr<sender_engine> w = weak_from_this();
    asio::post(ex_, [w, f]() {
      if (auto e = w.lock()) f(*e);
    });
  }

  uint32_t intern_locked(std::string_view queue) {
    if (last_queue_ < queue_names_.size() && queue_names_[last_queue_] == queue)
      return last_queue_;
    auto it = queue_ids_.find(std::string(queue));
    if (it == queue_ids_.end()) {
      it = queue_ids_.emplace(std::string(queue), static_cast<uint32_t>(queue_names_.size()))
               .first;
      queue_names_.emplace_back(queue);
    }
    last_queue_ = it->second;
    return it->second;
  }

  queue_state& queue(uint32_t id) {
    if (id >= queues_.size()) queues_.resize(id + 1);
    if (!queues_[id]) {
      queues_[id] = std::make_unique<queue_state>();
      std::lock_guard lock(in_mu_);
      queues_[id]->name = queue_names_[id];
      queues_[id]->fifo = queues_[id]->name.ends_with(".fifo");
    }
    return *queues_[id];
  }

  uint32_t new_item() {
    uint32_t idx;
    if (!free_items_.empty()) {
      idx = free_items_.back();
      free_items_.pop_back();
    } else {
      idx = static_cast<uint32_t>(items_.size());
      items_.emplace_back();
    }
    items_[idx].used = true;
    return idx;
  }

  void maybe_free(uint32_t idx) {
    item& it = items_[idx];
    if (!it.used || !it.completed || it.in_flight || it.dl_writing) return;
    it = item{};
    free_items_.push_back(idx);
  }

  void drain() {
    {
      std::lock_guard lock(in_mu_);
      drained_.swap(inbox_);
      drain_posted_ = false;
    }
    for (auto& s : drained_) admit(s);
    drained_.clear();
    after_event();
  }

  void admit(submission& s) {
    uint32_t idx = new_item();
    item& it = items_[idx];
    it.msg = std::move(s.msg);
    it.done = std::move(s.done);
    it.queue = it.origin_queue = s.queue;
    it.size = s.size;
    it.seq = next_seq_++;
    if (s.pre) return dead_letter(idx, std::move(*s.pre));
    enqueue(idx);
  }

  // Writes every message abandon_all() is about to abandon to the dead-letter sink and waits
  // until the sink reports them durable. A message whose dead-letter record was already
  // handed to the sink is not written again; one whose record is still batched is written
  // with its own reason.
  static rejection abandoned_reason(uint32_t attempts, const std::string& last_code) {
    rejection r{reject_reason::abandoned, "Abandoned", ""};
    r.message =
        last_code.empty()
            ? fmt::format("not delivered before the stop deadline ({} attempts)", attempts)
            : fmt::format("not delivered before the stop deadline ({} attempts, last error {})",
                          attempts, last_code);
    return r;
  }

  void write_abandoned() {
    std::vector<rejection> whys;  // stable: reserved before records point into it
    whys.reserve(drained_.size() + items_.size());
    std::vector<dead_letter_record> recs;
    auto abandoned_why = [&](uint32_t attempts, const std::string& last_code) {
      whys.push_back(abandoned_reason(attempts, last_code));
      return &whys.back();
    };
    for (const auto& s : drained_) {
      const rejection* why = s.pre ? &*s.pre : abandoned_why(0, {});
      recs.push_back(dead_letter_record{queue(s.queue).name, &s.msg, why, 0});
    }
    std::vector<bool> batched(items_.size(), false);
    for (uint32_t idx : dl_batch_) batched[idx] = true;
    for (uint32_t i = 0; i < items_.size(); ++i) {
      const item& it = items_[i];
      if (!it.used || it.completed || (it.dl_writing && !batched[i])) continue;
      const rejection* why = batched[i] && it.dead_reason
                                 ? &*it.dead_reason
                                 : abandoned_why(it.attempts, it.last_code);
      recs.push_back(
          dead_letter_record{queue(it.origin_queue).name, &it.msg, why, it.attempts});
    }
    if (recs.empty()) return;
    std::promise<error_code> written;
    dead_letters_->write(std::move(recs), [&written](error_code ec) { written.set_value(ec); });
    if (auto ec = written.get_future().get()) {
      probe::add(probe_.dead_letter_write_errors);
      spdlog::error("sender: writing abandoned messages to the dead-letter sink: {}",
                    ec.message());
    }
  }

  void admit_abandoned(submission& s) {
    uint32_t idx = new_item();
    item& it = items_[idx];
    it.done = std::move(s.done);
    it.size = s.size;
    outcome o;
    o.what = outcome::kind::abandoned;
    probe::add(probe_.abandoned);
    finish(idx, o);
  }

  // Batches the message (`from_held`: its group's turn came; see group).
  void enqueue(uint32_t idx, bool from_held = false) {
    item& it = items_[idx];
    queue_state& q = queue(it.queue);
    auto now = clock_.steady();
    if (q.limit_known && !q.limit_fetching && now - q.limit_at > o_.limit_refresh)
      fetch_limit(it.queue, q);
    if (!q.limit_known) {
      q.waiting.push_back(idx);
      if (!q.limit_fetching) fetch_limit(it.queue, q);
      return;
    }
    if (it.size > q.limit) {
      return dead_letter(idx, rejection{reject_reason::oversize, "MessageTooLong",
                                        fmt::format("message is {} bytes (body plus "
                                                    "attributes); queue {} allows {}",
                                                    it.size, q.name, q.limit)});
    }
    if (q.open_n > 0 && q.open_bytes + it.size > sqs::max_batch_bytes) close_open(it.queue, q);
    group* g = ordered_group(q, it);
    if (g) {
      if (!g->may_join() || (!from_held && !g->held.empty())) return hold(*g, idx);
      it.group_active = true;
      ++g->active;
    }
    if (q.open_n == 0) q.opened_at = now;
    q.open[q.open_n++] = idx;
    q.open_bytes += it.size;
    if (g) ++g->in_open;
    if (q.open_n == sqs::max_batch_entries || q.open_bytes == sqs::max_batch_bytes)
      close_open(it.queue, q);
    else if (g)
      release_held(*g);  // its followers may join the same batch
  }

  // The message's group when its queue keeps groups in order (FIFO with a group id).
  group* ordered_group(queue_state& q, const item& it) {
    if (!q.fifo || it.msg.group_id.empty()) return nullptr;
    return &q.groups[it.msg.group_id];
  }

  void hold(group& g, uint32_t idx) {
    const uint64_t seq = items_[idx].seq;
    if (g.held.empty() || items_[g.held.back()].seq < seq) return g.held.push_back(idx);
    // A retry: it goes before the messages submitted after it (near the front).
    auto at = std::find_if(g.held.begin(), g.held.end(),
                           [&](uint32_t other) { return items_[other].seq > seq; });
    g.held.insert(at, idx);
  }

  // Moves a group's held messages into the open batch, in order, while nothing of the group
  // is in a closed batch or waiting for a retry.
  void release_held(group& g) {
    while (!g.held.empty() && g.may_join()) {
      uint32_t next = g.held.front();
      g.held.pop_front();
      if (items_[next].used && !items_[next].completed) enqueue(next, true);
    }
  }

  // A retry that came due: a message of an ordered group goes back into its group's line,
  // which moves once all of the group's retries are back.
  void requeue(uint32_t idx) {
    item& it = items_[idx];
    queue_state& q = queue(it.queue);
    group* g = it.group_active ? ordered_group(q, it) : nullptr;
    if (!g) return enqueue(idx);
    it.group_active = false;
    --g->active;
    --g->retrying;
    hold(*g, idx);
    release_held(*g);
  }

  // A message of an ordered group will not be sent again (delivered or dead-lettered): the
  // next ones of its group may go.
  void leave_group(uint32_t idx) {
    item& it = items_[idx];
    if (!it.group_active) return;
    it.group_active = false;
    queue_state& q = queue(it.queue);
    auto gi = q.groups.find(it.msg.group_id);
    if (gi == q.groups.end()) return;
    group& g = gi->second;
    --g.active;
    if (g.active == 0 && g.held.empty()) {
      q.groups.erase(gi);
      return;
    }
    release_held(g);
    if (g.active == 0 && g.held.empty()) q.groups.erase(it.msg.group_id);
  }

  void close_open(uint32_t qid, queue_state& q) {
    if (q.fifo) {
      for (uint8_t i = 0; i < q.open_n; ++i) {
        item& it = items_[q.open[i]];
        if (it.group_active) --q.groups[it.msg.group_id].in_open;
      }
    }
    batch b;
    b.queue = qid;
    b.items = q.open;
    b.n = q.open_n;
    b.bytes = q.open_bytes;
    ready_.push_back(b);
    q.open_n = 0;
    q.open_bytes = 0;
  }

  void fetch_limit(uint32_t qid, queue_state& q) {
    q.limit_fetching = true;
    probe::add(probe_.limit_lookups);
    std::weak_ptr<sender_engine> w = weak_from_this();
    transport_.max_message_size(q.name, [w, qid](result<size_t> r) {
      if (auto e = w.lock()) e->on_limit(qid, r);
    });
  }

  void on_limit(uint32_t qid, result<size_t> r) {
    queue_state& q = queue(qid);
    q.limit_fetching = false;
    q.limit_at = clock_.steady();
    if (!r && r.error() == boost::system::errc::operation_would_block) {
      // Throttled or unreachable: ask again after a backoff; messages keep waiting (sending
      // them against a guessed limit would dead-letter oversize ones for the wrong reason).
      probe::add(probe_.limit_lookup_errors);
      q.limit_attempts = std::min<uint32_t>(q.limit_attempts + 1, 30);
      auto due = clock_.steady() + backoff_delay(o_.backoff, q.limit_attempts, *rnd_);
      limit_retries_.emplace_back(due, qid);
      q.limit_fetching = true;  // until the retry's answer
      after_event();
      return;
    }
    q.limit_attempts = 0;
    if (r) {
      q.limit = *r;
    } else {
      probe::add(probe_.limit_lookup_errors);
      if (!q.limit_known) {
        // The transport logged SQS's own error; the code here only says "not retryable".
        spdlog::warn("sender: cannot read MaximumMessageSize of {} (a lasting error); checking "
                     "against {} and letting SQS decide",
                     q.name, o_.fallback_max_message_size);
        q.limit = o_.fallback_max_message_size;
      }
    }
    q.limit_known = true;
    auto waiting = std::move(q.waiting);
    q.waiting.clear();
    for (uint32_t idx : waiting)
      if (items_[idx].used && !items_[idx].completed) enqueue(idx);
    after_event();
  }

  // Ends a message as delivered (or, after a dead-letter redirect, as dead-lettered).
  void deliver(uint32_t idx, std::string message_id) {
    leave_group(idx);
    item& it = items_[idx];
    outcome o;
    o.attempts = it.attempts;
    if (it.redirected) {
      o.what = outcome::kind::dead_lettered;
      o.reason = std::move(it.dead_reason);
      probe::add(probe_.dead_lettered);
    } else {
      o.message_id = std::move(message_id);
      probe::add(probe_.delivered);
    }
    finish(idx, o);
  }

  void finish(uint32_t idx, outcome& o) {
    item& it = items_[idx];
    it.completed = true;
    released_msgs_ += 1;
    released_bytes_ += it.size;
    if (it.done) {
      completion done = std::move(it.done);
      done(o);
    }
    maybe_free(idx);
  }

  void dead_letter(uint32_t idx, rejection why) {
    leave_group(idx);
    item& it = items_[idx];
    if (dlq_id_ && !it.redirected && it.queue != *dlq_id_ &&
        sendable_to_dead_letter_queue(why.reason)) {
      it.redirected = true;
      it.dead_reason = std::move(why);
      it.queue = *dlq_id_;
      it.attempts = 0;
      return enqueue(idx);
    }
    if (it.redirected && it.dead_reason) {
      // The dead-letter queue did not take it either: the file keeps why it was dead-lettered
      // in the first place (oversize, ...) and says what the dead-letter queue answered.
      it.dead_reason->message += fmt::format(
          " (then the dead-letter queue {} did not take it: {}: {})", queue(it.queue).name,
          why.code, why.message);
    } else {
      it.dead_reason = std::move(why);
    }
    if (!dead_letters_) return complete_dead_letter(idx, {});
    it.dl_writing = true;
    dl_batch_.push_back(idx);
  }

  void complete_dead_letter(uint32_t idx, error_code ec) {
    item& it = items_[idx];
    it.dl_writing = false;
    if (it.completed) return maybe_free(idx);
    outcome o;
    o.what = outcome::kind::dead_lettered;
    o.attempts = it.attempts;
    o.reason = std::move(it.dead_reason);
    if (ec) {
      o.reason->message += fmt::format(" (dead-letter file write failed: {})", ec.message());
    }
    probe::add(probe_.dead_lettered);
    finish(idx, o);
  }

  void write_dead_letters() {
    if (dl_batch_.empty()) return;
    std::vector<dead_letter_record> recs;
    recs.reserve(dl_batch_.size());
    for (uint32_t idx : dl_batch_) {
      const item& it = items_[idx];
      recs.push_back(dead_letter_record{queue(it.origin_queue).name, &it.msg,
                                        &*it.dead_reason, it.attempts});
    }
    auto idxs = std::move(dl_batch_);
    dl_batch_.clear();
    std::weak_ptr<sender_engine> w = weak_from_this();
    auto ex = ex_;
    dead_letters_->write(std::move(recs), [w, ex, idxs = std::move(idxs)](error_code ec) {
      asio::post(ex, [w, idxs, ec]() {
        auto e = w.lock();
        if (!e) return;
        if (ec) probe::add(e->probe_.dead_letter_write_errors);
        for (uint32_t idx : idxs) e->complete_dead_letter(idx, ec);
        e->after_event();
      });
    });
  }

  void after_event() {
    pump();
    write_dead_letters();
    release();
  }

  void pump() {
    auto now = clock_.steady();
    if (stop_deadline_ && now >= *stop_deadline_) {
      abandon_all();
      return;
    }
    bool urgent = urgent_.load();
    for (uint32_t qid = 0; qid < queues_.size(); ++qid) {
      auto& q = queues_[qid];
      if (!q || q->open_n == 0) continue;
      bool slot_free = in_flight_ + ready_.size() < window_.limit();
      bool close = urgent || (o_.linger.count() > 0 ? now - q->opened_at >= o_.linger
                                                    : slot_free);
      if (close) close_open(qid, *q);
    }
    while (in_flight_ < window_.limit() && !ready_.empty()) {
      batch b = ready_.front();
      ready_.pop_front();
      send(b);
    }
    arm_timer(now);
  }

  void send(const batch& b) {
    uint32_t f;
    if (!free_flights_.empty()) {
      f = free_flights_.back();
      free_flights_.pop_back();
    } else {
      f = static_cast<uint32_t>(flights_.size());
      flights_.emplace_back();
    }
    flight& fl = flights_[f];
    fl.b = b;
    fl.sent = clock_.steady();
    fl.used = true;
    std::array<batch_entry, sqs::max_batch_entries> entries;
    for (uint8_t i = 0; i < b.n; ++i) {
      item& it = items_[b.items[i]];
      it.in_flight = true;
      ++it.attempts;
      entries[i] = batch_entry{entry_ids[i], &it.msg};
    }
    ++in_flight_;
    probe_.in_flight.store(in_flight_, std::memory_order_relaxed);
    probe::add(probe_.api_calls);
    probe::add(probe_.entries_sent, b.n);
    probe::add(probe_.payload_bytes, b.bytes);
    probe::add(probe_.billing_units, std::max<uint64_t>(1, (b.bytes + billing_chunk - 1) /
                                                               billing_chunk));
    std::weak_ptr<sender_engine> w = weak_from_this();
    transport_.send_batch(queue(b.queue).name, std::span(entries.data(), b.n),
                          [w, f](batch_reply r) {
                            if (auto e = w.lock()) e->on_reply(f, std::move(r));
                          });
  }

  void on_reply(uint32_t f, batch_reply r) {
    batch b = flights_[f].b;
    auto now = clock_.steady();
    auto latency =
        std::chrono::duration_cast<std::chrono::microseconds>(now - flights_[f].sent);
    flights_[f].used = false;
    free_flights_.push_back(f);
    bool backlog = !ready_.empty() || in_flight_ >= window_.limit();
    --in_flight_;
    probe_.in_flight.store(in_flight_, std::memory_order_relaxed);
    for (uint8_t i = 0; i < b.n; ++i) items_[b.items[i]].in_flight = false;

    bool congestion = r.error ? handle_request_error(b, *r.error) : handle_entries(b, r);
    if (congestion)
      window_.on_congestion(now);
    else
      window_.on_success(latency, backlog, now);
    probe_.window.store(window_.limit(), std::memory_order_relaxed);
    if (window_.limit() > probe_.max_window.load(std::memory_order_relaxed))
      probe_.max_window.store(window_.limit(), std::memory_order_relaxed);
    schedule_retries(now);
    for (uint8_t i = 0; i < b.n; ++i) maybe_free(b.items[i]);
    after_event();
  }

  // Returns whether the failure is a congestion signal.
  bool handle_request_error(const batch& b, const request_error& err) {
    probe::add(probe_.request_errors);
    if (err.throttled) probe::add(probe_.throttled);
    const bool retry_missing = within_missing_queue_grace(queue(b.queue), err);
    if (retry_missing) probe::add(probe_.missing_queue_retries);
    for (uint8_t i = 0; i < b.n; ++i) {
      uint32_t idx = b.items[i];
      if (items_[idx].completed) continue;
      if (err.retryable || retry_missing) {
        retry(idx, err.code.empty() ? "RequestFailed" : err.code);
      } else {
        dead_letter(idx, rejection{reject_reason::request_rejected,
                                   err.code.empty() ? fmt::format("HTTP{}", err.http_status)
                                                    : err.code,
                                   err.message});
      }
    }
    return err.retryable;
  }

  // A queue that does not exist may be about to (created by a deploy after the relay
  // started, or a moment after its producers): with missing_queue_grace its messages are
  // retried with backoff for that long from the first such answer, then dead-lettered.
  // A reply with entries (the queue exists) starts the grace afresh for the next time.
  bool within_missing_queue_grace(queue_state& q, const request_error& err) {
    if (err.retryable || o_.missing_queue_grace.count() <= 0) return false;
    if (err.code != "QueueDoesNotExist" && err.code != "AWS.SimpleQueueService.NonExistentQueue")
      return false;
    const steady_time now = clock_.steady();
    if (!q.missing_since) q.missing_since = now;
    return now - *q.missing_since < o_.missing_queue_grace;
  }

  bool handle_entries(const batch& b, batch_reply& r) {
    queue(b.queue).missing_since.reset();
    std::array<bool, sqs::max_batch_entries> seen{};
    bool congestion = false;
    for (auto& s : r.successful) {
      int i = parse_entry_id(s.id, b.n);
      if (i < 0 || seen[i]) {
        probe::add(probe_.unknown_entries);
        continue;
      }
      seen[i] = true;
      uint32_t idx = b.items[i];
      if (!items_[idx].completed) deliver(idx, std::move(s.message_id));
    }
    for (auto& fl : r.failed) {
      int i = parse_entry_id(fl.id, b.n);
      if (i < 0 || seen[i]) {
        probe::add(probe_.unknown_entries);
        continue;
      }
      seen[i] = true;
      // sqs::client reports entries a reply left out as Failed "MissingEntry".
      probe::add(fl.code == "MissingEntry" ? probe_.missing_entries : probe_.entry_failures);
      uint32_t idx = b.items[i];
      if (items_[idx].completed) continue;
      if (fl.sender_fault) {
        dead_letter(idx, rejection{reject_reason::sender_fault, fl.code, fl.message});
        continue;
      }
      if (throttling_code(fl.code)) {
        probe::add(probe_.throttled);
        congestion = true;
      }
      retry(idx, fl.code);
    }
    for (uint8_t i = 0; i < b.n; ++i) {
      if (seen[i]) continue;
      probe::add(probe_.missing_entries);
      uint32_t idx = b.items[i];
      if (!items_[idx].completed) retry(idx, "MissingEntry");
    }
    return congestion;
  }

  void retry(uint32_t idx, std::string code) {
    item& it = items_[idx];
    if (o_.max_attempts != 0 && it.attempts >= o_.max_attempts) {
      return dead_letter(idx, rejection{reject_reason::retry_limit, code,
                                        fmt::format("not delivered after {} attempts; last "
                                                    "error {}",
                                                    it.attempts, code)});
    }
    it.last_code = std::move(code);
    if (it.group_active) ++queue(it.queue).groups[it.msg.group_id].retrying;
    retry_group_.push_back(idx);
  }

  // One jittered delay for all entries of one reply, so they come back together and re-fill
  // batches instead of trickling back one by one.
  void schedule_retries(steady_time now) {
    if (retry_group_.empty()) return;
    uint32_t attempt = 1;
    for (uint32_t idx : retry_group_) attempt = std::max(attempt, items_[idx].attempts);
    auto delay = backoff_delay(o_.backoff, attempt, *rnd_);
    auto us = static_cast<uint64_t>(delay.count());
    if (us > probe_.max_backoff_us.load(std::memory_order_relaxed))
      probe_.max_backoff_us.store(us, std::memory_order_relaxed);
    auto due = now + delay;
    for (uint32_t idx : retry_group_) retries_.push(retry_entry{due, idx});
    probe::add(probe_.retried, retry_group_.size());
    retry_group_.clear();
  }

  void arm_timer(steady_time now) {
    std::optional<steady_time> next = stop_deadline_;
    auto consider = [&](steady_time t) {
      if (!next || t < *next) next = t;
    };
    if (!retries_.empty()) consider(retries_.top().due);
    for (const auto& lr : limit_retries_) consider(lr.first);
    if (o_.linger.count() > 0 && !urgent_.load()) {
      for (auto& q : queues_)
        if (q && q->open_n > 0) consider(q->opened_at + o_.linger);
    }
    if (!next) return;
    if (timer_armed_ && timer_at_ <= *next) return;
    timer_armed_ = true;
    timer_at_ = *next;
    timer_.expires_after(std::max(*next - now, steady_time::duration::zero()));
    std::weak_ptr<sender_engine> w = weak_from_this();
    timer_.async_wait([w](boost::system::error_code ec) {
      if (ec) return;  // re-armed earlier (operation_aborted) or shutting down
      if (auto e = w.lock()) {
        e->timer_armed_ = false;
        e->process_due();
      }
    });
  }

  void release() {
    if (released_msgs_ == 0) return;
    bool idle;
    {
      std::lock_guard lock(in_mu_);
      pending_msgs_ -= released_msgs_;
      pending_bytes_ -= released_bytes_;
      idle = pending_msgs_ == 0;
    }
    released_msgs_ = 0;
    released_bytes_ = 0;
    room_cv_.notify_all();
    if (idle) idle_cv_.notify_all();
  }

  asio::any_io_executor ex_;
  batch_transport& transport_;
  sender_options o_;
  dead_letter_sink* dead_letters_;
  clock& clock_;
  random_source own_rnd_;
  random_source* rnd_;
  probe probe_;

  // Shared with submitting threads.
  mutable std::mutex in_mu_;
  std::condition_variable room_cv_;
  std::condition_variable idle_cv_;
  std::vector<submission> inbox_;                       // guarded by in_mu_
  bool drain_posted_ = false;                           // guarded by in_mu_
  bool stopping_ = false;                               // guarded by in_mu_
  int flushers_ = 0;                                    // guarded by in_mu_
  size_t pending_msgs_ = 0;                             // guarded by in_mu_
  size_t pending_bytes_ = 0;                            // guarded by in_mu_
  std::unordered_map<std::string, uint32_t> queue_ids_;  // guarded by in_mu_
  std::vector<std::string> queue_names_;                // guarded by in_mu_
  uint32_t last_queue_ = UINT32_MAX;                    // guarded by in_mu_
  std::atomic<bool> urgent_{false};                     // flush or stop waiting

  // Executor only.
  std::optional<uint32_t> dlq_id_;
  concurrency_window window_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  steady_time timer_at_{};
  std::optional<steady_time> stop_deadline_;
  std::vector<submission> drained_;
  std::deque<item> items_;  // a deque: growing never moves items that entries point into
  std::vector<uint32_t> free_items_;
  std::vector<std::unique_ptr<queue_state>> queues_;
  std::deque<batch> ready_;
  std::deque<flight> flights_;
  std::vector<uint32_t> free_flights_;
  uint32_t in_flight_ = 0;
  std::priority_queue<retry_entry, std::vector<retry_entry>, std::greater<>> retries_;
  std::vector<uint32_t> retry_group_;
  uint64_t next_seq_ = 0;
  std::vector<std::pair<steady_time, uint32_t>> limit_retries_;  // (due, queue id)
  std::vector<uint32_t> dl_batch_;
  size_t released_msgs_ = 0;
  size_t released_bytes_ = 0;
};

sender::sender(asio::any_io_executor executor, batch_transport& transport,
               sender_options options, dead_letter_sink* dead_letters, clock& clk,
               random_source* rnd)
    : engine_(std::make_shared<sender_engine>(executor, transport, std::move(options),
                                              dead_letters, clk, rnd)) {}

sender::~sender() { engine_->abandon_all(); }

sender::submit_status sender::try_submit(std::string_view queue, outbound_message& m,
                                         completion& done) {
  return engine_->submit(queue, m, done, false);
}

bool sender::submit(std::string_view queue, outbound_message m, completion done) {
  return engine_->submit(queue, m, done, true) == submit_status::accepted;
}

bool sender::submit_unbounded(std::string_view queue, outbound_message m, completion done) {
  return engine_->submit(queue, m, done, false, true) == submit_status::accepted;
}

bool sender::flush(std::chrono::steady_clock::duration timeout) {
  return engine_->flush(timeout);
}

void sender::stop(std::chrono::steady_clock::duration timeout) { engine_->stop(timeout); }

void sender::request_stop(std::chrono::steady_clock::time_point deadline) {
  engine_->request_stop(deadline);
}

void sender::process_due() { engine_->process_due(); }

sender_counters sender::counters() const { return engine_->counters(); }

size_t sender::pending() const { return engine_->pending(); }

}  // namespace sqsrelay::pipeline
