#include "app/embedded_sink.h"

#include "app/ingest_dead_letters.h"

#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

using awaitable_token = asio::as_tuple_t<asio::use_awaitable_t<>>;

struct stored {
  std::optional<sqs::api_error> error;
  server::local_send_result result;
};

// local_sender::send as an awaitable that resumes on the awaiting coroutine's executor.
auto async_store(server::local_sender& s, std::string_view queue,
                 std::span<const server::local_message> msgs) {
  return asio::async_initiate<const awaitable_token, void(stored)>(
      [&s, queue, msgs](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        s.send(queue, msgs, [h, ex](const sqs::api_error* e, server::local_send_result r) {
          stored out;
          if (e) out.error = *e;
          out.result = std::move(r);
          asio::post(ex, [h, out = std::move(out)]() mutable { std::move (*h)(std::move(out)); });
        });
      },
      awaitable_token{});
}

}  // namespace

asio::awaitable<sources::submit_result> embedded_sink::async_submit(
    sources::ingest_target target, sources::ingest_batch batch) {
  stats_.batches += 1;
  std::vector<server::local_message> msgs;
  msgs.reserve(batch.messages().size());
  for (const auto& m : batch.messages()) msgs.push_back({m.body, m.attributes, -1});
  std::string queue = target.queue;
  auto [st] = co_await async_store(sender_, queue, msgs);
  if (st.error) {
    stats_.failures += 1;
    if (st.error->type == "QueueDoesNotExist")
      co_return sources::submit_result::refused(
          404, fmt::format("queue '{}' does not exist", queue));
    if (st.error->sender_fault)  // e.g. an invalid queue name
      co_return sources::submit_result::refused(
          400, fmt::format("queue '{}': {}", queue, st.error->message));
    co_return sources::submit_result::retry_later(std::chrono::seconds(1), st.error->message);
  }
  stats_.stored += st.result.stored;

  // Dead letters: the route's invalid elements and what the queue refused.
  std::vector<refused_message> refused;
  for (auto& r : st.result.rejected)
    refused.push_back({r.index, r.error.type, r.error.message});
  // What the queue refused (e.g. longer than its MaximumMessageSize) is reported per element
  // like an ack = delivered route's undelivered messages, never hidden in a plain 200.
  std::vector<sources::undelivered_message> undelivered;
  undelivered.reserve(refused.size());
  for (const auto& r : refused) {
    const auto& m = batch.messages()[r.index];
    undelivered.push_back({m.index, m.offset, r.code, r.message});
  }
  size_t n_dead = count_dead_letters(batch, refused);
  if (n_dead == 0) co_return sources::submit_result::accepted();
  const sources::ingest_batch* batch_ptr = &batch;
  auto ec = co_await write_ingest_dead_letters(dead_letters_, queue, batch_ptr, std::move(refused));
  if (ec) {
    stats_.failures += 1;
    co_return sources::submit_result::retry_later(
        std::chrono::seconds(1), "the dead-letter file could not be written: " + ec.message());
  }
  stats_.dead_lettered += n_dead;
  auto ok = sources::submit_result::accepted();
  ok.undelivered = std::move(undelivered);
  co_return ok;
}

std::string embedded_sink::metrics_text() const {
  std::string out;
  auto line = [&](std::string_view name, std::string_view help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  line("sqsrelay_ingest_store_batches_total", "Ingest batches stored in the embedded server.",
       stats_.batches);
  line("sqsrelay_ingest_store_messages_total", "Ingested messages stored in their queue.",
       stats_.stored);
  line("sqsrelay_ingest_dead_letters_total", "Ingested elements written to the dead-letter file.",
       stats_.dead_lettered);
  line("sqsrelay_ingest_store_failures_total", "Ingest batches the store could not take.",
       stats_.failures);
  return out;
}

}  // namespace sqsrelay::app
