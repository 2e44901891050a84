// The sender against a fake transport that answers only when the test says so, on a manual
// clock: batch closing rules, reconciliation of replies, retries and their backoff, the
// window, back-pressure, dead letters and exactly-once completion.
#include "pipeline/sender.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace sqsrelay::pipeline {
namespace {

namespace asio = boost::asio;
using std::chrono::microseconds;
using std::chrono::milliseconds;

struct call {
  std::string queue;
  std::vector<std::string> ids;
  std::vector<std::string> bodies;
  std::vector<const outbound_message*> messages;
  std::function<void(batch_reply)> done;
  bool answered = false;
};

class fake_transport final : public batch_transport {
 public:
  explicit fake_transport(asio::io_context& io) : io_(io) {}

  void send_batch(const std::string& queue, std::span<const batch_entry> entries,
                  std::function<void(batch_reply)> done) override {
    call c;
    c.queue = queue;
    for (const auto& e : entries) {
      c.ids.emplace_back(e.id);
      c.bodies.push_back(e.message->body);
      c.messages.push_back(e.message);
    }
    c.done = std::move(done);
    calls.push_back(std::move(c));
  }

  void max_message_size(const std::string& queue,
                        std::function<void(result<size_t>)> done) override {
    ++limit_requests;
    auto it = limits.find(queue);
    result<size_t> r = it == limits.end() ? result<size_t>(1048576) : it->second;
    if (hold_limits) {
      held_limits.push_back([done, r] { done(r); });
      return;
    }
    asio::post(io_, [done, r] { done(r); });
  }

  size_t in_flight() const {
    size_t n = 0;
    for (const auto& c : calls) n += !c.answered;
    return n;
  }

  // Answers call `i`: every entry Successful except those listed in `failed`, and those in
  // `missing` left out of both lists.
  void answer(size_t i, std::vector<entry_failure> failed = {},
              std::vector<std::string> missing = {}) {
    call& c = calls.at(i);
    ASSERT_FALSE(c.answered);
    batch_reply r;
    for (const auto& id : c.ids) {
      bool skip = std::find(missing.begin(), missing.end(), id) != missing.end();
      for (const auto& f : failed) skip |= f.id == id;
      if (!skip) r.successful.push_back({id, "mid-" + c.bodies[std::stoul(id)]});
    }
    r.failed = std::move(failed);
    c.answered = true;
    c.done(std::move(r));
  }

  void fail(size_t i, request_error e) {
    call& c = calls.at(i);
    ASSERT_FALSE(c.answered);
    c.answered = true;
    batch_reply r;
    r.error = std::move(e);
    c.done(std::move(r));
  }

  void answer_all() {
    for (size_t i = 0; i < calls.size(); ++i)
      if (!calls[i].answered) answer(i);
  }

  std::vector<call> calls;
  std::map<std::string, result<size_t>> limits;
  bool hold_limits = false;
  std::vector<std::function<void()>> held_limits;
  int limit_requests = 0;

 private:
  asio::io_context& io_;
};

request_error throttle() {
  request_error e;
  e.what = request_error::kind::http_status;
  e.http_status = 400;
  e.code = "RequestThrottled";
  e.throttled = true;
  e.retryable = true;
  return e;
}

outbound_message msg(std::string body) {
  outbound_message m;
  m.body = std::move(body);
  return m;
}

struct recorder {
  std::map<std::string, std::vector<outcome>> by_body;
  completion for_body(const std::string& body) {
    return [this, body](const outcome& o) { by_body[body].push_back(o); };
  }
  size_t count(outcome::kind k) const {
    size_t n = 0;
    for (const auto& [b, v] : by_body)
      for (const auto& o : v) n += o.what == k;
    return n;
  }
  void expect_exactly_once(size_t n) const {
    EXPECT_EQ(by_body.size(), n);
    for (const auto& [b, v] : by_body) EXPECT_EQ(v.size(), 1u) << b;
  }
};

class SenderTest : public ::testing::Test {
 protected:
  SenderTest() : clk(std::chrono::system_clock::time_point(std::chrono::seconds(1700000000))) {}

  void make(sender_options o = defaults(), dead_letter_sink* dl = nullptr) {
    opts = o;
    s = std::make_unique<sender>(io.get_executor(), fake, o, dl, clk, &rnd);
  }
  static sender_options defaults() {
    sender_options o;
    o.linger = milliseconds(5);
    o.window.initial = 4;
    o.backoff = {milliseconds(10), milliseconds(1000)};
    return o;
  }
  void submit(const std::string& q, outbound_message m) {
    std::string body = m.body;
    completion done = rec.for_body(body);
    ASSERT_EQ(s->try_submit(q, m, done), sender::submit_status::accepted);
  }
  void run() {
    io.restart();
    io.poll();
  }
  void advance(microseconds d) {
    clk.advance(d);
    s->process_due();
    run();
  }

  asio::io_context io;
  fake_transport fake{io};
  manual_clock clk;
  random_source rnd{7};
  sender_options opts;
  recorder rec;
  std::unique_ptr<sender> s;
};

TEST_F(SenderTest, ClosesABatchAtTenEntriesAndThePartialOneAfterTheLinger) {
  make();
  for (int i = 0; i < 25; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  ASSERT_EQ(fake.calls.size(), 2u);  // two full batches at once, the 5 others linger
  EXPECT_EQ(fake.calls[0].ids.size(), 10u);
  EXPECT_EQ(fake.calls[1].ids.size(), 10u);
  EXPECT_EQ(fake.calls[0].queue, "q");
  advance(milliseconds(4));
  EXPECT_EQ(fake.calls.size(), 2u);
  advance(milliseconds(1));
  ASSERT_EQ(fake.calls.size(), 3u);
  EXPECT_EQ(fake.calls[2].ids.size(), 5u);
  EXPECT_EQ(fake.calls[2].ids[0], "0");
  fake.answer_all();
  run();
  rec.expect_exactly_once(25);
  EXPECT_EQ(rec.count(outcome::kind::delivered), 25u);
  EXPECT_EQ(rec.by_body["m3"][0].message_id, "mid-m3");
  auto c = s->counters();
  EXPECT_EQ(c.accepted, 25u);
  EXPECT_EQ(c.delivered, 25u);
  EXPECT_EQ(c.api_calls, 3u);
  EXPECT_EQ(c.entries_sent, 25u);
  EXPECT_EQ(c.pending, 0u);
}

TEST_F(SenderTest, ClosesAtExactlyOneMebibyteAndStartsANewBatchOneByteOver) {
  make();
  // 4 x 262,144 = 1,048,576: fits exactly, closes at once with 4 entries.
  for (int i = 0; i < 4; ++i) submit("q", msg(std::string(262144 - 1, 'a' + i) + "x"));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].ids.size(), 4u);
  // 262,144 + 262,144 + 262,144 + 262,145 > 1 MiB: the fourth starts the next batch.
  for (int i = 0; i < 3; ++i) submit("q", msg(std::string(262144, 'e' + i)));
  submit("q", msg(std::string(262145, 'h')));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 3u);
  EXPECT_EQ(fake.calls[1].ids.size(), 3u);
  EXPECT_EQ(fake.calls[2].ids.size(), 1u);
  EXPECT_EQ(fake.calls[2].bodies[0].size(), 262145u);
  auto c = s->counters();
  EXPECT_EQ(c.payload_bytes, 4u * 262144 + 3u * 262144 + 262145);
  EXPECT_EQ(c.billing_units, 16u + 12u + 5u);  // 64 KiB chunks per request
}

TEST_F(SenderTest, AttributesCountTowardTheQueueLimitAndOversizeIsDeadLetteredWithoutACall) {
  fake.limits["small"] = size_t{1024};
  make();
  outbound_message fits = msg(std::string(1000, 'a'));
  fits.attributes.push_back({"k", "String", std::string(17, 'v')});  // 1000 + 24 = 1024
  outbound_message over = fits;
  over.body = std::string(1001, 'b');
  submit("small", fits);
  submit("small", over);
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].bodies[0], fits.body);
  ASSERT_EQ(rec.by_body[over.body].size(), 1u);
  const outcome& o = rec.by_body[over.body][0];
  EXPECT_EQ(o.what, outcome::kind::dead_lettered);
  EXPECT_EQ(o.reason->reason, reject_reason::oversize);
  EXPECT_EQ(o.attempts, 0u);
  EXPECT_EQ(fake.limit_requests, 1);
}

TEST_F(SenderTest, MessagesWaitForTheQueueLimitAndFallBackWhenItCannotBeRead) {
  fake.hold_limits = true;
  fake.limits["q"] = result<size_t>(error_code(EACCES, boost::system::generic_category()));
  make();
  submit("q", msg(std::string(300000, 'a')));
  run();
  advance(milliseconds(50));
  EXPECT_TRUE(fake.calls.empty());
  ASSERT_EQ(fake.held_limits.size(), 1u);
  fake.held_limits[0]();
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);  // 1 MiB fallback: SQS decides
  EXPECT_EQ(s->counters().limit_lookup_errors, 1u);
}

TEST_F(SenderTest, ARetryableLimitLookupFailureIsRetriedAndMessagesWait) {
  fake.limits["q"] = result<size_t>(boost::system::errc::make_error_code(
      boost::system::errc::operation_would_block));
  make();
  submit("q", msg(std::string(2000, 'a')));
  run();
  EXPECT_EQ(fake.limit_requests, 1);
  fake.limits["q"] = size_t{1024};  // the next lookup succeeds
  advance(milliseconds(10));         // the first backoff ceiling
  EXPECT_EQ(fake.limit_requests, 2);
  advance(milliseconds(5));
  EXPECT_TRUE(fake.calls.empty());  // checked against the real limit, not a guess
  ASSERT_EQ(rec.by_body[std::string(2000, 'a')].size(), 1u);
  EXPECT_EQ(rec.by_body[std::string(2000, 'a')][0].reason->reason, reject_reason::oversize);
}

TEST_F(SenderTest, RetriesOnlyFailedAndMissingEntriesAndDeadLettersSenderFaults) {
  make();
  for (int i = 0; i < 10; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);
  fake.answer(0,
              {{"2", "InternalError", "try again", false},
               {"5", "InvalidParameterValue", "bad", true}},
              {"7", "9"});
  // A reply entry we never sent is counted, not trusted.
  run();
  EXPECT_EQ(rec.count(outcome::kind::delivered), 6u);
  EXPECT_EQ(rec.count(outcome::kind::dead_lettered), 1u);
  EXPECT_EQ(rec.by_body["m5"][0].reason->reason, reject_reason::sender_fault);
  EXPECT_EQ(rec.by_body["m5"][0].reason->code, "InvalidParameterValue");
  auto c = s->counters();
  EXPECT_EQ(c.missing_entries, 2u);
  EXPECT_EQ(c.entry_failures, 2u);
  EXPECT_EQ(c.retried, 3u);
  advance(milliseconds(10));  // the first backoff ceiling: the retries are batched again
  EXPECT_EQ(fake.calls.size(), 1u);
  advance(milliseconds(5));  // ... and linger like new messages
  ASSERT_EQ(fake.calls.size(), 2u);
  std::vector<std::string> resent = fake.calls[1].bodies;
  std::sort(resent.begin(), resent.end());
  EXPECT_EQ(resent, (std::vector<std::string>{"m2", "m7", "m9"}));
  fake.answer(1);
  run();
  rec.expect_exactly_once(10);
  EXPECT_EQ(rec.count(outcome::kind::delivered), 9u);
  EXPECT_EQ(rec.by_body["m7"][0].attempts, 2u);
}

TEST_F(SenderTest, UnknownAndDuplicateIdsInAReplyAreCountedAndTheRealEntriesRetried) {
  make();
  submit("q", msg("a"));
  submit("q", msg("b"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  batch_reply r;
  r.successful.push_back({"0", "id-a"});
  r.successful.push_back({"0", "id-a-again"});
  r.successful.push_back({"7", "id-x"});
  fake.calls[0].answered = true;
  fake.calls[0].done(std::move(r));
  run();
  auto c = s->counters();
  EXPECT_EQ(c.unknown_entries, 2u);
  EXPECT_EQ(c.missing_entries, 1u);
  EXPECT_EQ(rec.by_body["a"].size(), 1u);
  EXPECT_TRUE(rec.by_body["b"].empty());
}

TEST_F(SenderTest, BackoffWaitsAJitteredDelayWithinItsBoundsBeforeResending) {
  make();
  submit("q", msg("x"));
  run();
  advance(milliseconds(5));
  random_source twin(7);  // the same stream as the sender's
  for (uint32_t attempt = 1; attempt <= 4; ++attempt) {
    ASSERT_EQ(fake.calls.size(), attempt);
    fake.fail(attempt - 1, throttle());
    run();
    auto delay = backoff_delay(opts.backoff, attempt, twin);
    ASSERT_LE(delay, backoff_ceiling(opts.backoff, attempt));
    if (delay > microseconds(0)) {
      advance(delay - microseconds(1));
      EXPECT_EQ(fake.calls.size(), attempt) << "resent before its backoff";
      advance(microseconds(1));
    } else {
      run();
    }
    advance(milliseconds(5));  // the linger of the re-formed batch
    EXPECT_EQ(fake.calls.size(), attempt + 1u);
  }
  EXPECT_EQ(s->counters().throttled, 4u);
  EXPECT_EQ(s->counters().retried, 4u);
}

TEST_F(SenderTest, NonRetryableRequestErrorsDeadLetterTheWholeBatch) {
  make();
  submit("q", msg("a"));
  submit("q", msg("b"));
  run();
  advance(milliseconds(5));
  request_error e;
  e.what = request_error::kind::api;
  e.http_status = 400;
  e.code = "QueueDoesNotExist";
  e.sender_fault = true;
  e.retryable = false;
  fake.fail(0, e);
  run();
  rec.expect_exactly_once(2);
  EXPECT_EQ(rec.by_body["a"][0].reason->reason, reject_reason::request_rejected);
  EXPECT_EQ(rec.by_body["b"][0].reason->code, "QueueDoesNotExist");
}

request_error no_such_queue() {
  request_error e;
  e.what = request_error::kind::api;
  e.http_status = 400;
  e.code = "QueueDoesNotExist";
  e.sender_fault = true;
  e.retryable = false;
  return e;
}

// sqsrelay run: a queue created a moment after its backlog arrives must not cost the whole
// backlog; it is retried with backoff during the grace period, then dead-lettered.
TEST_F(SenderTest, MissingQueueIsRetriedDuringTheGracePeriodThenDeadLettered) {
  auto o = defaults();
  o.missing_queue_grace = std::chrono::seconds(10);
  make(o);
  submit("q", msg("a"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  fake.fail(0, no_such_queue());
  run();
  EXPECT_TRUE(rec.by_body.empty()) << "dead-lettered inside the grace period";
  EXPECT_EQ(s->counters().missing_queue_retries, 1u);
  // Retried after its backoff; the queue exists now.
  advance(milliseconds(1000));
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  fake.answer(1);
  run();
  ASSERT_EQ(rec.by_body["a"].size(), 1u);
  EXPECT_TRUE(rec.by_body["a"][0].delivered());
  EXPECT_EQ(rec.by_body["a"][0].attempts, 2u);

  // The queue goes missing for good: retried until 10 s after the first answer, then
  // dead-lettered with SQS's code.
  submit("q", msg("b"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 3u);
  const auto first_missing = clk.steady();
  fake.fail(2, no_such_queue());
  run();
  size_t next = 3;
  for (int i = 0; i < 100 && rec.by_body["b"].empty(); ++i) {
    advance(milliseconds(1000));
    advance(milliseconds(5));
    while (next < fake.calls.size()) {
      fake.fail(next++, no_such_queue());
      run();
    }
  }
  ASSERT_EQ(rec.by_body["b"].size(), 1u);
  EXPECT_EQ(rec.by_body["b"][0].what, outcome::kind::dead_lettered);
  EXPECT_EQ(rec.by_body["b"][0].reason->code, "QueueDoesNotExist");
  EXPECT_GT(rec.by_body["b"][0].attempts, 2u);
  EXPECT_GE(clk.steady() - first_missing, std::chrono::seconds(10));
  EXPECT_LE(clk.steady() - first_missing, std::chrono::seconds(12));
}

TEST_F(SenderTest, RetryLimitDeadLettersAfterMaxAttempts) {
  auto o = defaults();
  o.max_attempts = 2;
  make(o);
  submit("q", msg("a"));
  run();
  advance(milliseconds(5));
  fake.fail(0, throttle());
  run();
  advance(milliseconds(30));
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  fake.answer(1, {{"0", "InternalError", "x", false}});
  run();
  ASSERT_EQ(rec.by_body["a"].size(), 1u);
  EXPECT_EQ(rec.by_body["a"][0].reason->reason, reject_reason::retry_limit);
  EXPECT_EQ(rec.by_body["a"][0].attempts, 2u);
}

TEST_F(SenderTest, WindowGrowsWithBacklogAndHalvesOnThrottling) {
  make();
  for (int i = 0; i < 2000; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  EXPECT_EQ(fake.in_flight(), 4u);
  // Steady latency and a backlog: every reply grows the window by one (slow start).
  for (size_t i = 0; i < 20; ++i) {
    fake.answer(i);
    run();
  }
  EXPECT_EQ(s->counters().window, 24u);
  EXPECT_EQ(fake.in_flight(), 24u);
  size_t next = 20;
  fake.fail(next++, throttle());
  run();
  EXPECT_EQ(s->counters().window, 12u);
  EXPECT_EQ(fake.in_flight(), 23u);  // nothing new until in flight drops below 12
  for (int i = 0; i < 12; ++i) fake.answer(next++);
  run();
  EXPECT_EQ(fake.in_flight(), 11u + 1u) << "one slot freed once in flight fell below 12";
}

TEST_F(SenderTest, LingerZeroSendsAsSoonAsASlotIsFree) {
  auto o = defaults();
  o.linger = microseconds(0);
  o.window.initial = 1;
  o.window.max = 1;
  make(o);
  submit("q", msg("first"));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);  // no lingering
  for (int i = 0; i < 5; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  EXPECT_EQ(fake.calls.size(), 1u);  // the one slot is busy: they accumulate
  fake.answer(0);
  run();
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_EQ(fake.calls[1].ids.size(), 5u);
}

TEST_F(SenderTest, BackPressureRefusesPastCapacityAndFreesOnCompletion) {
  auto o = defaults();
  o.max_pending_messages = 3;
  make(o);
  for (int i = 0; i < 3; ++i) submit("q", msg("m" + std::to_string(i)));
  outbound_message m = msg("extra");
  completion done = rec.for_body("extra");
  EXPECT_EQ(s->try_submit("q", m, done), sender::submit_status::full);
  EXPECT_EQ(m.body, "extra");  // untouched
  EXPECT_TRUE(static_cast<bool>(done));
  run();
  advance(milliseconds(5));
  fake.answer(0);
  run();
  EXPECT_EQ(s->try_submit("q", m, done), sender::submit_status::accepted);
  EXPECT_EQ(s->pending(), 1u);
}

TEST_F(SenderTest, StopDeadlineAbandonsInFlightMessagesExactlyOnce) {
  make();
  for (int i = 0; i < 12; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);
  s->request_stop(clk.steady() + milliseconds(100));
  run();
  ASSERT_EQ(fake.calls.size(), 2u);  // stopping: the partial batch goes at once
  fake.answer(1);
  run();
  outbound_message late = msg("late");
  completion done = rec.for_body("late");
  EXPECT_EQ(s->try_submit("q", late, done), sender::submit_status::stopped);
  advance(milliseconds(100));
  EXPECT_EQ(rec.count(outcome::kind::abandoned), 10u);
  EXPECT_EQ(rec.count(outcome::kind::delivered), 2u);
  fake.answer(0);  // the reply arrives after the deadline: ignored
  run();
  rec.expect_exactly_once(12);
  EXPECT_EQ(s->counters().abandoned, 10u);
  EXPECT_EQ(s->counters().delivered, 2u);
  EXPECT_EQ(s->pending(), 0u);
}

TEST_F(SenderTest, DeadLetterQueueReceivesSenderFaultsUnchanged) {
  auto o = defaults();
  o.dead_letter_queue = "dlq";
  make(o);
  submit("q", msg("good"));
  submit("q", msg("poison"));
  outbound_message bad = msg(std::string("\x01", 1));
  submit("q", bad);  // invalid characters: no queue can take it
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  fake.answer(0, {{"1", "InvalidParameterValue", "no", true}});
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_EQ(fake.calls[1].queue, "dlq");
  EXPECT_EQ(fake.calls[1].bodies, std::vector<std::string>{"poison"});
  fake.answer(1);
  run();
  rec.expect_exactly_once(3);
  EXPECT_EQ(rec.by_body["good"][0].what, outcome::kind::delivered);
  EXPECT_EQ(rec.by_body["poison"][0].what, outcome::kind::dead_lettered);
  EXPECT_EQ(rec.by_body["poison"][0].reason->reason, reject_reason::sender_fault);
  EXPECT_EQ(rec.by_body[bad.body][0].reason->reason, reject_reason::invalid_characters);
}

TEST_F(SenderTest, ARefusalByTheDeadLetterQueueKeepsTheFirstReason) {
  auto o = defaults();
  o.dead_letter_queue = "dlq";
  make(o);
  submit("q", msg("poison"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  fake.answer(0, {{"0", "InvalidParameterValue", "bad value", true}});
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_EQ(fake.calls[1].queue, "dlq");
  fake.answer(1, {{"0", "AccessDenied", "not yours", true}});
  run();
  advance(milliseconds(5));
  EXPECT_EQ(fake.calls.size(), 2u);  // not sent a third time
  rec.expect_exactly_once(1);
  const auto& out = rec.by_body["poison"][0];
  EXPECT_EQ(out.what, outcome::kind::dead_lettered);
  ASSERT_TRUE(out.reason);
  EXPECT_EQ(out.reason->reason, reject_reason::sender_fault);
  EXPECT_EQ(out.reason->code, "InvalidParameterValue");
  EXPECT_NE(out.reason->message.find("bad value"), std::string::npos) << out.reason->message;
  EXPECT_NE(out.reason->message.find("dead-letter queue dlq did not take it: AccessDenied"),
            std::string::npos)
      << out.reason->message;
}

TEST_F(SenderTest, DeadLetterFileHoldsExactlyTheImpossibleMessagesBeforeTheyComplete) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sqsrelay-sender-dl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "dead.ndjson").string();
  std::filesystem::remove(path);
  auto file = ndjson_dead_letter_file::open(path, clk);
  ASSERT_TRUE(file);
  fake.limits["q"] = size_t{2048};
  make(defaults(), file->get());
  submit("q", msg("ok-1"));
  submit("q", msg(std::string(2049, 'z')));
  submit("q", msg("bad\x02"));
  submit("q", msg("ok-2"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].bodies, (std::vector<std::string>{"ok-1", "ok-2"}));
  fake.answer(0);
  for (int i = 0; i < 200 && rec.count(outcome::kind::dead_lettered) < 2; ++i) {
    usleep(5000);  // the writer thread syncs, then posts the completions
    run();
  }
  rec.expect_exactly_once(4);
  EXPECT_EQ(rec.count(outcome::kind::dead_lettered), 2u);
  std::ifstream in(path);
  std::vector<std::string> reasons;
  for (std::string line; std::getline(in, line);)
    reasons.emplace_back(boost::json::parse(line).at("reason").as_string());
  std::sort(reasons.begin(), reasons.end());
  EXPECT_EQ(reasons, (std::vector<std::string>{"invalid_characters", "oversize"}));
  s.reset();
  file->reset();
  std::filesystem::remove_all(dir);
}

TEST_F(SenderTest, AbandonedMessagesAreDeadLetteredBeforeTheirCompletionsWhenAsked) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sqsrelay-sender-abandon-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "dead.ndjson").string();
  std::filesystem::remove(path);
  auto file = ndjson_dead_letter_file::open(path, clk);
  ASSERT_TRUE(file);
  sender_options o = defaults();
  o.dead_letter_abandoned = true;
  make(o, file->get());
  for (int i = 0; i < 12; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);
  s->request_stop(clk.steady() + milliseconds(100));
  run();
  ASSERT_EQ(fake.calls.size(), 2u);
  fake.answer(1);  // m10, m11 delivered; m0..m9 stay in flight past the deadline
  run();
  auto count_lines = [&] {
    std::ifstream in(path);
    size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  advance(milliseconds(100));
  // abandon_all waited for the file: the lines are there when the completions have run.
  EXPECT_EQ(rec.count(outcome::kind::abandoned), 10u);
  EXPECT_EQ(count_lines(), 10u);
  std::ifstream in(path);
  std::vector<std::string> bodies;
  for (std::string line; std::getline(in, line);) {
    auto v = boost::json::parse(line);
    EXPECT_EQ(v.at("reason").as_string(), "abandoned");
    EXPECT_EQ(v.at("attempts").as_int64(), 1);
    bodies.emplace_back(v.at("body").as_string());
  }
  std::sort(bodies.begin(), bodies.end());
  std::vector<std::string> want;
  for (int i = 0; i < 10; ++i) want.push_back("m" + std::to_string(i));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(bodies, want);
  rec.expect_exactly_once(12);
  s.reset();
  file->reset();
  std::filesystem::remove_all(dir);
}

outbound_message grouped(std::string body, std::string group) {
  outbound_message m = msg(std::move(body));
  m.group_id = std::move(group);
  return m;
}

TEST_F(SenderTest, FifoQueueKeepsEachGroupInOrderAcrossRetriesWhileOtherGroupsGoOn) {
  make();
  for (int i = 0; i < 12; ++i) submit("jobs.fifo", grouped("g" + std::to_string(i), "g"));
  submit("jobs.fifo", grouped("h0", "h"));
  run();
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].bodies.front(), "g0");
  EXPECT_EQ(fake.calls[0].bodies.back(), "g9");
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u) << "g10 and g11 wait while g's batch is out; h goes on";
  EXPECT_EQ(fake.calls[1].bodies, (std::vector<std::string>{"h0"}));

  fake.fail(0, throttle());  // the whole batch comes back, ahead of g10 and g11
  run();
  advance(milliseconds(10));  // the first backoff's ceiling
  ASSERT_EQ(fake.calls.size(), 3u);
  std::vector<std::string> first_ten;
  for (int i = 0; i < 10; ++i) first_ten.push_back("g" + std::to_string(i));
  EXPECT_EQ(fake.calls[2].bodies, first_ten);

  fake.answer(2, {{"3", "InternalError", "try again", false}});
  run();
  advance(milliseconds(5));
  EXPECT_EQ(fake.calls.size(), 3u) << "g10 and g11 wait for g3's retry";
  advance(milliseconds(10));
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 4u);
  EXPECT_EQ(fake.calls[3].bodies, (std::vector<std::string>{"g3", "g10", "g11"}));
  fake.answer_all();
  run();
  rec.expect_exactly_once(13);
  EXPECT_EQ(rec.count(outcome::kind::delivered), 13u);
}

TEST_F(SenderTest, AFifoMessageWithoutAGroupIdIsDeadLetteredAloneWithoutACall) {
  make();
  submit("jobs.fifo", grouped("a", "g"));
  submit("jobs.fifo", msg("no-group"));
  submit("https://sqs.eu-west-1.amazonaws.com/1/jobs.fifo", msg("no-group-url"));
  submit("standard", msg("fine"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  for (const char* b : {"no-group", "no-group-url"}) {
    ASSERT_EQ(rec.by_body[b].size(), 1u) << b;
    const outcome& o = rec.by_body[b][0];
    EXPECT_EQ(o.what, outcome::kind::dead_lettered);
    EXPECT_EQ(o.reason->code, "MissingParameter");
    EXPECT_EQ(o.attempts, 0u);
  }
  for (auto& c : fake.calls)
    for (auto& b : c.bodies) EXPECT_TRUE(b == "a" || b == "fine") << b;
}

TEST_F(SenderTest, AbandonedOutcomesSayWhy) {
  make();
  for (int i = 0; i < 3; ++i) submit("q", msg("m" + std::to_string(i)));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  s->request_stop(clk.steady() + milliseconds(50));
  run();
  advance(milliseconds(50));
  ASSERT_EQ(rec.count(outcome::kind::abandoned), 3u);
  const outcome& o = rec.by_body["m0"][0];
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(o.reason->code, "Abandoned");
  EXPECT_EQ(o.attempts, 1u);
  EXPECT_NE(o.reason->message.find("stop deadline (1 attempts"), std::string::npos)
      << o.reason->message;
}

TEST_F(SenderTest, FifoGroupMovesOnAfterItsHeadIsDeadLettered) {
  make();
  submit("jobs.fifo", grouped("a", "g"));
  run();
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 1u);
  submit("jobs.fifo", grouped("b", "g"));
  run();
  advance(milliseconds(5));
  EXPECT_EQ(fake.calls.size(), 1u);
  fake.answer(0, {{"0", "InvalidParameterValue", "bad", true}});
  run();
  EXPECT_EQ(rec.by_body["a"][0].what, outcome::kind::dead_lettered);
  advance(milliseconds(5));
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_EQ(fake.calls[1].bodies, (std::vector<std::string>{"b"}));
}

// Random replies (partial failures, missing entries, throttling, sender faults) on a FIFO
// queue with a few groups: every call may carry a message only when each earlier message of
// its group has ended or comes before it in the same call.
TEST_F(SenderTest, FifoGroupOrderHoldsUnderRandomFailures) {
  make();
  std::mt19937 pick(11);
  auto uniform = [&](size_t k) { return static_cast<size_t>(pick() % k); };
  const int n = 400;
  std::map<std::string, std::pair<std::string, int>> meta;  // body -> (group, position)
  std::map<std::string, std::vector<std::string>> order;    // group -> bodies, in order
  size_t checked = 0;
  auto check_new_calls = [&] {
    for (; checked < fake.calls.size(); ++checked) {
      const auto& bodies = fake.calls[checked].bodies;
      for (size_t j = 0; j < bodies.size(); ++j) {
        const auto& [g, pos] = meta[bodies[j]];
        for (int k = 0; k < pos; ++k) {
          const std::string& earlier = order[g][k];
          bool ended = !rec.by_body[earlier].empty();
          bool before = std::find(bodies.begin(), bodies.begin() + j, earlier) !=
                        bodies.begin() + j;
          ASSERT_TRUE(ended || before) << bodies[j] << " sent before " << earlier;
        }
      }
    }
  };
  for (int i = 0; i < n; ++i) {
    std::string g = "g" + std::to_string(uniform(3));
    std::string body = "m" + std::to_string(i);
    meta[body] = {g, static_cast<int>(order[g].size())};
    order[g].push_back(body);
    submit("jobs.fifo", grouped(body, g));
  }
  run();
  for (int step = 0; step < 5000 && rec.by_body.size() < static_cast<size_t>(n); ++step) {
    check_new_calls();
    std::vector<size_t> open;
    for (size_t i = 0; i < fake.calls.size(); ++i)
      if (!fake.calls[i].answered) open.push_back(i);
    if (open.empty()) {
      advance(milliseconds(1 + uniform(20)));
      continue;
    }
    size_t c = open[uniform(open.size())];
    switch (uniform(5)) {
      case 0:
        fake.fail(c, throttle());
        break;
      case 1: {
        std::vector<entry_failure> failed;
        for (const auto& id : fake.calls[c].ids)
          if (uniform(3) == 0) failed.push_back({id, "InternalError", "x", false});
        fake.answer(c, failed);
        break;
      }
      case 2: {
        const auto& ids = fake.calls[c].ids;
        fake.answer(c, {}, {ids[uniform(ids.size())]});
        break;
      }
      case 3:
        fake.answer(c, {{fake.calls[c].ids[0], "InvalidParameterValue", "bad", true}});
        break;
      default:
        fake.answer(c);
    }
    run();
  }
  check_new_calls();
  rec.expect_exactly_once(n);
}

TEST_F(SenderTest, GroupIdsOnAStandardQueueDoNotSerializeBatches) {
  make();
  for (int i = 0; i < 20; ++i) submit("jobs", grouped("m" + std::to_string(i), "g"));
  run();
  EXPECT_EQ(fake.in_flight(), 2u);
}

TEST_F(SenderTest, DestructionAbandonsEverythingStillPendingIncludingTheInbox) {
  make();
  submit("q", msg("queued"));  // not drained yet
  s.reset();
  ASSERT_EQ(rec.by_body["queued"].size(), 1u);
  EXPECT_EQ(rec.by_body["queued"][0].what, outcome::kind::abandoned);
}

}  // namespace
}  // namespace sqsrelay::pipeline
