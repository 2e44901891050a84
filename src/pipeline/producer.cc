// sqsrelay::producer (include/sqsrelay/producer.h): a sender, an SQS connection and an I/O
// thread behind a small public API.
#include "sqsrelay/producer.h"

#include <exception>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "pipeline/dead_letter.h"
#include "pipeline/sender.h"
#include "pipeline/sqs_transport.h"

namespace sqsrelay {

namespace asio = boost::asio;

namespace {

send_result to_result(const pipeline::outcome& o) {
  send_result r;
  r.attempts = o.attempts;
  switch (o.what) {
    case pipeline::outcome::kind::delivered:
      r.status = send_status::delivered;
      r.message_id = o.message_id;
      break;
    case pipeline::outcome::kind::dead_lettered:
      r.status = send_status::dead_lettered;
      break;
    case pipeline::outcome::kind::abandoned:
      r.status = send_status::abandoned;
      r.reason = "abandoned";
      break;
  }
  if (o.reason) {
    r.reason = std::string(pipeline::to_string(o.reason->reason));
    r.code = o.reason->code;
    r.detail = o.reason->message;
  }
  return r;
}

pipeline::outbound_message to_outbound(message&& m) {
  pipeline::outbound_message out;
  out.body = std::move(m.body);
  out.attributes.reserve(m.attributes.size());
  for (auto& a : m.attributes)
    out.attributes.push_back({std::move(a.name), std::move(a.data_type), std::move(a.value)});
  out.group_id = std::move(m.group_id);
  out.dedup_id = std::move(m.dedup_id);
  out.delay_seconds = m.delay_seconds;
  return out;
}

// A user callback that throws must not cut short the completions that follow it (the rest
// of its batch): the exception is logged and dropped.
void run_callback(const std::function<void(const send_result&)>& cb, const send_result& r) {
  try {
    cb(r);
  } catch (const std::exception& e) {
    spdlog::error("sqsrelay::producer: a send callback threw ({}); ignored", e.what());
  } catch (...) {
    spdlog::error("sqsrelay::producer: a send callback threw; ignored");
  }
}

}  // namespace

struct producer::impl {
  producer_options opts;
  pipeline::owned_io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<pipeline::sqs_connection> conn;
  std::unique_ptr<pipeline::ndjson_dead_letter_file> dead_letters;
  std::unique_ptr<pipeline::sender> sender;
  std::thread thread;

  void submit(const std::string& queue, message m, pipeline::completion done) {
    // From a callback (the I/O thread) send() must not wait for room: only that thread
    // makes room.
    bool accepted = std::this_thread::get_id() == thread.get_id()
                        ? sender->submit_unbounded(queue, to_outbound(std::move(m)), done)
                        : sender->submit(queue, to_outbound(std::move(m)), done);
    if (!accepted) {
      pipeline::outcome o;
      o.what = pipeline::outcome::kind::abandoned;
      done(o);
    }
  }
};

producer::producer(producer_options o) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(o);
  const auto& opts = impl_->opts;
  pipeline::connection_options co;
  co.endpoint_url = opts.endpoint_url;
  co.region = opts.region;
  co.access_key_id = opts.access_key_id;
  co.secret_access_key = opts.secret_access_key;
  co.session_token = opts.session_token;
  co.profile = opts.profile;
  co.ca_file = opts.ca_file;
  co.max_connections = std::max<uint32_t>(opts.max_in_flight, 1);
  std::string error;
  auto conn = pipeline::sqs_connection::create(impl_->io.get_executor(), co, error);
  if (!conn) throw std::runtime_error("sqsrelay::producer: " + error);
  impl_->conn = std::move(*conn);
  if (!opts.dead_letter_file.empty()) {
    auto f = pipeline::ndjson_dead_letter_file::open(opts.dead_letter_file);
    if (!f)
      throw std::runtime_error(fmt::format("sqsrelay::producer: cannot open dead-letter file {}: {}",
                                           opts.dead_letter_file, f.error().message()));
    impl_->dead_letters = std::move(*f);
  }
  pipeline::sender_options so;
  so.linger = opts.linger;
  so.max_pending_messages = std::max<size_t>(opts.max_pending_messages, 1);
  so.max_pending_bytes = opts.max_pending_bytes;
  so.window.max = co.max_connections;
  so.max_attempts = opts.max_attempts;
  so.dead_letter_queue = opts.dead_letter_queue;
  impl_->sender = std::make_unique<pipeline::sender>(
      impl_->io.get_executor(), impl_->conn->transport(), so, impl_->dead_letters.get());
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

producer::~producer() {
  impl_->sender->stop(impl_->opts.close_timeout);
  impl_->work.reset();
  impl_->io.stop();  // idle pooled connections keep reads pending: stop, don't wait for them
  impl_->thread.join();
  // Requests still on the wire at the deadline are suspended coroutines holding pooled
  // connections: destroy them now, while the pool they return connections to exists.
  impl_->io.destroy_handlers();
  impl_->sender.reset();
  impl_->conn.reset();
}

std::future<send_result> producer::send(const std::string& queue, message m) {
  auto p = std::make_shared<std::promise<send_result>>();
  auto f = p->get_future();
  impl_->submit(queue, std::move(m),
                [p](const pipeline::outcome& o) { p->set_value(to_result(o)); });
  return f;
}

void producer::send(const std::string& queue, message m,
                    std::function<void(const send_result&)> callback) {
  impl_->submit(queue, std::move(m), [cb = std::move(callback)](const pipeline::outcome& o) {
    if (cb) run_callback(cb, to_result(o));
  });
}

bool producer::flush(std::chrono::milliseconds timeout) { return impl_->sender->flush(timeout); }

producer_stats producer::stats() const {
  auto c = impl_->sender->counters();
  producer_stats s;
  s.accepted = c.accepted;
  s.delivered = c.delivered;
  s.retried = c.retried;
  s.dead_lettered = c.dead_lettered;
  s.abandoned = c.abandoned;
  s.api_calls = c.api_calls;
  s.entries_sent = c.entries_sent;
  s.billing_units = c.billing_units;
  s.throttled = c.throttled;
  s.request_errors = c.request_errors;
  s.in_flight = c.in_flight;
  s.window = c.window;
  s.pending = c.pending;
  return s;
}

}  // namespace sqsrelay
