// The sender: takes messages for any number of queues, packs them into SendMessageBatch
// calls, keeps an adaptive number of calls in flight, retries what can succeed and
// dead-letters what cannot, and reports each message's end exactly once.
//
//   sender s(executor, transport, options);
//   s.submit("orders", std::move(msg), [](const outcome& o) { ... });   // any thread
//   s.flush(std::chrono::seconds(30));                                    // any other thread
//   s.stop(std::chrono::seconds(10));
//
// Batching (per queue): a batch closes at 10 entries, when the next message would take it
// past 1 MiB (SQS's sum of message sizes), after `linger` since its first message (0: as soon
// as a request slot is free), or at once while someone waits in flush()/stop().
// Limits: each queue's MaximumMessageSize is read through the transport before its first
// message is batched (and again every `limit_refresh`); a larger message is dead-lettered
// without a call.
// Outcomes: for every reply, Successful + Failed is reconciled with what was sent: succeeded
// entries complete as delivered and are never sent again; SenderFault=true entries are
// dead-lettered; SenderFault=false, missing entries and whole-request failures that can
// succeed (transport, timeout, 5xx, throttling) are retried after capped exponential backoff
// with full jitter, and so is a missing queue during `missing_queue_grace`; other
// whole-request errors dead-letter the batch's messages.
// Dead letters go to the optional `dead_letter_sink` (completion only after it is durable)
// and/or are re-sent to `options.dead_letter_queue` (unchanged); the completion reports the
// reason either way.
//
// Threading: all state lives on `executor`, which must be single-threaded (an io_context run
// by one thread, or a strand). submit/try_submit are thread-safe; completions run on the
// executor. flush() and stop() block and must not be called on the executor's thread;
// request_stop() and process_due() are for code already on it (and tests on a manual clock).
// Memory: at most `max_pending_messages` / `max_pending_bytes` accepted and not completed;
// submit blocks (try_submit refuses) beyond that.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "base/clock.h"
#include "base/random.h"
#include "pipeline/backoff.h"
#include "pipeline/counters.h"
#include "pipeline/dead_letter.h"
#include "pipeline/message.h"
#include "pipeline/transport.h"
#include "pipeline/window.h"

namespace sqsrelay::pipeline {

struct sender_options {
  std::chrono::microseconds linger{std::chrono::milliseconds(5)};
  size_t max_pending_messages = 200000;
  size_t max_pending_bytes = size_t{256} << 20;
  window_options window;
  backoff_policy backoff;
  uint32_t max_attempts = 0;  // calls per message before retry_limit; 0: until stop's deadline
  // Used when a queue's MaximumMessageSize cannot be read (e.g. a producer allowed only
  // sqs:SendMessage): SQS's largest, so SQS itself decides (SenderFault=true -> dead letter).
  size_t fallback_max_message_size = 1048576;
  std::chrono::seconds limit_refresh{300};
  std::string dead_letter_queue;  // optional: re-send dead letters there (name or URL)
  // A QueueDoesNotExist answer is retried with backoff for this long (from the first such
  // answer for the queue since its last other answer) before the messages are
  // dead-lettered. 0: dead-letter at once (`sqsrelay send`); `sqsrelay run` waits minutes,
  // since its spool may hold a backlog for a queue that is about to be created.
  std::chrono::seconds missing_queue_grace{0};
  // Also write the messages abandoned at the stop deadline (or on destruction) to the
  // dead-letter sink, with reason `abandoned`, and wait until they are durable before their
  // completions run. The sink must complete without the sender's executor (the wait blocks
  // it); the NDJSON file does. `sqsrelay send` sets it: its input may be a pipe.
  bool dead_letter_abandoned = false;
};

class sender_engine;

class sender {
 public:
  sender(boost::asio::any_io_executor executor, batch_transport& transport,
         sender_options options = {}, dead_letter_sink* dead_letters = nullptr,
         clock& clk = system_clock::instance(), random_source* rnd = nullptr);
  // Abandons whatever is still pending. Call stop() first; destroy the sender on the
  // executor's thread or after the executor stopped running.
  ~sender();
  sender(const sender&) = delete;
  sender& operator=(const sender&) = delete;

  enum class submit_status { accepted, full, stopped };

  // Takes the message if there is room. On `full`/`stopped`, `m` and `done` are left as they
  // were (done is not called). Never blocks.
  submit_status try_submit(std::string_view queue, outbound_message& m, completion& done);

  // Waits for room, then takes the message. Returns false (done not called) once stopping.
  // Never call on the executor's thread.
  bool submit(std::string_view queue, outbound_message m, completion done);
  // submit() without the wait for room: for the executor's own thread (a completion that
  // sends more), where waiting would deadlock. Exceeds the pending limits by what it adds.
  bool submit_unbounded(std::string_view queue, outbound_message m, completion done);

  // Waits until nothing is pending (messages submitted meanwhile by other threads are waited
  // for too) or `timeout` passes; batches close without lingering meanwhile. True when done.
  bool flush(std::chrono::steady_clock::duration timeout);

  // Refuses new messages, flushes until `timeout`, then abandons what is left (completions
  // report `abandoned`; replies that arrive later are ignored). Blocks until every message
  // has completed.
  void stop(std::chrono::steady_clock::duration timeout);

  // On the executor: the non-blocking form of stop(), with a deadline on the sender's clock.
  void request_stop(std::chrono::steady_clock::time_point deadline);
  // On the executor: runs everything due by the sender's clock now (tests on a manual clock
  // call it after advancing time).
  void process_due();

  sender_counters counters() const;
  size_t pending() const;

 private:
  std::shared_ptr<sender_engine> engine_;
};

}  // namespace sqsrelay::pipeline
