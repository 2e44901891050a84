#include "sqs/client.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <random>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "aws/credential_chain.h"
#include "aws/sigv4.h"
#include "base/hash.h"
#include "sqs/json_text.h"
#include "sqs/send_batch_reply.h"

namespace sqsrelay::sqs {

namespace asio = boost::asio;
namespace json = boost::json;

struct client::exchange {
  http::outgoing req;
  http::incoming res;
  std::string target;          // "AmazonSQS.<Op>"
  aws::header_list sign_headers;  // reused view list for the signer
  json::stream_parser parser;
  std::vector<unsigned char> arena = std::vector<unsigned char>(32u << 10);
  std::optional<json::monotonic_resource> reply_memory;  // over `arena`, per reply
};

namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_key(std::string& out, std::string_view key) {
  append_json_string(out, key);
  out.push_back(':');
}

// ,"key":"value" (or without the leading comma when `first`).
void member(std::string& out, bool& first, std::string_view key, std::string_view value) {
  if (!first) out.push_back(',');
  first = false;
  append_json_member(out, key, value);
}

void member_int(std::string& out, bool& first, std::string_view key, int64_t v) {
  if (!first) out.push_back(',');
  first = false;
  append_key(out, key);
  append_int(out, v);
}

void member_list(std::string& out, bool& first, std::string_view key,
                 const std::vector<std::string>& values) {
  if (!first) out.push_back(',');
  first = false;
  append_key(out, key);
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, values[i]);
  }
  out.push_back(']');
}

void member_map(std::string& out, bool& first, std::string_view key,
                const std::map<std::string, std::string>& m) {
  if (!first) out.push_back(',');
  first = false;
  append_key(out, key);
  out.push_back('{');
  bool f = true;
  for (auto& [k, v] : m) member(out, f, k, v);
  out.push_back('}');
}

void append_message_attributes(std::string& out, std::span<const attribute_view> attrs) {
  out += "\"MessageAttributes\":{";
  for (size_t i = 0; i < attrs.size(); ++i) {
    const auto& a = attrs[i];
    if (i) out.push_back(',');
    append_key(out, a.name);
    out += "{\"DataType\":";
    append_json_string(out, a.data_type);
    if (a.binary) {
      out += ",\"BinaryValue\":";
      append_json_string(out, base64_encode(a.value));
    } else {
      out += ",\"StringValue\":";
      append_json_string(out, a.value);
    }
    out.push_back('}');
  }
  out.push_back('}');
}

void append_send_fields(std::string& out, const send_entry_ref& e) {
  out += "\"MessageBody\":";
  append_json_string(out, e.body);
  if (e.delay_seconds >= 0) {
    out += ",\"DelaySeconds\":";
    append_int(out, e.delay_seconds);
  }
  if (!e.attributes.empty()) {
    out.push_back(',');
    append_message_attributes(out, e.attributes);
  }
  if (!e.group_id.empty()) {
    out += ",\"MessageGroupId\":";
    append_json_string(out, e.group_id);
  }
  if (!e.dedup_id.empty()) {
    out += ",\"MessageDeduplicationId\":";
    append_json_string(out, e.dedup_id);
  }
}

std::string_view str_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return {};
  return v->get_string();
}

bool bool_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return false;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) return v->get_string() == "true";
  return false;
}

const json::array* array_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}

const json::object* object_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

std::vector<attribute_view> views_of(const std::vector<message_attribute>& attrs) {
  std::vector<attribute_view> v;
  v.reserve(attrs.size());
  for (auto& a : attrs) v.push_back(attribute_view{a.name, a.data_type, a.value, a.binary()});
  return v;
}

// to_hex(d) == hex, without building the string (once per message sent).
bool hex_equals(const md5_digest& d, std::string_view hex) {
  static constexpr char digits[] = "0123456789abcdef";
  if (hex.size() != 2 * d.size()) return false;
  for (size_t i = 0; i < d.size(); ++i) {
    if (hex[2 * i] != digits[d[i] >> 4] || hex[2 * i + 1] != digits[d[i] & 15]) return false;
  }
  return true;
}

client_error invalid(std::string m) {
  client_error e;
  e.kind = error_kind::invalid;
  e.message = std::move(m);
  return e;
}

std::vector<batch_failure> parse_failures(const json::object& o) {
  std::vector<batch_failure> out;
  if (auto* failed = array_of(o, "Failed")) {
    for (auto& f : *failed) {
      if (!f.is_object()) continue;
      const auto& fo = f.get_object();
      out.push_back(batch_failure{std::string(str_of(fo, "Id")), std::string(str_of(fo, "Code")),
                                  std::string(str_of(fo, "Message")),
                                  bool_of(fo, "SenderFault")});
    }
  }
  return out;
}

}  // namespace

void throw_exception_from_error(const client_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

std::string_view to_string(error_kind k) {
  switch (k) {
    case error_kind::transport: return "transport";
    case error_kind::timeout: return "timeout";
    case error_kind::http_status: return "http_status";
    case error_kind::api: return "api";
    case error_kind::credentials: return "credentials";
    case error_kind::invalid: return "invalid";
  }
  return "unknown";
}

bool is_throttling_code(std::string_view code) {
  static constexpr std::string_view codes[] = {
      "Throttling",          "ThrottlingException",       "ThrottledException",
      "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
      "LimitExceededException", "RequestThrottled",         "SlowDown",
      "PriorRequestNotComplete", "EC2ThrottledException",   "KMS.ThrottlingException"};
  return std::find(std::begin(codes), std::end(codes), code) != std::end(codes);
}

bool is_queue_url(std::string_view s) {
  return s.substr(0, 7) == "http://" || s.substr(0, 8) == "https://";
}

std::optional<queue_url_parts> parse_queue_url(std::string_view url) {
  if (!is_queue_url(url)) return std::nullopt;
  auto scheme_end = url.find("://") + 3;
  auto path = url.find_first_of("/?#", scheme_end);
  if (path == std::string_view::npos || url[path] != '/') return std::nullopt;
  std::string_view rest = url.substr(path);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto slash = rest.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;  // no path segment at all
  std::string_view name = rest.substr(slash + 1), before = rest.substr(0, slash);
  if (name.empty() || name.find_first_of("?#") != std::string_view::npos) return std::nullopt;
  std::string_view account = before.substr(before.rfind('/') + 1);
  return queue_url_parts{std::string(url.substr(0, path)), std::string(account),
                         std::string(name)};
}

client::client(http::client& http, aws::credential_chain& creds, const clock& clk,
               client_options o)
    : http_(http),
      creds_(creds),
      clock_(clk),
      opts_(std::move(o)),
      batch_reader_(std::make_unique<send_batch_reply_reader>()) {
  origin_ = http_.add_origin(opts_.endpoint);
  host_header_ = opts_.endpoint.host_header();
  endpoint_text_ = opts_.endpoint.to_string();
}

client::~client() = default;

// Holds a pooled exchange for one operation and gives it back when the operation ends,
// however it ends (every co_return of a coroutine runs the destructor).
class client::lease {
 public:
  explicit lease(client& c) : client_(c), ex_(c.take_exchange()) {}
  ~lease() { client_.give_back(std::move(ex_)); }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  exchange& operator*() const { return *ex_; }
  exchange* operator->() const { return ex_.get(); }

 private:
  client& client_;
  std::unique_ptr<exchange> ex_;
};

std::unique_ptr<client::exchange> client::take_exchange() {
  if (free_.empty()) return std::make_unique<exchange>();
  auto ex = std::move(free_.back());
  free_.pop_back();
  return ex;
}

void client::give_back(std::unique_ptr<exchange> ex) {
  // Don't keep a buffer a huge receive inflated.
  if (ex->res.body.capacity() > (4u << 20)) ex->res.body = std::string();
  free_.push_back(std::move(ex));
}

asio::awaitable<client_result<std::shared_ptr<aws::signer>>> client::current_signer() {
  auto c = co_await creds_.get();
  if (!c) {
    client_error e;
    e.kind = error_kind::credentials;
    e.message = c.error().message;
    co_return e;
  }
  if (*c != signer_creds_) {
    signer_creds_ = *c;
    signer_ = std::make_shared<aws::signer>(signer_creds_->creds, clock_);
  }
  co_return signer_;
}

client_error client::parse_error(std::string_view op, const exchange& ex) const {
  client_error e;
  e.http_status = ex.res.status;
  std::string_view qe = ex.res.header("x-amzn-query-error");
  bool have_qe = false;
  if (auto semi = qe.find(';'); semi != std::string_view::npos) {
    e.query_code = std::string(qe.substr(0, semi));
    e.sender_fault = qe.substr(semi + 1) == "Sender";
    have_qe = true;
  }
  std::string message;
  boost::system::error_code ec;
  json::value v = json::parse(ex.res.body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.get_object();
    std::string_view type = str_of(o, "__type");
    if (type.empty()) type = str_of(o, "code");
    if (auto hash = type.rfind('#'); hash != std::string_view::npos) type = type.substr(hash + 1);
    e.code = std::string(type);
    message = std::string(str_of(o, "message"));
    if (message.empty()) message = std::string(str_of(o, "Message"));
  }
  if (e.code.empty() && ex.res.status == 429) e.code = "TooManyRequests";
  e.kind = e.code.empty() ? error_kind::http_status : error_kind::api;
  if (!have_qe) e.sender_fault = ex.res.status < 500;
  e.throttled = is_throttling_code(e.code) || is_throttling_code(e.query_code) ||
                ex.res.status == 429;
  e.retryable = e.throttled || ex.res.status >= 500 || (have_qe && !e.sender_fault) ||
                e.code == "ExpiredToken" || e.code == "RequestExpired";
  if (e.kind == error_kind::api) {
    e.message = fmt::format("{} on {}: {}{}{} (HTTP {})", op, endpoint_text_, e.code,
                            message.empty() ? "" : ": ", message, ex.res.status);
  } else {
    std::string_view body = ex.res.body;
    e.message = fmt::format("{} on {}: HTTP {}{}{}", op, endpoint_text_, ex.res.status,
                            body.empty() ? "" : ": ", body.substr(0, 200));
  }
  return e;
}

// Tries a call up to opts_.max_attempts times while it fails in a way a retry can fix.
asio::awaitable<client_result<void>> client::call(std::string_view op, exchange& ex) {
  const size_t headers = ex.req.header_count();
  for (uint32_t attempt = 1;; ++attempt) {
    auto r = co_await call_once(op, ex);
    if (r || !r.error().retryable || attempt >= opts_.max_attempts) co_return r;
    const auto ceiling = std::min<int64_t>(opts_.retry_cap.count(),
                                           opts_.retry_base.count() << std::min(attempt, 20u));
    thread_local std::minstd_rand jitter{std::random_device{}()};
    const auto wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(ceiling, 0))(jitter));
    spdlog::debug("{}: {}; attempt {} of {} in {} ms", op, r.error().message, attempt + 1,
                  opts_.max_attempts, wait.count());
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(wait);
    co_await timer.async_wait(asio::use_awaitable);
    ex.req.keep_headers(headers);  // signed again: a new date and signature
  }
}

asio::awaitable<client_result<void>> client::call_once(std::string_view op, exchange& ex) {
  auto sig = co_await current_signer();
  if (!sig) co_return sig.error();
  ex.target.assign("AmazonSQS.");
  ex.target.append(op);
  ex.req.add_header("Content-Type", "application/x-amz-json-1.0");
  ex.req.add_header("X-Amz-Target", ex.target);
  ex.sign_headers.clear();
  ex.sign_headers.emplace_back("Host", host_header_);
  ex.sign_headers.emplace_back("Content-Type", "application/x-amz-json-1.0");
  ex.sign_headers.emplace_back("X-Amz-Target", ex.target);
  aws::signing_input in{"POST", ex.req.target, ex.sign_headers, ex.req.body};
  auto signed_headers = (*sig)->sign(in, opts_.region, opts_.service);
  if (!signed_headers) co_return invalid(fmt::format("{}: signing failed: {}", op,
                                                     signed_headers.error().message()));
  for (auto& [n, v] : *signed_headers) ex.req.add_header(n, v);
  ex.req.add_header("User-Agent", opts_.user_agent);
  ++stats_.calls;
  stats_.bytes_sent += ex.req.body.size();
  auto r = co_await http_.execute(origin_, &ex.req, &ex.res);
  if (!r) {
    ++stats_.errors;
    ++stats_.retryable_errors;
    client_error e;
    const auto& he = r.error();
    e.kind = he.code == http::client_errc::request_timeout ? error_kind::timeout
                                                           : error_kind::transport;
    e.message = fmt::format("{}: {}", op, he.message);
    e.request_sent = he.request_sent;
    e.retryable = !(he.code == http::client_errc::certificate_verify_failed ||
                    he.code == http::client_errc::tls_setup_failed ||
                    he.code == http::client_errc::invalid_url);
    if (!e.retryable) --stats_.retryable_errors;
    co_return e;
  }
  stats_.bytes_received += ex.res.body.size();
  if (ex.res.status >= 200 && ex.res.status < 300) co_return client_result<void>{};
  client_error e = parse_error(op, ex);
  ++stats_.errors;
  if (e.throttled) ++stats_.throttled;
  if (e.retryable) ++stats_.retryable_errors;
  if (e.code == "ExpiredToken" || e.code == "InvalidClientTokenId") creds_.invalidate();
  co_return e;
}

namespace {
// Parses the response body into `mr`; the value lives as long as `mr`.
client_result<json::value> parse_body(std::string_view op, client::exchange& ex,
                                      json::monotonic_resource& mr) {
  boost::system::error_code ec;
  ex.parser.reset(&mr);
  ex.parser.write(ex.res.body, ec);
  if (!ec) ex.parser.finish(ec);
  if (ec || !ex.parser.done()) {
    client_error e;
    e.kind = error_kind::http_status;
    e.http_status = ex.res.status;
    e.retryable = true;
    e.message = fmt::format("{}: the response is not valid JSON ({})", op, ec.message());
    ex.parser.reset();
    return e;
  }
  json::value v = ex.parser.release();
  if (!v.is_object()) {
    client_error e;
    e.kind = error_kind::http_status;
    e.http_status = ex.res.status;
    e.retryable = true;
    e.message = fmt::format("{}: the response is not a JSON object", op);
    return e;
  }
  return v;
}
}  // namespace

asio::awaitable<client_result<std::string>> client::resolve_queue(std::string name_or_url) {
  if (is_queue_url(name_or_url)) co_return name_or_url;
  if (auto it = url_cache_.find(name_or_url); it != url_cache_.end()) co_return it->second;
  auto r = co_await get_queue_url(name_or_url);
  if (!r) co_return r.error();
  url_cache_[name_or_url] = *r;
  co_return *r;
}

asio::awaitable<client_result<json::value>> client::call_json(std::string_view op, exchange& ex) {
  auto r = co_await call(op, ex);
  if (!r) co_return r.error();
  ex.reply_memory.emplace(ex.arena.data(), ex.arena.size());
  co_return parse_body(op, ex, *ex.reply_memory);
}

asio::awaitable<client_result<std::string>> client::get_queue_url(std::string name,
                                                                  std::string owner_account) {
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  bool first = true;
  b.push_back('{');
  member(b, first, "QueueName", name);
  if (!owner_account.empty()) member(b, first, "QueueOwnerAWSAccountId", owner_account);
  b.push_back('}');
  auto v = co_await call_json("GetQueueUrl", *ex);
  if (!v) co_return v.error();
  std::string url(str_of(v->get_object(), "QueueUrl"));
  if (url.empty()) co_return invalid("GetQueueUrl: the response has no QueueUrl");
  co_return url;
}

asio::awaitable<client_result<send_batch_result>> client::send_message_batch(
    std::string queue, std::vector<send_entry> entries) {
  std::vector<std::vector<attribute_view>> attrs;
  attrs.reserve(entries.size());
  std::vector<send_entry_ref> refs;
  refs.reserve(entries.size());
  for (auto& e : entries) {
    attrs.push_back(views_of(e.message_attributes));
    refs.push_back(send_entry_ref{e.id, e.body, attrs.back(), e.delay_seconds, e.group_id,
                                  e.dedup_id});
  }
  std::span<const send_entry_ref> view(refs);
  co_return co_await send_message_batch(std::move(queue), view);
}

asio::awaitable<client_result<send_batch_result>> client::send_message_batch(
    std::string queue, std::span<const send_entry_ref> entries) {
  if (entries.empty() || entries.size() > max_batch_entries)
    co_return invalid(fmt::format("SendMessageBatch: {} entries (1 to 10 allowed)",
                                  entries.size()));
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  b += "{\"QueueUrl\":";
  append_json_string(b, *url);
  b += ",\"Entries\":[";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) b.push_back(',');
    b += "{\"Id\":";
    append_json_string(b, entries[i].id);
    b.push_back(',');
    append_send_fields(b, entries[i]);
    b.push_back('}');
  }
  b += "]}";
  auto r = co_await call("SendMessageBatch", *ex);
  if (!r) {
    if (r.error().code == "QueueDoesNotExist") url_cache_.erase(queue);
    co_return r.error();
  }
  send_batch_result listed;
  if (auto bad = batch_reader_->read(ex->res.body, listed)) {
    client_error e;
    e.kind = error_kind::http_status;
    e.http_status = ex->res.status;
    e.retryable = true;
    e.message = fmt::format("SendMessageBatch: {}", *bad);
    co_return e;
  }
  co_return reconcile(entries, std::move(listed));
}

// Every submitted entry must come back exactly once, in one of the two lists.
send_batch_result client::reconcile(std::span<const send_entry_ref> entries,
                                    send_batch_result listed) {
  send_batch_result out;
  out.failed = std::move(listed.failed);
  std::array<uint8_t, max_batch_entries> seen{};
  auto index_of = [&](std::string_view id) -> size_t {
    for (size_t i = 0; i < entries.size(); ++i)
      if (entries[i].id == id) return i;
    return entries.size();
  };
  for (auto& f : out.failed)
    if (size_t i = index_of(f.id); i < entries.size()) seen[i] = 1;
  out.successful.reserve(listed.successful.size());
  for (auto& s : listed.successful) {
    size_t i = index_of(s.id);
    if (i == entries.size() || seen[i]) continue;  // unknown or repeated id: ignore
    seen[i] = 1;
    if (opts_.verify_md5 && !s.md5_of_body.empty() &&
        !hex_equals(md5(entries[i].body), s.md5_of_body)) {
      ++stats_.md5_mismatches;
      out.failed.push_back(batch_failure{std::move(s.id), "MD5Mismatch",
                                         "MD5OfMessageBody differs from the body sent", false});
      continue;
    }
    out.successful.push_back(std::move(s));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (seen[i]) continue;
    ++stats_.missing_entries;
    out.failed.push_back(batch_failure{std::string(entries[i].id), "MissingEntry",
                                       "the response named this entry in neither Successful "
                                       "nor Failed",
                                       false});
  }
  return out;
}

asio::awaitable<client_result<send_result>> client::send_message(std::string queue,
                                                                 send_entry entry) {
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  auto views = views_of(entry.message_attributes);
  send_entry_ref ref{entry.id, entry.body, views, entry.delay_seconds, entry.group_id,
                     entry.dedup_id};
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  b += "{\"QueueUrl\":";
  append_json_string(b, *url);
  b.push_back(',');
  append_send_fields(b, ref);
  b.push_back('}');
  auto v = co_await call_json("SendMessage", *ex);
  if (!v) {
    if (v.error().code == "QueueDoesNotExist") url_cache_.erase(queue);
    co_return v.error();
  }
  const auto& o = v->get_object();
  send_result out{std::string(str_of(o, "MessageId")), std::string(str_of(o, "MD5OfMessageBody")),
                  std::string(str_of(o, "SequenceNumber"))};
  if (opts_.verify_md5 && !out.md5_of_body.empty() &&
      to_hex(md5(entry.body)) != out.md5_of_body) {
    ++stats_.md5_mismatches;
    client_error e;
    e.kind = error_kind::api;
    e.code = "MD5Mismatch";
    e.retryable = true;
    e.message = "SendMessage: MD5OfMessageBody differs from the body sent";
    co_return e;
  }
  co_return out;
}

asio::awaitable<client_result<std::vector<received_message>>> client::receive_message(
    std::string queue, receive_options ro) {
  if (ro.max_messages < 1 || ro.max_messages > 10)
    co_return invalid(fmt::format("ReceiveMessage: max messages {} (1 to 10 allowed)",
                                  ro.max_messages));
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  bool first = true;
  b.push_back('{');
  member(b, first, "QueueUrl", *url);
  member_int(b, first, "MaxNumberOfMessages", ro.max_messages);
  if (ro.wait_seconds) member_int(b, first, "WaitTimeSeconds", *ro.wait_seconds);
  if (ro.visibility_timeout) member_int(b, first, "VisibilityTimeout", *ro.visibility_timeout);
  if (!ro.attribute_names.empty()) {
    member_list(b, first, "AttributeNames", ro.attribute_names);
    member_list(b, first, "MessageSystemAttributeNames", ro.attribute_names);
  }
  if (!ro.message_attribute_names.empty())
    member_list(b, first, "MessageAttributeNames", ro.message_attribute_names);
  if (!ro.receive_request_attempt_id.empty())
    member(b, first, "ReceiveRequestAttemptId", ro.receive_request_attempt_id);
  b.push_back('}');
  // A long poll must not hit the request timeout: allow its wait plus a grace period (and
  // 20 s, the longest queue default, when the wait is the queue's).
  int wait = ro.wait_seconds.value_or(20);
  auto needed = std::chrono::seconds(wait) + opts_.long_poll_grace;
  if (needed > http_.options().request_timeout)
    ex->req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(needed);
  auto v = co_await call_json("ReceiveMessage", *ex);
  if (!v) {
    if (v.error().code == "QueueDoesNotExist") url_cache_.erase(queue);
    co_return v.error();
  }
  std::vector<received_message> out;
  if (auto* msgs = array_of(v->get_object(), "Messages")) {
    out.reserve(msgs->size());
    for (auto& m : *msgs) {
      if (!m.is_object()) continue;
      const auto& mo = m.get_object();
      received_message rm;
      rm.message_id = std::string(str_of(mo, "MessageId"));
      rm.receipt_handle = std::string(str_of(mo, "ReceiptHandle"));
      rm.body = std::string(str_of(mo, "Body"));
      rm.md5_of_body = std::string(str_of(mo, "MD5OfBody"));
      if (auto* attrs = object_of(mo, "Attributes"))
        for (auto& [k, val] : *attrs)
          if (val.is_string()) rm.attributes.emplace(std::string(k), std::string(val.get_string()));
      if (auto* mattrs = object_of(mo, "MessageAttributes")) {
        for (auto& [k, val] : *mattrs) {
          if (!val.is_object()) continue;
          const auto& ao = val.get_object();
          message_attribute a{std::string(k), std::string(str_of(ao, "DataType")), {}};
          if (a.binary()) {
            if (!base64_decode(str_of(ao, "BinaryValue"), a.value)) a.value.clear();
          } else {
            a.value = std::string(str_of(ao, "StringValue"));
          }
          rm.message_attributes.push_back(std::move(a));
        }
      }
      if (opts_.verify_md5 && !rm.md5_of_body.empty() &&
          to_hex(md5(rm.body)) != rm.md5_of_body) {
        ++stats_.md5_mismatches;
        client_error e;
        e.kind = error_kind::api;
        e.code = "MD5Mismatch";
        e.retryable = true;
        e.message = fmt::format("ReceiveMessage: MD5OfBody of message {} differs from its body",
                                rm.message_id);
        co_return e;
      }
      out.push_back(std::move(rm));
    }
  }
  co_return out;
}

// DeleteMessageBatch and ChangeMessageVisibilityBatch: 1 to 10 entries, each written by
// `write_entry(body, first, i)`, answered with the ids that succeeded and failed.
asio::awaitable<client_result<ack_batch_result>> client::ack_batch(
    std::string_view op, std::string queue, size_t count,
    std::function<void(std::string&, bool&, size_t)> write_entry) {
  if (count == 0 || count > max_batch_entries)
    co_return invalid(fmt::format("{}: {} entries (1 to 10 allowed)", op, count));
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  b += "{\"QueueUrl\":";
  append_json_string(b, *url);
  b += ",\"Entries\":[";
  for (size_t i = 0; i < count; ++i) {
    if (i) b.push_back(',');
    bool first = true;
    b.push_back('{');
    write_entry(b, first, i);
    b.push_back('}');
  }
  b += "]}";
  auto v = co_await call_json(op, *ex);
  if (!v) co_return v.error();
  ack_batch_result out;
  out.failed = parse_failures(v->get_object());
  if (auto* succ = array_of(v->get_object(), "Successful"))
    for (auto& s : *succ)
      if (s.is_object()) out.successful.emplace_back(str_of(s.get_object(), "Id"));
  co_return out;
}

asio::awaitable<client_result<ack_batch_result>> client::delete_message_batch(
    std::string queue, std::vector<handle_entry> entries) {
  // Named, not temporaries in the co_await expression (GCC 12 coroutine bug).
  std::function<void(std::string&, bool&, size_t)> write = [&entries](std::string& b,
                                                                      bool& first, size_t i) {
    member(b, first, "Id", entries[i].id);
    member(b, first, "ReceiptHandle", entries[i].receipt_handle);
  };
  auto r = co_await ack_batch("DeleteMessageBatch", std::move(queue), entries.size(),
                              std::move(write));
  co_return r;
}

asio::awaitable<client_result<ack_batch_result>> client::change_message_visibility_batch(
    std::string queue, std::vector<visibility_entry> entries) {
  std::function<void(std::string&, bool&, size_t)> write = [&entries](std::string& b,
                                                                      bool& first, size_t i) {
    member(b, first, "Id", entries[i].id);
    member(b, first, "ReceiptHandle", entries[i].receipt_handle);
    member_int(b, first, "VisibilityTimeout", entries[i].visibility_timeout);
  };
  auto r = co_await ack_batch("ChangeMessageVisibilityBatch", std::move(queue), entries.size(),
                              std::move(write));
  co_return r;
}

asio::awaitable<client_result<attribute_map>> client::get_queue_attributes(
    std::string queue, std::vector<std::string> names) {
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  bool first = true;
  b.push_back('{');
  member(b, first, "QueueUrl", *url);
  if (!names.empty()) member_list(b, first, "AttributeNames", names);
  b.push_back('}');
  auto v = co_await call_json("GetQueueAttributes", *ex);
  if (!v) {
    if (v.error().code == "QueueDoesNotExist") url_cache_.erase(queue);
    co_return v.error();
  }
  attribute_map out;
  if (auto* attrs = object_of(v->get_object(), "Attributes"))
    for (auto& [k, val] : *attrs)
      if (val.is_string()) out.emplace(std::string(k), std::string(val.get_string()));
  co_return out;
}

asio::awaitable<client_result<void>> client::set_queue_attributes(std::string queue,
                                                                  attribute_map attrs) {
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  bool first = true;
  b.push_back('{');
  member(b, first, "QueueUrl", *url);
  member_map(b, first, "Attributes", attrs);
  b.push_back('}');
  auto r = co_await call("SetQueueAttributes", *ex);
  if (!r) co_return r.error();
  limits_cache_.erase(queue);
  co_return client_result<void>{};
}

asio::awaitable<client_result<std::string>> client::create_queue(
    std::string name, attribute_map attrs, std::map<std::string, std::string> tags) {
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  std::string& b = ex->req.body;
  bool first = true;
  b.push_back('{');
  member(b, first, "QueueName", name);
  if (!attrs.empty()) member_map(b, first, "Attributes", attrs);
  if (!tags.empty()) member_map(b, first, "tags", tags);
  b.push_back('}');
  auto v = co_await call_json("CreateQueue", *ex);
  if (!v) co_return v.error();
  std::string url(str_of(v->get_object(), "QueueUrl"));
  if (url.empty()) co_return invalid("CreateQueue: the response has no QueueUrl");
  url_cache_[name] = url;
  co_return url;
}

asio::awaitable<client_result<list_queues_result>> client::list_queues(std::string prefix,
                                                                       int max_results) {
  list_queues_result out;
  std::string token;
  for (;;) {
    lease ex(*this);
    ex->req.reset("POST", opts_.path);
    std::string& b = ex->req.body;
    bool first = true;
    b.push_back('{');
    if (!prefix.empty()) member(b, first, "QueueNamePrefix", prefix);
    member_int(b, first, "MaxResults", max_results > 0 ? max_results : 1000);
    if (!token.empty()) member(b, first, "NextToken", token);
    b.push_back('}');
    auto v = co_await call_json("ListQueues", *ex);
    if (!v) co_return v.error();
    const auto& o = v->get_object();
    if (auto* urls = array_of(o, "QueueUrls"))
      for (auto& u : *urls)
        if (u.is_string()) out.queue_urls.emplace_back(u.get_string());
    std::string next(str_of(o, "NextToken"));
    if (next.empty() || max_results > 0) break;
    if (next == token) break;  // a server repeating its token would loop forever
    token = std::move(next);
  }
  co_return out;
}

asio::awaitable<client_result<void>> client::purge_queue(std::string queue) {
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  bool first = true;
  ex->req.body.push_back('{');
  member(ex->req.body, first, "QueueUrl", *url);
  ex->req.body.push_back('}');
  auto r = co_await call("PurgeQueue", *ex);
  if (!r) co_return r.error();
  co_return client_result<void>{};
}

asio::awaitable<client_result<void>> client::delete_queue(std::string queue) {
  auto url = co_await resolve_queue(queue);
  if (!url) co_return url.error();
  lease ex(*this);
  ex->req.reset("POST", opts_.path);
  bool first = true;
  ex->req.body.push_back('{');
  member(ex->req.body, first, "QueueUrl", *url);
  ex->req.body.push_back('}');
  auto r = co_await call("DeleteQueue", *ex);
  url_cache_.erase(queue);
  limits_cache_.erase(queue);
  if (!r) co_return r.error();
  co_return client_result<void>{};
}

asio::awaitable<client_result<queue_limits>> client::get_queue_limits(std::string queue) {
  auto now = std::chrono::steady_clock::now();
  auto it = limits_cache_.find(queue);
  if (it != limits_cache_.end() && now - it->second.fetched < opts_.limits_ttl)
    co_return it->second.limits;
  std::vector<std::string> names{"MaximumMessageSize"};
  auto r = co_await get_queue_attributes(queue, std::move(names));
  it = limits_cache_.find(queue);  // the map may have changed while we waited
  if (!r) {
    // Keep serving a known limit through a failed refresh; only a gone queue forgets it.
    if (it != limits_cache_.end() && r.error().code != "QueueDoesNotExist")
      co_return it->second.limits;
    if (it != limits_cache_.end()) limits_cache_.erase(it);
    co_return r.error();
  }
  queue_limits l;
  if (auto m = r->find("MaximumMessageSize"); m != r->end()) {
    size_t v = 0;
    auto [p, ec] = std::from_chars(m->second.data(), m->second.data() + m->second.size(), v);
    if (ec == std::errc() && p == m->second.data() + m->second.size() && v > 0)
      l.max_message_size = v;
  }
  limits_cache_[queue] = limits_entry{l, now};
  co_return l;
}

}  // namespace sqsrelay::sqs
