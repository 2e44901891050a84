#include "server/api.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "base/hash.h"
#include "base/random.h"
#include "server/durable.h"
#include "sqs/json_text.h"

namespace sqsrelay::server {

namespace asio = boost::asio;
namespace json = boost::json;
using sqs::api_error;
namespace errors = sqs::errors;

namespace {

using maybe_error = std::optional<api_error>;

// ---- request field access -------------------------------------------------------------

maybe_error get_string(const json::object& o, std::string_view key, std::string_view& out,
                       bool required) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return errors::missing_parameter(key);
    return std::nullopt;
  }
  if (!v->is_string())
    return errors::invalid_parameter_value(fmt::format("Value for {} must be a string.", key));
  out = v->as_string();
  return std::nullopt;
}

maybe_error get_int(const json::object& o, std::string_view key, std::optional<int64_t>& out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_int64()) {
    out = v->as_int64();
    return std::nullopt;
  }
  if (v->is_uint64() && v->as_uint64() <= INT64_MAX) {
    out = static_cast<int64_t>(v->as_uint64());
    return std::nullopt;
  }
  if (v->is_string()) {  // some clients send numbers as strings
    std::string_view s = v->as_string();
    int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
      out = n;
      return std::nullopt;
    }
  }
  return errors::invalid_parameter_value(fmt::format("Value for {} must be an integer.", key));
}

maybe_error get_int_in(const json::object& o, std::string_view key, std::optional<int64_t>& out,
                       int64_t lo, int64_t hi) {
  if (auto e = get_int(o, key, out)) return e;
  if (out && (*out < lo || *out > hi))
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter {} is invalid. Reason: Must be between {} and {}.", *out, key,
        lo, hi));
  return std::nullopt;
}

maybe_error get_string_map(const json::object& o, std::string_view key,
                           std::vector<std::pair<std::string, std::string>>& out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_object())
    return errors::invalid_parameter_value(fmt::format("Value for {} must be a map.", key));
  for (auto& [k, val] : v->as_object()) {
    if (!val.is_string())
      return errors::invalid_parameter_value(
          fmt::format("Value for {}.{} must be a string.", key, std::string_view(k)));
    out.emplace_back(std::string(k), std::string(val.as_string()));
  }
  return std::nullopt;
}

maybe_error get_string_list(const json::object& o, std::string_view key,
                            std::vector<std::string_view>& out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array())
    return errors::invalid_parameter_value(fmt::format("Value for {} must be a list.", key));
  for (auto& item : v->as_array()) {
    if (!item.is_string())
      return errors::invalid_parameter_value(
          fmt::format("Values of {} must be strings.", key));
    out.push_back(item.as_string());
  }
  return std::nullopt;
}

// Resolves QueueUrl (or the legacy queue-URL-in-path) to a live queue.
maybe_error get_queue(service& svc, const json::object& o, const request_context& ctx,
                      std::shared_ptr<queue>& q) {
  std::string_view url;
  if (auto e = get_string(o, "QueueUrl", url, false)) return e;
  if (url.empty()) url = ctx.path;
  if (url.empty() || url == "/") return errors::missing_parameter("QueueUrl");
  q = svc.find_by_url(url);
  if (!q || q->deleted()) return errors::queue_does_not_exist();
  return std::nullopt;
}

// Digests and ids as short stack strings: these go out once per message.
struct md5_text {
  char buf[32];
  explicit md5_text(const md5_digest& d) {
    static constexpr char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; ++i) {
      buf[2 * i] = digits[d[i] >> 4];
      buf[2 * i + 1] = digits[d[i] & 15];
    }
  }
  operator std::string_view() const { return {buf, 32}; }
};
struct uuid_text {
  char buf[36];
  explicit uuid_text(const message_id& id) { format_uuid_to(id, buf); }
  operator std::string_view() const { return {buf, 36}; }
};

// ---- message parsing --------------------------------------------------------------------

// Owns decoded binary attribute values for the duration of a request.
struct attribute_buffers {
  std::vector<std::unique_ptr<std::string>> blobs;
  std::string_view keep(std::string s) {
    blobs.push_back(std::make_unique<std::string>(std::move(s)));
    return *blobs.back();
  }
};

maybe_error parse_attribute_map(const json::value* v, std::string_view what,
                                std::vector<sqs::attribute_view>& out, attribute_buffers& buf) {
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_object())
    return errors::invalid_parameter_value(fmt::format("{} must be a map.", what));
  for (auto& [name, val] : v->as_object()) {
    if (!val.is_object())
      return errors::invalid_parameter_value(
          fmt::format("{}.{} must be an object.", what, std::string_view(name)));
    auto& a = val.as_object();
    sqs::attribute_view av;
    av.name = name;
    std::string_view type, str, bin;
    if (auto e = get_string(a, "DataType", type, false)) return e;
    if (auto e = get_string(a, "StringValue", str, false)) return e;
    if (auto e = get_string(a, "BinaryValue", bin, false)) return e;
    if (a.if_contains("StringListValues") || a.if_contains("BinaryListValues"))
      return errors::invalid_parameter_value(
          "StringListValues and BinaryListValues are not supported by SQS.");
    av.data_type = type;
    if (a.if_contains("BinaryValue")) {
      std::string decoded;
      if (!base64_decode(bin, decoded))
        return errors::invalid_parameter_value(fmt::format(
            "{}.{}.BinaryValue is not valid base64.", what, std::string_view(name)));
      av.value = buf.keep(std::move(decoded));
      av.binary = true;
    } else {
      av.value = str;
    }
    out.push_back(av);
  }
  return std::nullopt;
}

struct parsed_message {
  prepared_message m;
  std::vector<sqs::attribute_view> attrs;
};

// Validates one message (SendMessage or a batch entry) against the queue's limits.
// MessageGroupId: 1 to 128 of a-z, A-Z, 0-9 and ASCII punctuation.
bool valid_group_id(std::string_view g) {
  if (g.empty() || g.size() > 128) return false;
  return std::all_of(g.begin(), g.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x80 && (std::isalnum(u) || std::ispunct(u));
  });
}

// `trace_id` (the request's X-Amzn-Trace-Id header) becomes the AWSTraceHeader of a message
// that sets none itself, as SQS does for X-Ray; it is not part of MD5OfMessageSystemAttributes
// (that digest covers what the request sent as system attributes).
maybe_error parse_message(const json::object& o, const queue_attributes& qa,
                          parsed_message& out, attribute_buffers& buf, random_source& rng,
                          std::string_view trace_id) {
  std::string_view body;
  if (auto e = get_string(o, "MessageBody", body, true)) return e;
  if (body.empty()) return errors::missing_parameter("MessageBody");
  std::optional<int64_t> delay;
  if (auto e = get_int_in(o, "DelaySeconds", delay, 0, 900)) return e;
  // Standard queues take a MessageGroupId too (fair queues): kept and returned on receive.
  std::string_view group;
  if (auto e = get_string(o, "MessageGroupId", group, false)) return e;
  if (o.if_contains("MessageGroupId") && !valid_group_id(group))
    return errors::invalid_parameter_value(
        "Value for parameter MessageGroupId is invalid. Reason: MessageGroupId can contain "
        "only alphanumeric characters and punctuation, 1 to 128 of them.");
  out.m.group_id = group;
  if (auto* dedup = o.if_contains("MessageDeduplicationId"))  // SQS's words, its typo too
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter MessageDeduplicationId is invalid. Reason: The request include "
        "parameter that is not valid for this queue type.",
        dedup->is_string() ? sqs::utf8_prefix(dedup->get_string(), 128)
                           : std::string_view("(not a string)")));
  if (auto e = parse_attribute_map(o.if_contains("MessageAttributes"), "MessageAttributes",
                                   out.attrs, buf))
    return e;
  std::vector<sqs::attribute_view> sys;
  if (auto e = parse_attribute_map(o.if_contains("MessageSystemAttributes"),
                                   "MessageSystemAttributes", sys, buf))
    return e;
  for (auto& s : sys) {
    if (s.name != "AWSTraceHeader")
      return errors::invalid_parameter_value(fmt::format(
          "Message system attribute '{}' is not supported: only AWSTraceHeader.", s.name));
    if (s.data_type != "String" || s.binary)
      return errors::invalid_parameter_value(fmt::format(
          "Message system attribute 'AWSTraceHeader' must have DataType 'String' and a "
          "StringValue (got DataType '{}').",
          s.data_type));
    out.m.trace_header = s.value;
    out.m.md5_system = sqs::md5_of_attributes(sys);
  }
  if (out.m.trace_header.empty()) out.m.trace_header = trace_id;
  if (!sqs::valid_message_text(body)) return errors::invalid_message_contents();
  if (auto e = sqs::validate_attributes(out.attrs)) return e;
  size_t size = sqs::message_size(body, out.attrs);
  if (size > static_cast<size_t>(qa.maximum_message_size))
    return errors::invalid_parameter_value(fmt::format(
        "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
        qa.maximum_message_size));
  out.m.body = body;
  out.m.delay_seconds = delay ? static_cast<int>(*delay) : qa.delay_seconds;
  out.m.id = rng.next16();
  out.m.md5_body = md5(body);
  if (!out.attrs.empty()) out.m.md5_attributes = sqs::md5_of_attributes(out.attrs);
  return std::nullopt;
}

// The bytes an entry that failed validation counts toward the batch total: its body and its
// attributes' names, types and values as sent (binary values decoded from base64).
size_t raw_message_size(const json::object& o) {
  size_t n = 0;
  if (auto* b = o.if_contains("MessageBody"); b && b->is_string()) n += b->as_string().size();
  auto* attrs = o.if_contains("MessageAttributes");
  if (!attrs || !attrs->is_object()) return n;
  for (const auto& [name, v] : attrs->as_object()) {
    n += name.size();
    if (!v.is_object()) continue;
    const auto& a = v.as_object();
    if (auto* t = a.if_contains("DataType"); t && t->is_string()) n += t->as_string().size();
    if (auto* s = a.if_contains("StringValue"); s && s->is_string()) n += s->as_string().size();
    if (auto* b = a.if_contains("BinaryValue"); b && b->is_string())
      n += b->as_string().size() / 4 * 3;
  }
  return n;
}

// Writes the members of a SendMessage result (or, with an id, of a batch result entry).
void append_send_result(std::string& out, const prepared_message& m, std::string_view id) {
  out.push_back('{');
  if (!id.empty()) {
    sqs::append_json_member(out, "Id", id);
    out.push_back(',');
  }
  sqs::append_json_member(out, "MD5OfMessageBody", md5_text(m.md5_body));
  if (m.md5_attributes) {
    out.push_back(',');
    sqs::append_json_member(out, "MD5OfMessageAttributes", md5_text(*m.md5_attributes));
  }
  if (m.md5_system) {
    out.push_back(',');
    sqs::append_json_member(out, "MD5OfMessageSystemAttributes", md5_text(*m.md5_system));
  }
  out.push_back(',');
  sqs::append_json_member(out, "MessageId", uuid_text(m.id));
  out.push_back('}');
}

void append_failed_entry(std::string& out, std::string_view id, const api_error& e) {
  out.push_back('{');
  sqs::append_json_member(out, "Id", id);
  out += e.sender_fault ? R"(,"SenderFault":true,)" : R"(,"SenderFault":false,)";
  sqs::append_json_member(out, "Code", e.query_code);
  out.push_back(',');
  sqs::append_json_member(out, "Message", e.message);
  out.push_back('}');
}

// {"Successful":[...],"Failed":[...]} from pre-written entry texts.
std::string batch_result_text(std::string_view successful, std::string_view failed) {
  std::string out;
  out.reserve(successful.size() + failed.size() + 32);
  out += R"({"Successful":[)";
  out += successful;
  out += R"(],"Failed":[)";
  out += failed;
  out += "]}";
  return out;
}

void separate(std::string& list) {
  if (!list.empty()) list.push_back(',');
}

// Batch envelope checks shared by the three batch actions: count, ids, distinctness.
maybe_error check_batch(const json::object& o, std::string_view entry_shape,
                        const json::array*& entries) {
  auto* v = o.if_contains("Entries");
  if (!v || v->is_null() || (v->is_array() && v->as_array().empty()))
    return errors::empty_batch_request(entry_shape);
  if (!v->is_array()) return errors::invalid_parameter_value("Entries must be a list.");
  entries = &v->as_array();
  if (entries->size() > sqs::max_batch_entries) return errors::too_many_entries(entries->size());
  std::array<std::string_view, sqs::max_batch_entries> seen;
  size_t n = 0;
  for (auto& e : *entries) {
    if (!e.is_object()) return errors::invalid_parameter_value("Each entry must be an object.");
    std::string_view id;
    if (auto err = get_string(e.as_object(), "Id", id, true)) return err;
    if (!sqs::valid_batch_entry_id(id)) return errors::invalid_batch_entry_id();
    if (std::find(seen.begin(), seen.begin() + n, id) != seen.begin() + n)
      return errors::batch_entry_ids_not_distinct(id);
    seen[n++] = id;
  }
  return std::nullopt;
}

// ---- receive helpers --------------------------------------------------------------------

// Reads the blobs of received messages, one read per run of adjacent blobs.
std::vector<std::string> read_blobs(wal::log& log, const std::vector<received_message>& msgs,
                                    std::vector<std::string_view>& views) {
  std::vector<std::string> buffers;
  views.assign(msgs.size(), {});
  size_t i = 0;
  while (i < msgs.size()) {
    size_t j = i + 1;
    uint64_t end = msgs[i].loc.offset + msgs[i].loc.length;
    while (j < msgs.size() && msgs[j].loc.segment == msgs[i].loc.segment &&
           msgs[j].loc.offset == end + 4) {
      end = msgs[j].loc.offset + msgs[j].loc.length;
      ++j;
    }
    wal::location range{msgs[i].loc.segment, static_cast<uint32_t>(end - msgs[i].loc.offset),
                        msgs[i].loc.offset};
    std::string buf(range.length, '\0');
    if (log.read(range, buf.data())) {
      buffers.push_back(std::move(buf));
      const std::string& b = buffers.back();
      for (size_t k = i; k < j; ++k)
        views[k] = std::string_view(b).substr(msgs[k].loc.offset - range.offset,
                                             msgs[k].loc.length);
    }
    i = j;
  }
  return buffers;
}

struct receive_request {
  int max_messages = 1;
  std::optional<int64_t> visibility, wait;
  std::vector<std::string_view> system_names, attribute_names;
};

maybe_error parse_receive(const json::object& o, receive_request& r) {
  std::optional<int64_t> max;
  if (auto e = get_int(o, "MaxNumberOfMessages", max)) return e;
  if (max && (*max < 1 || *max > 10))
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and "
        "10, if provided.",
        *max));
  r.max_messages = max ? static_cast<int>(*max) : 1;
  if (auto e = get_int_in(o, "VisibilityTimeout", r.visibility, 0, 43200)) return e;
  if (auto e = get_int(o, "WaitTimeSeconds", r.wait)) return e;
  if (r.wait && (*r.wait < 0 || *r.wait > 20))
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if "
        "provided.",
        *r.wait));
  if (auto e = get_string_list(o, "AttributeNames", r.system_names)) return e;
  if (auto e = get_string_list(o, "MessageSystemAttributeNames", r.system_names)) return e;
  if (auto e = get_string_list(o, "MessageAttributeNames", r.attribute_names)) return e;
  return std::nullopt;
}

bool wants(const std::vector<std::string_view>& names, std::string_view n) {
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view x) { return x == "All" || x == n; });
}

void append_message(std::string& out, const received_message& r, const message_view& m,
                    const receive_request& req) {
  out.push_back('{');
  sqs::append_json_member(out, "MessageId", uuid_text(m.id));
  out.push_back(',');
  sqs::append_json_member(out, "ReceiptHandle", r.receipt_handle_text());
  out.push_back(',');
  sqs::append_json_member(out, "MD5OfBody", md5_text(m.md5_body));
  out.push_back(',');
  sqs::append_json_member(out, "Body", m.body);
  auto& names = req.system_names;
  std::string attrs;
  auto attr = [&](std::string_view name, std::string_view value) {
    separate(attrs);
    sqs::append_json_member(attrs, name, value);
  };
  if (wants(names, "SenderId")) attr("SenderId", m.sender_id);
  if (wants(names, "SentTimestamp")) attr("SentTimestamp", std::to_string(m.sent_ms));
  if (wants(names, "ApproximateReceiveCount"))
    attr("ApproximateReceiveCount", std::to_string(r.receive_count));
  if (wants(names, "ApproximateFirstReceiveTimestamp"))
    attr("ApproximateFirstReceiveTimestamp", std::to_string(r.first_receive_ms));
  if (!m.trace_header.empty() && wants(names, "AWSTraceHeader"))
    attr("AWSTraceHeader", m.trace_header);
  if (!m.group_id.empty() && wants(names, "MessageGroupId")) attr("MessageGroupId", m.group_id);
  if (!r.dead_letter_source.empty() && wants(names, "DeadLetterQueueSourceArn"))
    attr("DeadLetterQueueSourceArn", r.dead_letter_source);
  if (!attrs.empty()) {
    out += R"(,"Attributes":{)";
    out += attrs;
    out.push_back('}');
  }
  std::vector<sqs::attribute_view> selected;
  for (auto& a : m.attributes)
    if (sqs::attribute_name_selected(a.name, req.attribute_names)) selected.push_back(a);
  if (!selected.empty()) {
    out.push_back(',');
    sqs::append_json_member(out, "MD5OfMessageAttributes",
                            md5_text(sqs::md5_of_attributes(selected)));
    out += R"(,"MessageAttributes":{)";
    for (size_t i = 0; i < selected.size(); ++i) {
      const auto& a = selected[i];
      if (i) out.push_back(',');
      sqs::append_json_string(out, a.name);
      out += ":{";
      sqs::append_json_member(out, "DataType", a.data_type);
      out.push_back(',');
      if (a.binary) sqs::append_json_member(out, "BinaryValue", base64_encode(a.value));
      else sqs::append_json_member(out, "StringValue", a.value);
      out.push_back('}');
    }
    out.push_back('}');
  }
  out.push_back('}');
}

std::optional<std::string> paginate_token(size_t next_index) {
  return base64_encode(std::to_string(next_index));
}

size_t parse_token(std::string_view token) {
  std::string raw;
  if (token.empty() || !base64_decode(token, raw)) return 0;
  size_t n = 0;
  std::from_chars(raw.data(), raw.data() + raw.size(), n);
  return n;
}

maybe_error check_redrive_target(service& svc, std::string_view source_name,
                                 const queue_attributes& a) {
  if (a.dead_letter_target_arn.empty()) return std::nullopt;
  auto dlq = svc.find_by_arn(a.dead_letter_target_arn);
  if (!dlq || dlq->deleted())
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter RedrivePolicy is invalid. Reason: Dead letter target does "
        "not exist.",
        a.redrive_policy));
  std::string allow = dlq->attributes()->redrive_allow_policy;
  if (allow.empty()) return std::nullopt;
  auto j = json::parse(allow);
  std::string_view perm = j.as_object().at("redrivePermission").as_string();
  bool ok = perm == "allowAll";
  if (perm == "byQueue")
    for (auto& arn : j.as_object().at("sourceQueueArns").as_array())
      ok = ok || (arn.is_string() && arn.as_string() == svc.queue_arn(source_name));
  if (!ok)
    return errors::invalid_parameter_value(fmt::format(
        "Value {} for parameter RedrivePolicy is invalid. Reason: Queue {} is not allowed to "
        "use {} as its dead-letter queue (RedriveAllowPolicy).",
        a.redrive_policy, source_name, a.dead_letter_target_arn));
  return std::nullopt;
}

}  // namespace

// ---- the action handlers ------------------------------------------------------------------

namespace {

struct handler_env {
  service& svc;
  api_counters& counters;
  const json::object& req;
  const request_context& ctx;
};

using outcome = api_outcome;
outcome fail(api_error e) { return {{}, std::move(e), {}}; }

// Answers with `result` once the records up to `lsn` are durable (at once for lsn 0).
asio::awaitable<outcome> await_lsn(service& svc, uint64_t lsn, outcome result) {
  if (lsn == 0 || svc.log().durable_lsn() >= lsn) co_return result;  // no async round trip
  auto [ec] = co_await async_wait_durable(svc.log(), lsn);
  if (ec)
    co_return fail(errors::service_unavailable(
        "The message store could not make the change durable: " + ec.message()));
  co_return result;
}

// SQS's tag rules (Developer Guide, "Queue tag" quotas): keys of 1-128 and values of at most
// 256 characters (code points), letters, digits, spaces and _ . : / = + - @; neither a key
// nor a value may carry the reserved prefix `aws:`.
// Characters outside ASCII are taken as letters (no Unicode tables here for that one check).
maybe_error check_tags(const std::vector<std::pair<std::string, std::string>>& tags) {
  if (tags.size() > 50) return errors::invalid_parameter_value("A queue can have at most 50 tags.");
  auto valid = [](std::string_view s, size_t max_chars) {
    size_t chars = 0;
    for (unsigned char c : s) {
      if ((c & 0xC0) != 0x80) ++chars;
      if (c >= 0x80 || std::isalnum(c)) continue;
      if (std::string_view(" _.:/=+-@").find(static_cast<char>(c)) == std::string_view::npos)
        return false;
    }
    return chars <= max_chars;
  };
  for (const auto& [k, v] : tags) {
    if (k.empty() || !valid(k, 128))
      return errors::invalid_parameter_value(fmt::format(
          "Tag key '{}' is not valid: 1 to 128 letters, digits, spaces or _ . : / = + - @.",
          k.substr(0, 140)));
    if (k.starts_with("aws:"))
      return errors::invalid_parameter_value("Tag keys starting with 'aws:' are reserved.");
    if (!valid(v, 256))
      return errors::invalid_parameter_value(fmt::format(
          "The value of tag '{}' is not valid: at most 256 letters, digits, spaces or "
          "_ . : / = + - @.",
          k));
    if (v.starts_with("aws:"))
      return errors::invalid_parameter_value(
          fmt::format("The value of tag '{}' starts with 'aws:', which is reserved.", k));
  }
  return std::nullopt;
}

outcome text_outcome(std::string text) { return {{}, std::nullopt, std::move(text)}; }

outcome create_queue(handler_env h) {
  std::string_view name;
  if (auto e = get_string(h.req, "QueueName", name, true)) return fail(*e);
  std::vector<std::pair<std::string, std::string>> attrs, tags_list;
  if (auto e = get_string_map(h.req, "Attributes", attrs)) return fail(*e);
  if (auto e = get_string_map(h.req, "tags", tags_list)) return fail(*e);
  if (auto e = check_tags(tags_list)) return fail(*e);
  std::map<std::string, std::string> tags(tags_list.begin(), tags_list.end());
  // The dead-letter target is checked before anything is created: CreateQueue of an
  // existing queue must never remove it.
  queue_attributes wanted;
  for (auto& [k, v] : attrs)
    if (k == "RedrivePolicy" && !wanted.set(k, v)) {
      if (auto e = check_redrive_target(h.svc, name, wanted)) return fail(*e);
    }
  auto r = h.svc.create_queue(name, attrs, tags);
  if (auto* err = std::get_if<api_error>(&r)) return fail(*err);
  return {{{"QueueUrl", h.svc.queue_url(h.ctx.host, name)}}, std::nullopt, {}};
}

outcome get_queue_url(handler_env h) {
  std::string_view name;
  std::string_view owner;
  if (auto e = get_string(h.req, "QueueName", name, true)) return fail(*e);
  if (auto e = get_string(h.req, "QueueOwnerAWSAccountId", owner, false)) return fail(*e);
  // Only this server's account has queues here; another account's queue does not exist.
  if (!owner.empty() && owner != h.svc.options().account_id)
    return fail(errors::queue_does_not_exist());
  auto q = h.svc.find(name);
  if (!q) return fail(errors::queue_does_not_exist());
  return {{{"QueueUrl", h.svc.queue_url(h.ctx.host, name)}}, std::nullopt, {}};
}

outcome list_queues(handler_env h) {
  std::string_view prefix, token;
  std::optional<int64_t> max;
  if (auto e = get_string(h.req, "QueueNamePrefix", prefix, false)) return fail(*e);
  if (auto e = get_string(h.req, "NextToken", token, false)) return fail(*e);
  if (auto e = get_int_in(h.req, "MaxResults", max, 1, 1000)) return fail(*e);
  auto qs = h.svc.list(prefix);
  size_t start = parse_token(token);
  size_t limit = max ? static_cast<size_t>(*max) : 1000;
  json::object r;
  json::array urls;
  for (size_t i = start; i < qs.size() && urls.size() < limit; ++i)
    urls.push_back(json::value(h.svc.queue_url(h.ctx.host, qs[i]->name())));
  size_t next = start + urls.size();
  if (!urls.empty()) r["QueueUrls"] = std::move(urls);
  if (max && next < qs.size()) r["NextToken"] = *paginate_token(next);
  return {std::move(r), std::nullopt, {}};
}

outcome delete_queue(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  if (auto e = h.svc.delete_queue(q)) return fail(*e);
  return {};
}

outcome get_queue_attributes(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::vector<std::string_view> names;
  if (auto e = get_string_list(h.req, "AttributeNames", names)) return fail(*e);
  for (auto n : names)
    if (!known_attribute_name(n)) return fail(errors::invalid_attribute_name(n));
  auto meta = q->metadata();
  auto c = q->counts(h.svc.clk().wall_ms());
  std::map<std::string, std::string> all = meta.attributes.settable();
  all["ApproximateNumberOfMessages"] = std::to_string(c.visible);
  all["ApproximateNumberOfMessagesNotVisible"] = std::to_string(c.inflight);
  all["ApproximateNumberOfMessagesDelayed"] = std::to_string(c.delayed);
  all["CreatedTimestamp"] = std::to_string(meta.created_s);
  all["LastModifiedTimestamp"] = std::to_string(meta.modified_s);
  all["QueueArn"] = h.svc.queue_arn(meta.name);
  json::object attrs;
  bool everything = std::find(names.begin(), names.end(), "All") != names.end();
  for (auto& [k, v] : all)
    if (everything || std::find(names.begin(), names.end(), k) != names.end()) attrs[k] = v;
  json::object r;
  if (!attrs.empty()) r["Attributes"] = std::move(attrs);
  return {std::move(r), std::nullopt, {}};
}

outcome set_queue_attributes(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::vector<std::pair<std::string, std::string>> attrs;
  if (auto e = get_string_map(h.req, "Attributes", attrs)) return fail(*e);
  if (!h.req.if_contains("Attributes")) return fail(errors::missing_parameter("Attributes"));
  if (auto e = check_attribute_request(attrs, false)) return fail(*e);
  queue_attributes next = q->metadata().attributes;
  bool redrive = false;
  for (auto& [k, v] : attrs) {
    if (auto e = next.set(k, v)) return fail(*e);
    redrive = redrive || k == "RedrivePolicy";
  }
  // Only a request that names the dead-letter target checks it: once the target is deleted
  // or denies this source, the source's other attributes stay changeable (its messages
  // then stay in the source queue; see receive_message).
  if (redrive)
    if (auto e = check_redrive_target(h.svc, q->name(), next)) return fail(*e);
  if (auto e = h.svc.update_queue(q, [&](queue_metadata& m) { m.attributes = next; }))
    return fail(*e);
  return {};
}

outcome tag_queue(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::vector<std::pair<std::string, std::string>> tags;
  if (!h.req.if_contains("Tags")) return fail(errors::missing_parameter("Tags"));
  if (auto e = get_string_map(h.req, "Tags", tags)) return fail(*e);
  if (tags.empty()) return fail(errors::missing_parameter("Tags"));
  if (auto e = check_tags(tags)) return fail(*e);
  auto existing = q->metadata().tags;
  for (auto& [k, v] : tags) existing[k] = v;
  if (existing.size() > 50)
    return fail(errors::invalid_parameter_value("A queue can have at most 50 tags."));
  if (auto e = h.svc.update_queue(q, [&](queue_metadata& m) { m.tags = existing; }))
    return fail(*e);
  return {};
}

outcome untag_queue(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::vector<std::string_view> keys;
  if (!h.req.if_contains("TagKeys")) return fail(errors::missing_parameter("TagKeys"));
  if (auto e = get_string_list(h.req, "TagKeys", keys)) return fail(*e);
  if (auto e = h.svc.update_queue(q, [&](queue_metadata& m) {
        for (auto k : keys) m.tags.erase(std::string(k));
      }))
    return fail(*e);
  return {};
}

outcome list_queue_tags(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  json::object tags;
  for (auto& [k, v] : q->metadata().tags) tags[k] = v;
  json::object r;
  if (!tags.empty()) r["Tags"] = std::move(tags);
  return {std::move(r), std::nullopt, {}};
}

outcome list_dead_letter_source_queues(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::string_view token;
  std::optional<int64_t> max;
  if (auto e = get_string(h.req, "NextToken", token, false)) return fail(*e);
  if (auto e = get_int_in(h.req, "MaxResults", max, 1, 1000)) return fail(*e);
  auto sources = h.svc.dead_letter_sources(h.svc.queue_arn(q->name()));
  size_t start = parse_token(token), limit = max ? static_cast<size_t>(*max) : 1000;
  json::array urls;
  for (size_t i = start; i < sources.size() && urls.size() < limit; ++i)
    urls.push_back(json::value(h.svc.queue_url(h.ctx.host, sources[i]->name())));
  size_t next = start + urls.size();
  json::object r{{"queueUrls", std::move(urls)}};
  if (max && next < sources.size()) r["NextToken"] = *paginate_token(next);
  return {std::move(r), std::nullopt, {}};
}

outcome unsupported(std::string_view action) {
  return fail(errors::unsupported_operation(fmt::format(
      "{} is not supported by this server yet (permissions and message move tasks come "
      "with FIFO support).",
      action)));
}

}  // namespace

namespace {

asio::awaitable<outcome> send_message(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  auto attrs = q->attributes();
  attribute_buffers buf;
  parsed_message pm;
  if (auto e = parse_message(h.req, *attrs, pm, buf, h.svc.rng(), h.ctx.trace_id)) co_return fail(*e);
  pm.m.attributes = pm.attrs;
  auto lsn = q->send(std::span(&pm.m, 1), h.svc.clk().wall_ms(), h.ctx.sender_id);
  if (!lsn)
    co_return fail(errors::service_unavailable("The message store rejected the write: " +
                                               lsn.error().message()));
  h.counters.sent += 1;
  std::string text;
  append_send_result(text, pm.m, {});
  outcome res = text_outcome(std::move(text));
  co_return co_await await_lsn(h.svc, *lsn, std::move(res));
}

asio::awaitable<outcome> send_message_batch(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  const json::array* entries = nullptr;
  if (auto e = check_batch(h.req, "SendMessageBatchRequestEntry", entries)) co_return fail(*e);
  auto attrs = q->attributes();
  attribute_buffers buf;
  std::vector<parsed_message> ok;
  std::vector<std::string_view> ok_ids;
  std::string failed;
  ok.reserve(entries->size());
  size_t total = 0;
  for (auto& ev : *entries) {
    auto& eo = ev.as_object();
    std::string_view id = eo.at("Id").as_string();
    parsed_message pm;
    if (auto e = parse_message(eo, *attrs, pm, buf, h.svc.rng(), h.ctx.trace_id)) {
      total += raw_message_size(eo);  // SQS sums every entry, the failed ones too
      separate(failed);
      append_failed_entry(failed, id, *e);
      continue;
    }
    total += sqs::message_size(pm.m.body, pm.attrs);
    ok.push_back(std::move(pm));
    ok_ids.push_back(id);
  }
  if (total > sqs::max_batch_bytes) co_return fail(errors::batch_request_too_long(total));
  std::vector<prepared_message> msgs;
  msgs.reserve(ok.size());
  for (auto& pm : ok) {
    pm.m.attributes = pm.attrs;
    msgs.push_back(pm.m);
  }
  uint64_t lsn = 0;
  std::string successful;
  if (!msgs.empty()) {
    auto r = q->send(msgs, h.svc.clk().wall_ms(), h.ctx.sender_id);
    if (!r)
      co_return fail(errors::service_unavailable("The message store rejected the write: " +
                                                 r.error().message()));
    lsn = *r;
    h.counters.sent += msgs.size();
    successful.reserve(msgs.size() * 160);
    for (size_t i = 0; i < msgs.size(); ++i) {
      separate(successful);
      append_send_result(successful, msgs[i], ok_ids[i]);
    }
  }
  outcome res = text_outcome(batch_result_text(successful, failed));
  co_return co_await await_lsn(h.svc, lsn, std::move(res));
}

// Hands dead-letter moves to their queue (outside the source queue's lock).
void deliver_moves(service& svc, const queue& source, const std::shared_ptr<queue>& dlq,
                   std::vector<std::pair<uint64_t, message_entry>>& moved) {
  if (!dlq || moved.empty()) return;
  int64_t now = svc.clk().wall_ms();
  std::string source_arn = svc.queue_arn(source.name());
  for (auto& [seq, e] : moved) dlq->adopt(seq, e, now, source_arn);
}

asio::awaitable<outcome> receive_message(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  receive_request rr;
  if (auto e = parse_receive(h.req, rr)) co_return fail(*e);
  auto attrs = q->attributes();
  std::shared_ptr<queue> dlq;
  if (!attrs->dead_letter_target_arn.empty()) dlq = h.svc.find_by_arn(attrs->dead_letter_target_arn);
  int64_t wait_s = rr.wait ? *rr.wait : attrs->receive_message_wait_time_seconds;
  int64_t deadline = h.svc.clk().wall_ms() + wait_s * 1000;
  auto ex = co_await asio::this_coro::executor;
  queue::receive_result got;
  // The timer and waiter exist only for long polls: a plain receive allocates neither.
  std::shared_ptr<asio::steady_timer> timer;
  queue_waiter w;
  if (wait_s > 0) {
    timer = std::make_shared<asio::steady_timer>(ex);
    w.wake = [timer, ex] { asio::post(ex, [timer] { timer->cancel(); }); };
  }
  for (;;) {
    int64_t now = h.svc.clk().wall_ms();
    queue::receive_options o;
    o.max_messages = rr.max_messages;
    o.visibility_timeout =
        static_cast<int>(rr.visibility ? *rr.visibility : attrs->visibility_timeout);
    o.now_ms = now;
    o.dead_letter = dlq && !dlq->deleted() ? dlq.get() : nullptr;
    o.park_if_empty = now < deadline ? &w : nullptr;
    got = q->receive(o);
    deliver_moves(h.svc, *q, dlq, got.moved);
    if (got.error) co_return fail(*got.error);
    if (!got.messages.empty() || !o.park_if_empty) break;
    int64_t due = q->next_due_ms();
    int64_t wake = due > 0 ? std::min(deadline, due) : deadline;
    timer->expires_after(std::chrono::milliseconds(std::max<int64_t>(wake - now, 1)));
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    q->unpark(&w);
    if (q->deleted()) co_return fail(errors::queue_does_not_exist());
  }
  if (got.lsn && h.svc.log().durable_lsn() < got.lsn)
    (void)co_await async_wait_durable(h.svc.log(), got.lsn);
  std::vector<std::string_view> blobs;
  auto buffers = read_blobs(h.svc.log(), got.messages, blobs);
  // The reply is written in place: {"Messages":[ ... ]}, or {} when nothing was readable.
  constexpr std::string_view prefix = R"({"Messages":[)";
  std::string messages;
  messages.reserve(prefix.size() + 2 + got.messages.size() * 640);
  messages += prefix;
  size_t count = 0;
  for (size_t i = 0; i < got.messages.size(); ++i) {
    auto m = decode_message(blobs[i]);
    if (!m) continue;  // unreadable (queue purged meanwhile): it is gone
    if (count) messages.push_back(',');
    append_message(messages, got.messages[i], *m, rr);
    ++count;
  }
  h.counters.received += count;
  if (count == 0) co_return text_outcome("{}");
  messages += "]}";
  co_return text_outcome(std::move(messages));
}

api_error delete_rejected(std::error_code ec) {
  return errors::service_unavailable("The message store rejected the delete: " + ec.message());
}

asio::awaitable<outcome> delete_message(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  std::string_view handle;
  if (auto e = get_string(h.req, "ReceiptHandle", handle, true)) co_return fail(*e);
  auto r = q->delete_messages(std::span(&handle, 1));
  if (r.store_error) co_return fail(delete_rejected(r.store_error));
  if (r.status[0] == queue::handle_status::invalid)
    co_return fail(errors::receipt_handle_is_invalid(handle));
  h.counters.deleted += r.status[0] == queue::handle_status::ok ? 1 : 0;
  outcome res;
  co_return co_await await_lsn(h.svc, r.lsn, std::move(res));
}

asio::awaitable<outcome> delete_message_batch(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  const json::array* entries = nullptr;
  if (auto e = check_batch(h.req, "DeleteMessageBatchRequestEntry", entries)) co_return fail(*e);
  std::vector<std::string_view> ids, handles;
  std::string failed, successful;
  size_t deleted = 0;
  for (auto& ev : *entries) {
    std::string_view id = ev.as_object().at("Id").as_string(), handle;
    if (auto e = get_string(ev.as_object(), "ReceiptHandle", handle, true)) {
      separate(failed);
      append_failed_entry(failed, id, *e);
      continue;
    }
    ids.push_back(id);
    handles.push_back(handle);
  }
  auto r = q->delete_messages(handles);
  // A store failure fails the whole request with a retryable 503: per-entry
  // ReceiptHandleIsInvalid would tell the client to give up on handles that are fine.
  if (r.store_error) co_return fail(delete_rejected(r.store_error));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (r.status[i] == queue::handle_status::invalid) {
      separate(failed);
      append_failed_entry(failed, ids[i], errors::receipt_handle_is_invalid(handles[i]));
    } else {
      separate(successful);
      successful += '{';
      sqs::append_json_member(successful, "Id", ids[i]);
      successful += '}';
      ++deleted;
    }
  }
  h.counters.deleted += deleted;
  outcome res = text_outcome(batch_result_text(successful, failed));
  co_return co_await await_lsn(h.svc, r.lsn, std::move(res));
}

outcome change_visibility(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  std::string_view handle;
  if (auto e = get_string(h.req, "ReceiptHandle", handle, true)) return fail(*e);
  std::optional<int64_t> vt;
  if (!h.req.if_contains("VisibilityTimeout"))
    return fail(errors::missing_parameter("VisibilityTimeout"));
  if (auto e = get_int_in(h.req, "VisibilityTimeout", vt, 0, 43200)) return fail(*e);
  if (auto e = q->change_visibility(handle, static_cast<int>(*vt), h.svc.clk().wall_ms()))
    return fail(*e);
  return {};
}

outcome change_visibility_batch(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) return fail(*e);
  const json::array* entries = nullptr;
  if (auto e = check_batch(h.req, "ChangeMessageVisibilityBatchRequestEntry", entries))
    return fail(*e);
  std::string failed, successful;
  int64_t now = h.svc.clk().wall_ms();
  for (auto& ev : *entries) {
    auto& eo = ev.as_object();
    std::string_view id = eo.at("Id").as_string(), handle;
    std::optional<int64_t> vt;
    maybe_error e = get_string(eo, "ReceiptHandle", handle, true);
    if (!e && !eo.if_contains("VisibilityTimeout")) e = errors::missing_parameter("VisibilityTimeout");
    if (!e) e = get_int_in(eo, "VisibilityTimeout", vt, 0, 43200);
    if (!e) e = q->change_visibility(handle, static_cast<int>(*vt), now);
    std::string& list = e ? failed : successful;
    separate(list);
    if (e) {
      append_failed_entry(list, id, *e);
    } else {
      list += '{';
      sqs::append_json_member(list, "Id", id);
      list += '}';
    }
  }
  return text_outcome(batch_result_text(successful, failed));
}

asio::awaitable<outcome> purge_queue(handler_env h) {
  std::shared_ptr<queue> q;
  if (auto e = get_queue(h.svc, h.req, h.ctx, q)) co_return fail(*e);
  auto r = q->purge(h.svc.clk().wall_ms());
  if (auto* e = std::get_if<api_error>(&r)) co_return fail(*e);
  outcome res;
  co_return co_await await_lsn(h.svc, std::get<uint64_t>(r), std::move(res));
}

}  // namespace

asio::awaitable<api_outcome> api::handle(std::string action, json::object req,
                                         request_context ctx) {
  ++counters_.requests;
  handler_env h{svc_, counters_, req, ctx};
  api_outcome out;
  if (action == "SendMessageBatch") out = co_await send_message_batch(h);
  else if (action == "ReceiveMessage") out = co_await receive_message(h);
  else if (action == "DeleteMessageBatch") out = co_await delete_message_batch(h);
  else if (action == "SendMessage") out = co_await send_message(h);
  else if (action == "DeleteMessage") out = co_await delete_message(h);
  else if (action == "ChangeMessageVisibility") out = change_visibility(h);
  else if (action == "ChangeMessageVisibilityBatch") out = change_visibility_batch(h);
  else if (action == "CreateQueue") out = create_queue(h);
  else if (action == "GetQueueUrl") out = get_queue_url(h);
  else if (action == "ListQueues") out = list_queues(h);
  else if (action == "DeleteQueue") out = delete_queue(h);
  else if (action == "GetQueueAttributes") out = get_queue_attributes(h);
  else if (action == "SetQueueAttributes") out = set_queue_attributes(h);
  else if (action == "PurgeQueue") out = co_await purge_queue(h);
  else if (action == "TagQueue") out = tag_queue(h);
  else if (action == "UntagQueue") out = untag_queue(h);
  else if (action == "ListQueueTags") out = list_queue_tags(h);
  else if (action == "ListDeadLetterSourceQueues") out = list_dead_letter_source_queues(h);
  else if (action == "AddPermission" || action == "RemovePermission" ||
           action == "StartMessageMoveTask" || action == "CancelMessageMoveTask" ||
           action == "ListMessageMoveTasks")
    out = unsupported(action);
  else out = fail(errors::invalid_action(action));
  if (out.error) ++counters_.errors;
  co_return out;
}

}  // namespace sqsrelay::server
