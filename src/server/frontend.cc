#include "server/frontend.h"

#include <fmt/format.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "base/random.h"
#include "sqs/json_text.h"
#include "sqs/query_codec.h"

namespace sqsrelay::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using sqs::api_error;

namespace {

enum class protocol { json, query };

constexpr std::string_view json_content_type = "application/x-amz-json-1.0";
constexpr std::string_view target_prefix = "AmazonSQS.";

std::string new_request_id() {
  thread_local random_source rng;
  return format_uuid(rng.next16());
}

http::response make_response(int status, std::string_view content_type, std::string body,
                             std::string_view request_id) {
  http::response res{static_cast<beast::http::status>(status), 11};
  res.set(beast::http::field::server, "sqsrelay");
  res.set(beast::http::field::content_type, content_type);
  res.set("x-amzn-RequestId", request_id);
  res.body() = std::move(body);
  return res;
}

http::response error_response(protocol p, const api_error& e, std::string_view request_id) {
  if (p == protocol::query) {
    // SQS's Query protocol words this one error its own way (recorded against AWS).
    std::string_view message = e.message;
    if (e.query_code == "AWS.SimpleQueueService.NonExistentQueue" &&
        message == "The specified queue does not exist.")
      message = "The specified queue does not exist for this wsdl version.";
    return make_response(e.http_status, "text/xml",
                         sqs::query_error_xml(e.sender_fault, e.query_code, message, request_id),
                         request_id);
  }
  // Two unmodelled errors carry another shape name in SQS's JSON answers (recorded against
  // AWS); SDKs read the code from x-amzn-query-error either way.
  std::string_view type = e.type == "InvalidParameterValue" ? "InvalidParameterValueException"
                          : e.type == "MissingParameter"    ? "MissingRequiredParameterException"
                                                            : std::string_view(e.type);
  json::object body{{"__type", fmt::format("com.amazonaws.sqs#{}", type)}, {"message", e.message}};
  auto res = make_response(e.http_status, json_content_type, json::serialize(body), request_id);
  res.set("x-amzn-query-error",
          fmt::format("{};{}", e.query_code, e.sender_fault ? "Sender" : "Receiver"));
  return res;
}

std::string_view header(const http::request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return {};
  return {it->value().data(), it->value().size()};
}

// The request path without its query string.
std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// "/ACCOUNT/NAME": a queue URL's path (an endpoint with a path prefix of its own is not one).
bool is_queue_path(std::string_view path) {
  auto slash = path.find('/', 1);
  if (path.empty() || path[0] != '/' || slash == std::string_view::npos || slash == 1) return false;
  auto account = path.substr(1, slash - 1);
  auto name = path.substr(slash + 1);
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  return std::all_of(account.begin(), account.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         !name.empty() && name.find('/') == std::string_view::npos;
}

struct decoded {
  protocol proto = protocol::json;
  std::string action;
  json::object body;
};

std::variant<decoded, api_error> decode_json(const http::request& req, std::string_view target,
                                             json::storage_ptr sp, size_t max_depth) {
  decoded d;
  d.proto = protocol::json;
  if (target.substr(0, target_prefix.size()) != target_prefix)
    return sqs::errors::invalid_action(target);
  d.action = std::string(target.substr(target_prefix.size()));
  std::string_view body = req.body();
  if (body.empty()) return d;
  json::parse_options po;
  po.max_depth = max_depth;
  // One parser per thread, reused: json::parse() would allocate its internal value stack on
  // the heap for every request. Decoding never suspends, so a thread-local is safe.
  // (The options are fixed per process, so the first call's are the ones kept.)
  thread_local json::parser parser(json::storage_ptr(), po);
  parser.reset(std::move(sp));
  boost::system::error_code ec;
  parser.write(body.data(), body.size(), ec);
  if (ec)
    return sqs::errors::serialization_exception(
        fmt::format("The request body is not valid JSON: {}", ec.message()));
  json::value v = parser.release();  // built in the request's arena
  if (!v.is_object())
    return sqs::errors::serialization_exception("The request body must be a JSON object.");
  // Move-construct: json's move *assignment* keeps the target's storage and deep-copies.
  return decoded{protocol::json, std::move(d.action), json::object(std::move(v.as_object()))};
}

std::variant<decoded, api_error> decode_query(const http::request& req) {
  decoded d;
  d.proto = protocol::query;
  std::string_view target = req.target();
  std::string form;
  if (auto q = target.find('?'); q != std::string_view::npos) form = target.substr(q + 1);
  if (!req.body().empty()) {
    if (!form.empty()) form += '&';
    form += req.body();
  }
  auto params = sqs::parse_form(form);
  if (!params)
    return sqs::errors::malformed_request(params.error().message);
  d.action = std::string(sqs::query_action(*params));
  // A bare GET of a queue URL (a browser, a health probe) is not an SQS request at all: AWS
  // answers 404 UnknownOperationException, not the 400 MissingAction of a form without Action.
  if (d.action.empty() && form.empty() && req.method() == beast::http::verb::get)
    return sqs::errors::auth_failure(404, "UnknownOperationException",
                                     "The requested operation is not supported.");
  if (d.action.empty()) return sqs::errors::auth_failure(400, "MissingAction",
                                                         "The request must contain the parameter Action.");
  auto obj = sqs::query_to_json_request(d.action, *params);
  if (!obj) {
    auto code = std::string(sqs::aws_error_code(obj.error().code));
    return sqs::errors::auth_failure(400, code, obj.error().message);
  }
  d.body = std::move(*obj);
  return d;
}

// The queue a request addresses, by name: the last segment of QueueUrl, or QueueName.
std::string_view queue_name_of(const json::object& body) {
  if (auto* url = body.if_contains("QueueUrl"); url && url->is_string()) {
    std::string_view u = url->get_string();
    auto slash = u.rfind('/');
    return slash == std::string_view::npos ? u : u.substr(slash + 1);
  }
  if (auto* name = body.if_contains("QueueName"); name && name->is_string())
    return name->get_string();
  return {};
}

bool is_batch_action(std::string_view action) {
  return action == "SendMessageBatch" || action == "DeleteMessageBatch" ||
         action == "ChangeMessageVisibilityBatch";
}

}  // namespace

frontend::frontend(service& svc, const aws::credential_store& creds, frontend_options o)
    : svc_(svc),
      creds_(creds),
      verifier_(creds, svc.clk(), "sqs"),
      api_(svc),
      opts_(o) {
  faults_.set(opts_.faults);
}

// GET shows the fault rules, POST replaces them with the body's specs (one per line; an
// empty body clears them). Loopback peers only: it changes how the server answers everyone.
asio::awaitable<http::response> frontend::admin_faults(http::request req, http::peer_info peer,
                                                       std::string request_id) {
  if (!peer.remote.address().is_loopback())
    co_return make_response(403, "text/plain", "fault injection is managed from loopback only\n",
                            request_id);
  if (req.method() == beast::http::verb::post) {
    std::string error;
    auto rules = parse_fault_rules(req.body(), error);
    if (!rules)
      co_return make_response(400, "text/plain", "bad fault spec: " + error + "\n", request_id);
    faults_.set(std::move(*rules));
  } else if (req.method() != beast::http::verb::get) {
    co_return make_response(405, "text/plain", "GET or POST\n", request_id);
  }
  std::string text;
  for (const auto& r : faults_.rules()) text += format_fault_rule(r) + "\n";
  co_return make_response(200, "text/plain", std::move(text), request_id);
}

http::response frontend::transport_error(int status, std::string_view reason) const {
  auto id = new_request_id();
  api_error e = status == 413 ? sqs::errors::request_too_large(8u << 20)
                              : sqs::errors::malformed_request(
                                    fmt::format("Malformed HTTP request: {}", reason));
  if (status == 411) e = sqs::errors::auth_failure(411, "MissingContentLength", std::string(reason));
  return error_response(protocol::query, e, id);
}

std::string frontend::metrics_text() const {
  auto& c = api_.counters();
  std::string out;
  auto line = [&](std::string_view name, std::string_view help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  line("sqsrelay_server_requests_total", "SQS API requests handled.", c.requests);
  line("sqsrelay_server_errors_total", "SQS API requests answered with an error.", c.errors);
  line("sqsrelay_server_messages_sent_total", "Messages stored by SendMessage(Batch).", c.sent);
  line("sqsrelay_server_messages_received_total", "Messages returned by ReceiveMessage.",
       c.received);
  line("sqsrelay_server_messages_deleted_total", "Messages deleted.", c.deleted);
  line("sqsrelay_server_auth_failures_total", "Requests rejected by SigV4 verification.",
       stats_.auth_failures);
  line("sqsrelay_server_malformed_requests_total", "Requests that could not be decoded.",
       stats_.malformed_requests);
  auto& f = faults_.stats();
  line("sqsrelay_fault_delayed_total", "Requests delayed by injected latency.", f.delayed);
  line("sqsrelay_fault_throttled_total", "Requests answered with an injected throttling error.",
       f.throttled);
  line("sqsrelay_fault_errors5xx_total", "Requests answered with an injected 500.", f.errors5xx);
  line("sqsrelay_fault_dropped_total", "Connections dropped before the request took effect.",
       f.dropped);
  line("sqsrelay_fault_dropped_after_total",
       "Connections dropped after the request took effect.", f.dropped_after);
  line("sqsrelay_fault_failed_entries_total", "Batch entries answered with an injected failure.",
       f.failed_entries);
  auto ws = svc_.log().get_stats();
  line("sqsrelay_store_syncs_total", "fdatasync calls of the message store.", ws.syncs);
  line("sqsrelay_store_appends_total", "Records appended to the message store.", ws.appends);
  line("sqsrelay_store_lazy_appends_total",
       "Records appended without asking for a sync (receive counts).", ws.lazy_appends);
  line("sqsrelay_store_synced_appends_total", "Records made durable by group commits.",
       ws.synced_appends);
  line("sqsrelay_store_linger_waits_total",
       "Waits of the sync thread for more appends before an fdatasync.", ws.linger_waits);
  line("sqsrelay_store_write_errors_total", "Failed writes to the message log.", ws.write_errors);
  line("sqsrelay_store_sync_errors_total", "Failed fdatasyncs of the message log.", ws.sync_errors);
  line("sqsrelay_server_store_refusals_total",
       "Requests answered 503 because the message store refused the write.", svc_.store_refusals());
  auto& rec = svc_.recovery();
  const auto gauge = [&](std::string_view name, std::string_view help, uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  gauge("sqsrelay_store_failed",
        "1 once the message log has failed (writes refused until a restart).",
        svc_.log().failed() ? 1 : 0);
  gauge("sqsrelay_store_recovery_corrupt_records",
        "Damaged stretches of the log skipped by the replay at startup.", rec.corrupt_records);
  gauge("sqsrelay_store_recovery_truncated_bytes",
        "Bytes of torn tail cut from the log at startup.", rec.truncated_bytes);
  gauge("sqsrelay_store_recovery_unknown_queue_records",
        "Log records of queues catalog.json does not know, found at startup.",
        rec.unknown_queue_records);
  out += fmt::format("# HELP sqsrelay_server_live_messages Messages stored.\n"
                     "# TYPE sqsrelay_server_live_messages gauge\nsqsrelay_server_live_messages {}\n",
                     svc_.live_messages());
  if (opts_.extra_metrics) out += opts_.extra_metrics();
  return out;
}

asio::awaitable<http::response> frontend::handle(http::request req, http::peer_info peer) {
  std::string request_id = new_request_id();
  std::string_view path = path_of(req.target());
  if (req.method() == beast::http::verb::get && (path == "/health" || path == "/healthz")) {
    // A store that failed refuses every write until a restart: not healthy.
    if (auto ec = svc_.log().failure()) {
      std::string body = R"({"status":"store failed","reason":)";
      sqs::append_json_string(body, ec.message());
      body += '}';
      co_return make_response(503, "application/json", body, request_id);
    }
    co_return make_response(200, "application/json", R"({"status":"ok"})", request_id);
  }
  if (req.method() == beast::http::verb::get && path == "/metrics") {
    if (!opts_.metrics_remote && !peer.remote.address().is_loopback())
      co_return make_response(403, "text/plain",
                              "metrics are served to loopback peers only (serve "
                              "--metrics-remote allows others)\n",
                              request_id);
    co_return make_response(200, "text/plain; version=0.0.4", metrics_text(), request_id);
  }
  if (path == "/_sqsrelay/faults") co_return co_await admin_faults(std::move(req), peer, request_id);

  std::string_view target_header = header(req, "X-Amz-Target");
  std::string_view content_type = header(req, "Content-Type");
  protocol proto = target_header.empty() ? protocol::query : protocol::json;
  bool form = content_type.empty() ||
              content_type.substr(0, 33) == "application/x-www-form-urlencoded";
  if (proto == protocol::query && !form && req.method() != beast::http::verb::get) {
    stats_.malformed_requests += 1;
    co_return error_response(proto, sqs::errors::unsupported_content_type(content_type),
                             request_id);
  }

  if (!creds_.empty()) {
    aws::signable_request sr{req.method_string(), req.target(), {}, req.body()};
    for (auto& f : req) sr.headers.emplace_back(f.name_string(), f.value());
    auto v = verifier_.verify(sr, svc_.options().region);
    if (auto* failure = std::get_if<aws::verify_failure>(&v)) {
      stats_.auth_failures += 1;
      co_return error_response(
          proto, sqs::errors::auth_failure(failure->http_status, failure->aws_code,
                                           failure->message),
          request_id);
    }
  }

  json::monotonic_resource mr;
  auto d = proto == protocol::json
               ? decode_json(req, target_header, json::storage_ptr(&mr), opts_.json_max_depth)
               : decode_query(req);
  if (auto* e = std::get_if<api_error>(&d)) {
    stats_.malformed_requests += 1;
    co_return error_response(proto, *e, request_id);
  }
  auto& dec = std::get<decoded>(d);
  (proto == protocol::json ? stats_.json_requests : stats_.query_requests) += 1;
  // A queue URL takes queue actions only; SQS refuses the endpoint-wide ones there.
  if (proto == protocol::query && (dec.action == "CreateQueue" || dec.action == "ListQueues") &&
      is_queue_path(path)) {
    stats_.malformed_requests += 1;
    co_return error_response(
        proto,
        api_error{"InvalidAction", "InvalidAction", 400, true,
                  fmt::format("The action {} is not valid for this endpoint.", dec.action)},
        request_id);
  }

  request_context ctx;
  ctx.host = std::string(header(req, "Host"));
  if (ctx.host.empty()) ctx.host = "localhost";
  if (path.size() > 1) ctx.path = std::string(path);
  ctx.sender_id = svc_.options().account_id;
  ctx.trace_id = std::string(header(req, "X-Amzn-Trace-Id"));
  std::string action = dec.action;
  fault_decision fault;
  json::array failed_entries;  // injected Failed[] entries
  if (faults_.active()) {
    fault = faults_.decide(queue_name_of(dec.body));
    if (fault.delay.count()) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(fault.delay);
      co_await timer.async_wait(asio::use_awaitable);
    }
    switch (fault.action) {
      case fault_action::throttle:
        co_return error_response(proto, sqs::errors::throttled(), request_id);
      case fault_action::error5xx:
        co_return error_response(proto, sqs::errors::internal_failure("Injected fault."),
                                 request_id);
      case fault_action::drop:
        co_return http::response{beast::http::status::unknown, 11};
      default:
        break;
    }
    // Partial failures: the chosen entries leave the request and come back in Failed[].
    auto* entries = dec.body.if_contains("Entries");
    if (fault.partial > 0 && is_batch_action(action) && entries && entries->is_array()) {
      json::array kept;
      for (auto& e : entries->get_array()) {
        const json::value* id = e.is_object() ? e.get_object().if_contains("Id") : nullptr;
        if (id && id->is_string() && faults_.fail_entry(fault.partial))
          failed_entries.push_back(json::object{{"Id", id->get_string()},
                                                {"SenderFault", false},
                                                {"Code", "InternalError"},
                                                {"Message", "Injected fault."}});
        else
          kept.push_back(e);
      }
      *entries = std::move(kept);
    }
  }
  api_outcome out;
  if (!failed_entries.empty() && dec.body.at("Entries").get_array().empty()) {
    out.result = json::object{{"Successful", json::array{}}, {"Failed", json::array{}}};
  } else {
    out = co_await api_.handle(action, std::move(dec.body), std::move(ctx));
  }
  if (fault.action == fault_action::drop_after)
    co_return http::response{beast::http::status::unknown, 11};
  if (out.error) {
    if (out.error->http_status == 503) svc_.note_store_refusal(out.error->message);
    co_return error_response(proto, *out.error, request_id);
  }
  if (!failed_entries.empty()) {
    if (!out.text.empty()) {
      out.result = json::parse(out.text).as_object();
      out.text.clear();
    }
    auto& failed = out.result["Failed"];
    if (!failed.is_array()) failed = json::array{};
    for (auto& e : failed_entries) failed.get_array().push_back(std::move(e));
  }
  if (proto == protocol::json)
    co_return make_response(200, json_content_type,
                            out.text.empty() ? json::serialize(out.result) : std::move(out.text),
                            request_id);
  // Query (legacy, slow path): results written as JSON text are parsed back into an object.
  if (!out.text.empty()) out.result = json::parse(out.text).as_object();
  co_return make_response(200, "text/xml",
                          sqs::json_result_to_query_xml(action, out.result, request_id),
                          request_id);
}

}  // namespace sqsrelay::server
