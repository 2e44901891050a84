#include "app/receive_cmd.h"

#include <charconv>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "base/hash.h"
#include "sqs/json_text.h"

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

// One message as a JSON line, in the shape of the SQS API (so jq filters written for
// `aws sqs receive-message` output work on it).
void append_message(std::string& out, const sqs::received_message& m) {
  out += "{\"MessageId\":";
  sqs::append_json_string(out, m.message_id);
  out += ",\"ReceiptHandle\":";
  sqs::append_json_string(out, m.receipt_handle);
  out += ",\"MD5OfBody\":";
  sqs::append_json_string(out, m.md5_of_body);
  out += ",\"Body\":";
  sqs::append_json_string(out, m.body);
  out += ",\"Attributes\":{";
  bool first = true;
  for (auto& [k, v] : m.attributes) {
    if (!first) out.push_back(',');
    first = false;
    sqs::append_json_member(out, k, v);
  }
  out += "},\"MessageAttributes\":{";
  first = true;
  for (auto& a : m.message_attributes) {
    if (!first) out.push_back(',');
    first = false;
    sqs::append_json_string(out, a.name);
    out += ":{";
    sqs::append_json_member(out, "DataType", a.data_type);
    out.push_back(',');
    if (a.binary()) {
      sqs::append_json_member(out, "BinaryValue", base64_encode(a.value));
    } else {
      sqs::append_json_member(out, "StringValue", a.value);
    }
    out.push_back('}');
  }
  out += "}}\n";
}

asio::awaitable<int> receive_body(sqs::session* s, receive_options o) {
  sqs::client& c = s->sqs();
  auto url = co_await c.resolve_queue(o.queue);
  if (!url) co_return report(url.error());
  int printed = 0;
  std::string line;
  for (;;) {
    sqs::receive_options ro;
    ro.max_messages = o.max > 0 ? std::min(10, o.max - printed) : 10;
    ro.wait_seconds = o.wait;
    if (o.visibility >= 0) ro.visibility_timeout = o.visibility;
    auto got = co_await c.receive_message(*url, ro);
    if (!got) co_return report(got.error());
    if (got->empty()) {
      if (o.keep_going) continue;
      break;
    }
    line.clear();
    for (auto& m : *got) append_message(line, m);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    printed += static_cast<int>(got->size());
    if (o.delete_after) {
      std::vector<sqs::handle_entry> entries;
      for (size_t i = 0; i < got->size(); ++i)
        entries.push_back({std::to_string(i), (*got)[i].receipt_handle});
      auto d = co_await c.delete_message_batch(*url, std::move(entries));
      if (!d) co_return report(d.error());
      if (!d->failed.empty()) {
        for (auto& f : d->failed) {
          size_t i = got->size();
          std::from_chars(f.id.data(), f.id.data() + f.id.size(), i);
          spdlog::error("delete of message {} failed: {}: {}",
                        i < got->size() ? (*got)[i].message_id : f.id, f.code, f.message);
        }
        co_return 1;
      }
    }
    if (o.max > 0 && printed >= o.max) break;
  }
  spdlog::debug("received {} messages", printed);
  co_return 0;
}

}  // namespace

CLI::App* add_receive_command(CLI::App& app, receive_options& o) {
  auto* cmd = app.add_subcommand("receive", "Print a queue's messages as NDJSON");
  cmd->add_option("--queue,-q", o.queue, "Queue name or URL")->required();
  cmd->add_flag("--delete", o.delete_after, "Delete each message after printing it");
  cmd->add_option("--max,-n", o.max, "Messages to print (0: until the queue is empty)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--wait", o.wait, "Long-poll seconds per ReceiveMessage (0-20)")
      ->capture_default_str()
      ->check(CLI::Range(0, 20));
  cmd->add_option("--visibility", o.visibility,
                  "VisibilityTimeout in seconds for the received messages (default: the "
                  "queue's)")
      ->check(CLI::Range(0, 43200));
  cmd->add_flag("--follow", o.keep_going, "Keep polling when the queue is empty");
  add_client_flags(cmd, o.client);
  return cmd;
}

int run_receive(const receive_options& o) {
  return run_with_session(o.client, o.queue,
                          [&o](sqs::session& s) { return receive_body(&s, o); });
}

}  // namespace sqsrelay::app
