// `sqsrelay send [--endpoint-url URL] --queue Q [FILE|-]`: reads plain lines, NDJSON or a
// JSON array as a stream (pipeline::message_reader), submits every record to the batching
// sender and reports what happened. The reading thread is the main thread; the sender and the
// SQS client share one I/O thread. Memory is bounded by the sender's pending limit: submit
// blocks when it is reached, so reading pauses while SQS is slow.
#include "app/send_cmd.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "pipeline/dead_letter.h"
#include "pipeline/message_reader.h"
#include "pipeline/sender.h"
#include "pipeline/sqs_transport.h"
#include "sqs/client.h"
#include "sqs/session.h"

namespace sqsrelay::app {

namespace asio = boost::asio;
using namespace pipeline;

namespace {

std::atomic<bool> interrupted{false};

void on_sigint(int) {
  interrupted.store(true);
  ::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills at once
}


// Per-message failures printed to stderr when no dead-letter file keeps them.
constexpr uint64_t max_printed_failures = 20;

// Removes the default dead-letter file at the end when this run created it and nothing was
// written to it.
struct remove_if_empty {
  std::string path;  // empty: keep whatever is there
  ~remove_if_empty() {
    if (path.empty()) return;
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) == 0 && !ec) std::filesystem::remove(path, ec);
  }
};

// Where dead letters go when --dead-letter-file is not given (the current directory).
constexpr std::string_view default_dead_letter_file = "sqsrelay-dead-letters.ndjson";

struct run_state {
  std::atomic<uint64_t> input_errors{0};
  std::atomic<uint64_t> printed{0};
  std::atomic<uint64_t> not_printed{0};
  bool print_failures = true;
};

void print_failure(run_state& st, uint64_t line, const outcome& o) {
  if (!st.print_failures) return;
  if (st.printed.fetch_add(1) >= max_printed_failures) {
    st.not_printed.fetch_add(1);
    return;
  }
  if (o.reason) {
    fmt::print(stderr, "sqsrelay send: line {}: {}: {} ({}): {}\n", line,
               o.what == outcome::kind::abandoned ? "abandoned" : "dead-lettered",
               to_string(o.reason->reason), o.reason->code, o.reason->message);
  } else {
    fmt::print(stderr, "sqsrelay send: line {}: {}\n", line, to_string(o.what));
  }
}

std::string rate(double n) { return fmt::format("{:.0f}", n); }

void draw_progress(const sender_counters& c, double secs, bool final_line) {
  double r = secs > 0 ? static_cast<double>(c.delivered) / secs : 0;
  fmt::print(stderr,
             "\r\033[2K{} read, {} delivered, {} msgs/s, {} in flight (window {}), {} retried, "
             "{} dead-lettered{}",
             c.accepted, c.delivered, rate(r), c.in_flight, c.window, c.retried,
             c.dead_lettered, final_line ? "\n" : "");
  std::fflush(stderr);
}

// The queue's URL, once SQS answered for it: GetQueueUrl for a name, then GetQueueAttributes
// (its MaximumMessageSize, which the sender needs anyway and the client caches) for a name
// and a URL alike, so that a URL naming a queue that does not exist, or an endpoint nobody
// answers on, is found before any input is read.
asio::awaitable<sqs::client_result<std::string>> checked_queue_url(sqs::client& client,
                                                                    std::string queue) {
  auto url = co_await client.resolve_queue(std::move(queue));
  if (!url) co_return url.error();
  auto limits = co_await client.get_queue_limits(*url);
  if (!limits) co_return limits.error();
  co_return *url;
}

// Checks that the queue exists (a typo must not dead-letter a whole file) and returns its URL.
result<std::string> resolve_queue(asio::io_context& io, sqs::client& client,
                                  const std::string& queue, std::string& error) {
  // Throttling, 5xx and network errors are retried (capped exponential backoff, ~1 min in
  // all); a queue that does not exist is not.
  auto r = asio::co_spawn(io, checked_queue_url(client, queue), asio::use_future).get();
  for (int attempt = 1; !r && r.error().retryable && attempt < 12; ++attempt) {
    if (attempt == 1)  // say so at once rather than after a minute of silence
      fmt::print(stderr, "sqsrelay send: queue {}: {}; retrying for up to a minute\n", queue,
                 r.error().message.empty() ? r.error().code : r.error().message);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 << attempt, 8000)));
    r = asio::co_spawn(io, checked_queue_url(client, queue), asio::use_future).get();
  }
  if (!r) {
    error = r.error().message.empty() ? r.error().code : r.error().message;
    return error_code(ENOENT, boost::system::generic_category());
  }
  return *r;
}

reader_options make_reader_options(const send_options& o, std::string& error, bool& ok) {
  reader_options ro;
  ok = false;
  auto fmt_opt = parse_input_format(o.format);
  if (!fmt_opt) {
    error = fmt::format("--format {}: expected auto, lines, ndjson or json", o.format);
    return ro;
  }
  ro.format = *fmt_opt;
  for (const auto& spec : o.attr_fields) {
    auto f = parse_attribute_field(spec, error);
    if (!f) return ro;
    ro.attributes.push_back(std::move(*f));
  }
  for (auto [path, out] : {std::pair{&o.group_field, &ro.group_pointer},
                           std::pair{&o.dedup_field, &ro.dedup_pointer}}) {
    if (path->empty()) continue;
    auto p = json_path_to_pointer(*path);
    if (!p) {
      error = fmt::format("'{}' is not a field path ($.a.b[0] or /a/b/0)", *path);
      return ro;
    }
    *out = *p;
  }
  if ((!ro.attributes.empty() || !ro.group_pointer.empty() || !ro.dedup_pointer.empty()) &&
      ro.format == input_format::lines) {
    error = "--attr-field/--group-field/--dedup-field need JSON input (--format ndjson|json)";
    return ro;
  }
  ok = true;
  return ro;
}

}  // namespace

CLI::App* add_send_command(CLI::App& app, send_options& o) {
  auto* cmd = app.add_subcommand(
      "send", "Send lines, NDJSON or a JSON array from FILE (or stdin) to a queue");
  add_client_flags(cmd, o.client);
  // The name send had before it shared the client flags.
  cmd->add_option("--ca-file", o.client.ca_bundle, "Same as --ca-bundle")->group("");
  cmd->add_option("-q,--queue", o.queue, "Queue name or URL")->required();
  cmd->add_option("input", o.input, "Input file; - or absent: stdin")->capture_default_str();
  cmd->add_option("--format", o.format,
                  "auto (by the first byte: '[' JSON array, '{' NDJSON, else lines), lines, "
                  "ndjson or json")
      ->capture_default_str();
  cmd->add_option("--attr-field", o.attr_fields,
                  "Message attribute from a JSON field: NAME=[TYPE:]PATH, e.g. "
                  "type=String:$.type or n=$.count (TYPE inferred when absent); repeatable")
      ->allow_extra_args(false);  // one value per flag: never the positional input file
  cmd->add_option("--group-field", o.group_field, "MessageGroupId from a JSON field ($.path)");
  cmd->add_option("--dedup-field", o.dedup_field,
                  "MessageDeduplicationId from a JSON field ($.path)");
  cmd->add_option("--group-id", o.group_id, "MessageGroupId for every message");
  cmd->add_option("--dead-letter-file", o.dead_letter_file,
                  "Append messages that can never be delivered, bad input records and "
                  "messages abandoned at the drain timeout here as NDJSON with the reason "
                  "(default: ./sqsrelay-dead-letters.ndjson, removed if left empty)");
  cmd->add_option("--dead-letter-queue", o.dead_letter_queue,
                  "Also send messages SQS rejected to this queue (name or URL)");
  cmd->add_option("--linger-ms", o.linger_ms,
                  "Longest wait for a batch to fill (0: send when a connection is free)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-in-flight", o.max_in_flight,
                  "Most requests in flight (the adaptive window's ceiling)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_option("--max-attempts", o.max_attempts,
                  "Calls per message before it is dead-lettered (0: until the drain timeout)")
      ->capture_default_str();
  cmd->add_option("--backoff-base-ms", o.backoff_base_ms,
                  "Retry backoff: the first wait's ceiling (doubles per attempt, full jitter)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--backoff-cap-ms", o.backoff_cap_ms, "Retry backoff: the longest wait")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--drain-timeout", o.drain_timeout_s,
                  "Seconds to keep delivering after the input ends; what is left is abandoned")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--progress", o.progress, "Show progress even when stderr is not a terminal");
  cmd->add_flag("--no-progress", o.no_progress, "Never show progress");
  cmd->add_flag("--summary-json", o.summary_json, "Also print the summary as JSON on stdout");
  return cmd;
}

int run_send(const send_options& o) {
  std::string error;
  bool ok = false;
  reader_options ro = make_reader_options(o, error, ok);
  if (!ok) {
    fmt::print(stderr, "sqsrelay send: {}\n", error);
    return 2;
  }
  int fd = 0;
  if (o.input != "-") {
    fd = ::open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fmt::print(stderr, "sqsrelay send: cannot open {}: {}\n", o.input, std::strerror(errno));
      return 2;
    }
  }
  // Dead letters are never only counted: without --dead-letter-file they go to
  // ./sqsrelay-dead-letters.ndjson (appended; removed again if this run created it and left
  // it empty). Only when that cannot be created either are they just printed and counted.
  const bool default_dead_letters = o.dead_letter_file.empty();
  const std::string dead_letter_path =
      default_dead_letters ? std::string(default_dead_letter_file) : o.dead_letter_file;
  std::error_code exists_ec;
  // Declared before the file: its destructor runs after the file is closed.
  remove_if_empty tidy;
  if (default_dead_letters && !std::filesystem::exists(dead_letter_path, exists_ec))
    tidy.path = dead_letter_path;
  std::unique_ptr<ndjson_dead_letter_file> dead_letters;
  if (auto f = ndjson_dead_letter_file::open(dead_letter_path); f) {
    dead_letters = std::move(*f);
  } else if (!default_dead_letters) {
    fmt::print(stderr, "sqsrelay send: cannot open dead-letter file {}: {}\n", dead_letter_path,
               f.error().message());
    return 2;
  } else {
    fmt::print(stderr,
               "sqsrelay send: warning: cannot create {} ({}); messages that cannot be "
               "delivered will only be counted (use --dead-letter-file)\n",
               dead_letter_path, f.error().message());
  }

  pipeline::owned_io_context io{1};
  auto work = asio::make_work_guard(io);
  // Endpoint, region, CA bundle and credentials resolve exactly as for receive and queue
  // (sqs/endpoint.h), including the queue URL's endpoint and the config file.
  sqs::session_options sopts = session_options_from(o.client, o.queue);
  sopts.max_connections = std::max(o.max_in_flight, 1u);
  // One call per request: the sender retries per entry itself, with its own window and
  // backoff (session's default retries each call, as the commands want).
  sopts.max_attempts = 1;
  auto session = sqs::session::open(io.get_executor(), sopts);
  if (!session) {
    fmt::print(stderr, "sqsrelay send: {}\n", session.error());
    return 2;
  }
  sqs_transport transport((*session)->sqs(), io.get_executor());
  std::thread io_thread([&] { io.run(); });
  auto shutdown_io = [&] {
    work.reset();
    io.stop();
    if (io_thread.joinable()) io_thread.join();
    io.destroy_handlers();  // while the connection and the sender they point into are alive
  };

  auto url = resolve_queue(io, (*session)->sqs(), o.queue, error);
  if (!url) {
    fmt::print(stderr, "sqsrelay send: queue {} at {}: {}\n", o.queue,
               (*session)->endpoint().url, error);
    shutdown_io();
    return 2;
  }

  if (!o.dead_letter_queue.empty()) {
    // A typo here would only show when the first message is refused, perhaps hours in.
    auto dlq = resolve_queue(io, (*session)->sqs(), o.dead_letter_queue, error);
    if (!dlq) {
      fmt::print(stderr, "sqsrelay send: --dead-letter-queue {} at {}: {}\n",
                 o.dead_letter_queue, (*session)->endpoint().url, error);
      shutdown_io();
        return 2;
    }
  }

  sender_options so;
  so.linger = std::chrono::microseconds(static_cast<int64_t>(o.linger_ms * 1000));
  so.window.max = sopts.max_connections;
  so.max_attempts = o.max_attempts;
  so.backoff.base = std::chrono::microseconds(static_cast<int64_t>(o.backoff_base_ms * 1000));
  so.backoff.cap = std::chrono::microseconds(static_cast<int64_t>(o.backoff_cap_ms * 1000));
  so.dead_letter_queue = o.dead_letter_queue;
  so.dead_letter_abandoned = true;  // stdin cannot be read again: keep what the deadline drops
  sender s(io.get_executor(), transport, so, dead_letters.get());

  run_state st;
  // The first failures are shown on the terminal unless the user chose a file for them.
  st.print_failures = default_dead_letters;
  const std::string& queue = *url;
  rejection bad_input{reject_reason::invalid_input, "InvalidInput", ""};
  message_reader reader(
      ro,
      [&](outbound_message&& m, uint64_t, uint64_t line) {
        if (!o.group_id.empty() && m.group_id.empty()) m.group_id = o.group_id;
        completion done = [&st, line](const outcome& out) {  // small: no allocation
          if (!out.delivered()) print_failure(st, line, out);
        };
        s.submit(queue, std::move(m), std::move(done));
      },
      [&](const input_error& e) {
        st.input_errors.fetch_add(1);
        fmt::print(stderr, "sqsrelay send: input record {} (line {}, byte offset {}): {}\n",
                   e.record, e.line, e.offset, e.what);
        if (!dead_letters) return;
        outbound_message m;
        m.body = std::string(e.raw);
        rejection why = bad_input;
        why.message = fmt::format("line {}, byte offset {}: {}", e.line, e.offset, e.what);
        std::promise<error_code> written;
        dead_letters->write({dead_letter_record{queue, &m, &why, 0}},
                            [&](error_code ec) { written.set_value(ec); });
        if (auto ec = written.get_future().get())
          fmt::print(stderr, "sqsrelay send: dead-letter file: {}\n", ec.message());
      });

  struct sigaction sa {};
  sa.sa_handler = on_sigint;  // no SA_RESTART: a blocked read returns EINTR
  ::sigaction(SIGINT, &sa, nullptr);

  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  bool show_progress = !o.no_progress && (o.progress || ::isatty(2));
  std::mutex progress_mu;
  std::condition_variable progress_cv;
  bool progress_done = false;
  std::thread progress;
  if (show_progress) {
    progress = std::thread([&] {
      std::unique_lock lock(progress_mu);
      while (!progress_cv.wait_for(lock, std::chrono::milliseconds(250),
                                   [&] { return progress_done; }))
        draw_progress(s.counters(), elapsed(), false);
    });
  }

  int read_error = 0;
  std::string chunk(1 << 20, '\0');
  while (!interrupted.load()) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_error = errno;
      break;
    }
    if (n == 0) break;
    reader.feed(std::string_view(chunk.data(), static_cast<size_t>(n)));
  }
  reader.finish();
  if (fd != 0) ::close(fd);
  if (read_error)
    fmt::print(stderr, "sqsrelay send: reading {}: {}\n", o.input, std::strerror(read_error));
  if (interrupted.load())
    fmt::print(stderr, "\nsqsrelay send: interrupted; delivering what was read (up to {} s)\n",
               o.drain_timeout_s);

  s.stop(std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout_s * 1000)));
  double secs = elapsed();
  if (progress.joinable()) {
    {
      std::lock_guard lock(progress_mu);
      progress_done = true;
    }
    progress_cv.notify_all();
    progress.join();
    draw_progress(s.counters(), secs, true);
  }
  shutdown_io();

  auto c = s.counters();
  double per_msg = c.accepted ? static_cast<double>(c.api_calls) / c.accepted : 0;
  double per_call = c.api_calls ? static_cast<double>(c.entries_sent) / c.api_calls : 0;
  double msgs_s = secs > 0 ? static_cast<double>(c.delivered) / secs : 0;
  fmt::print(stderr,
             "sqsrelay send: {} messages to {} in {:.2f} s: {} delivered ({} msgs/s), {} "
             "dead-lettered, {} abandoned, {} bad input records\n"
             "  {} API calls ({:.4f} per message, {:.2f} entries per call), {} billing units; "
             "{} entries retried, {} throttled, {} request errors\n",
             c.accepted, queue, secs, c.delivered, rate(msgs_s), c.dead_lettered, c.abandoned,
             st.input_errors.load(), c.api_calls, per_msg, per_call, c.billing_units,
             c.retried, c.throttled, c.request_errors);
  if (st.not_printed.load())
    fmt::print(stderr, "  ({} more failures not shown{})\n", st.not_printed.load(),
               dead_letters ? "" : "; use --dead-letter-file");
  if (dead_letters && (c.dead_lettered || c.abandoned || st.input_errors.load()))
    fmt::print(stderr, "  dead letters: {}\n", dead_letters->path());
  if (o.summary_json) {
    fmt::print(
        "{{\"messages\":{},\"delivered\":{},\"dead_lettered\":{},\"abandoned\":{},"
        "\"input_errors\":{},\"api_calls\":{},\"calls_per_message\":{:.5f},"
        "\"entries_per_call\":{:.3f},\"billing_units\":{},\"retried\":{},\"throttled\":{},"
        "\"request_errors\":{},\"missing_entries\":{},\"entry_failures\":{},"
        "\"unknown_entries\":{},\"max_backoff_ms\":{:.3f},\"seconds\":{:.4f},"
        "\"msgs_per_s\":{:.1f},\"window\":{},\"max_window\":{}}}\n",
        c.accepted, c.delivered, c.dead_lettered, c.abandoned, st.input_errors.load(),
        c.api_calls, per_msg, per_call, c.billing_units, c.retried, c.throttled,
        c.request_errors, c.missing_entries, c.entry_failures, c.unknown_entries,
        static_cast<double>(c.max_backoff_us) / 1000.0, secs, msgs_s, c.window, c.max_window);
    std::fflush(stdout);
  }
  bool all_ok = c.delivered == c.accepted && st.input_errors.load() == 0 && read_error == 0 &&
                !interrupted.load();
  return all_ok ? 0 : 1;
}

}  // namespace sqsrelay::app
