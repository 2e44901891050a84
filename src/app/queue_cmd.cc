#include "app/queue_cmd.h"

#include <cstdio>

#include <fmt/format.h>

#include "sqs/json_text.h"

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

// "K=V" items into a map; false (with the offending item in `bad`) on an item without '='.
bool parse_pairs(const std::vector<std::string>& items, std::map<std::string, std::string>& out,
                 std::string& bad) {
  for (auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      bad = item;
      return false;
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return true;
}

void print_line(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

asio::awaitable<int> queue_body(sqs::session* s, queue_options o) {
  sqs::client& c = s->sqs();
  std::map<std::string, std::string> attrs, tags;
  std::string bad;
  if (!parse_pairs(o.attrs, attrs, bad) || !parse_pairs(o.tags, tags, bad)) {
    spdlog::error("'{}': expected KEY=VALUE", bad);
    co_return 2;
  }
  if (o.action == "create") {
    auto r = co_await c.create_queue(o.queue, attrs, tags);
    if (!r) co_return report(r.error());
    print_line(*r);
  } else if (o.action == "url") {
    auto r = co_await c.get_queue_url(o.queue);
    if (!r) co_return report(r.error());
    print_line(*r);
  } else if (o.action == "list") {
    auto r = co_await c.list_queues(o.prefix);
    if (!r) co_return report(r.error());
    for (auto& u : r->queue_urls) print_line(u);
  } else if (o.action == "attrs") {
    std::vector<std::string> names = o.names.empty() ? std::vector<std::string>{"All"} : o.names;
    auto r = co_await c.get_queue_attributes(o.queue, std::move(names));
    if (!r) co_return report(r.error());
    std::string out = "{";
    bool first = true;
    for (auto& [k, v] : *r) {
      if (!first) out.push_back(',');
      first = false;
      sqs::append_json_member(out, k, v);
    }
    out.push_back('}');
    print_line(out);
  } else if (o.action == "set") {
    if (attrs.empty()) {
      spdlog::error("queue set: give at least one --attr KEY=VALUE");
      co_return 2;
    }
    auto r = co_await c.set_queue_attributes(o.queue, attrs);
    if (!r) co_return report(r.error());
  } else if (o.action == "purge") {
    auto r = co_await c.purge_queue(o.queue);
    if (!r) co_return report(r.error());
  } else if (o.action == "delete") {
    auto r = co_await c.delete_queue(o.queue);
    if (!r) co_return report(r.error());
  } else {
    spdlog::error("queue: unknown action '{}'", o.action);
    co_return 2;
  }
  co_return 0;
}

}  // namespace

CLI::App* add_queue_command(CLI::App& app, queue_options& o) {
  auto* cmd = app.add_subcommand("queue", "Create, list, inspect, change, purge, delete queues");
  cmd->require_subcommand(1);
  auto on = [&o](const char* name) { return [&o, name] { o.action = name; }; };

  auto* create = cmd->add_subcommand("create", "Create a queue; prints its URL");
  create->add_option("name", o.queue, "Queue name (FIFO names end in .fifo)")->required();
  create->add_option("--attr", o.attrs, "Attribute KEY=VALUE (repeatable), e.g. "
                     "VisibilityTimeout=60, FifoQueue=true")
      ->allow_extra_args(false);  // one value per flag: never the positional queue name
  create->add_option("--tag", o.tags, "Tag KEY=VALUE (repeatable)")->allow_extra_args(false);
  create->callback(on("create"));

  auto* url = cmd->add_subcommand("url", "Print a queue's URL");
  url->add_option("name", o.queue, "Queue name")->required();
  url->callback(on("url"));

  auto* list = cmd->add_subcommand("list", "Print the queue URLs, one per line");
  list->add_option("--prefix", o.prefix, "Only queues whose name starts with this");
  list->callback(on("list"));

  auto* attrs = cmd->add_subcommand("attrs", "Print a queue's attributes as a JSON object");
  attrs->add_option("queue", o.queue, "Queue name or URL")->required();
  attrs->add_option("--name", o.names, "Attribute name (repeatable; default All)")
      ->allow_extra_args(false);
  attrs->callback(on("attrs"));

  auto* set = cmd->add_subcommand("set", "Change queue attributes");
  set->add_option("queue", o.queue, "Queue name or URL")->required();
  set->add_option("--attr", o.attrs, "Attribute KEY=VALUE (repeatable)")
      ->required()
      ->allow_extra_args(false);
  set->callback(on("set"));

  auto* purge = cmd->add_subcommand("purge", "Delete every message in a queue");
  purge->add_option("queue", o.queue, "Queue name or URL")->required();
  purge->callback(on("purge"));

  auto* del = cmd->add_subcommand("delete", "Delete a queue");
  del->add_option("queue", o.queue, "Queue name or URL")->required();
  del->callback(on("delete"));

  for (auto* sub : {create, url, list, attrs, set, purge, del}) add_client_flags(sub, o.client);
  return cmd;
}

int run_queue(const queue_options& o) {
  // A URL names its endpoint; a name doesn't (create/url/list never take URLs).
  return run_with_session(o.client, o.queue,
                          [&o](sqs::session& s) { return queue_body(&s, o); });
}

}  // namespace sqsrelay::app
